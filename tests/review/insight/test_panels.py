"""Every dashboard figure against the hand-built production in `production.py`, each answer
worked out by hand here from its table."""

from __future__ import annotations

import math
from datetime import date

import pytest

from review.insight.filters import InsightFilters
from review.insight.panels import (
    DIMENSIONS,
    ab_compare,
    approval_by,
    approvals_by,
    cost_panel,
    decision_time,
    queue_panel,
    rejection_reasons,
    reviewer_panel,
)
from review.insight.refresh import insight_refresh
from tests.review.insight.production import NOW, Production, production_build

pytestmark = pytest.mark.django_db

Z = 1.959963984540054
DAY1, DAY2 = date(2026, 3, 1), date(2026, 3, 2)


def wilson_by_hand(k: int, n: int) -> tuple[float, float]:
    """(p + z²/2n ± z·sqrt(p(1-p)/n + z²/4n²)) / (1 + z²/n), written out for the test."""
    p = k / n
    centre = (p + Z * Z / (2 * n)) / (1 + Z * Z / n)
    half = Z * math.sqrt(p * (1 - p) / n + Z * Z / (4 * n * n)) / (1 + Z * Z / n)
    return centre - half, centre + half


@pytest.fixture
def production() -> Production:
    built = production_build()
    insight_refresh(concurrently=False)
    return built


def _rate(table_row: tuple[object, ...]) -> tuple[object, ...]:
    label, approved, rejected, decided, rate, low, high = table_row
    return label, approved, rejected, decided, rate, pytest.approx(low, abs=1e-9), pytest.approx(high, abs=1e-9)


def test_wilson_by_hand_matches_published_values() -> None:
    # Textbook values: 2 of 4 -> (0.1500, 0.8500); 0 of 10 -> (0, 0.2775).
    assert wilson_by_hand(2, 4) == pytest.approx((0.15004, 0.84996), abs=1e-4)
    assert wilson_by_hand(0, 10)[1] == pytest.approx(0.27753, abs=1e-4)


def test_queue_depth_deadline_oldest_and_throughput(production: Production) -> None:
    queue = queue_panel(InsightFilters(), now=NOW)
    # approved a1 a2 b1 b2 b3; in_review a5 b5; pending a6; rejected a3 a4 b4.
    assert dict(queue.depth.rows) == {"approved": 5, "in_review": 2, "pending": 1, "rejected": 3}
    # Only a5 waits in a campaign past its deadline (spring, D1 23:00).
    assert queue.past_deadline == 1
    # The oldest in review is a5, created D2 08:00; now is D3 08:00.
    assert queue.oldest_waiting_seconds == 24 * 3600
    assert queue.oldest_waiting_text == "1 d 0 h"
    # Generated: D1 a1 a2 a3; D2 a4 a5 b1-b5 (a6 is not made). Decisions: D1 2+2+2, D2 1+1+1+1+1.
    assert queue.throughput.rows == ((DAY1, 3, 6), (DAY2, 7, 5))


def test_approval_rate_by_version_model_style_campaign_and_variable(production: Production) -> None:
    v1 = ("hero v1", 2, 2, 4, 0.5, *wilson_by_hand(2, 4))  # a1 a2 of a1-a4
    v2 = ("hero v2", 3, 1, 4, 0.75, *wilson_by_hand(3, 4))  # b1 b2 b3 of b1-b4
    tables = {by: approval_by(InsightFilters(), by=by) for by in DIMENSIONS}
    assert [_rate(r) for r in tables["version"].rows] == [v1, v2]
    assert [_rate(r) for r in tables["model"].rows] == [("m-a", *v1[1:]), ("m-b", *v2[1:])]
    assert [_rate(r) for r in tables["style"].rows] == [("(no style)", *v2[1:]), ("house", *v1[1:])]
    assert [_rate(r) for r in tables["campaign"].rows] == [("spring", *v1[1:]), ("summer", *v2[1:])]
    # The dashboard reads the four in one pass: the same tables.
    together = approvals_by(InsightFilters())
    assert all(together[by] == tables[by] for by in ("version", "model", "style", "campaign"))
    # beach: a1 a2 b1 b2 all approved; city: a3 a4 b4 rejected, b3 approved.
    assert [_rate(r) for r in tables["variable"].rows] == [
        ("scene = beach", 4, 0, 4, 1.0, *wilson_by_hand(4, 4)),
        ("scene = city", 1, 3, 4, 0.25, *wilson_by_hand(1, 4)),
    ]


def test_filters_by_date_campaign_and_template(production: Production) -> None:
    later = approval_by(InsightFilters(date_from=DAY2), by="version")
    # From D2 only a4 (rejected) of v1 was made; v2 unchanged.
    assert [r[:4] for r in later.rows] == [("hero v1", 0, 1, 1), ("hero v2", 3, 1, 4)]
    earlier = approval_by(InsightFilters(date_to=DAY1), by="version")
    assert [r[:4] for r in earlier.rows] == [("hero v1", 2, 1, 3)]
    summer = approval_by(InsightFilters(campaign_id=production.summer.pk), by="campaign")
    assert [r[:4] for r in summer.rows] == [("summer", 3, 1, 4)]
    other = approval_by(InsightFilters(template_id=production.v1.template_id + 1000), by="version")
    assert other.rows == ()
    assert queue_panel(InsightFilters(campaign_id=production.summer.pk), now=NOW).past_deadline == 0


def test_ab_on_the_same_variables_uses_fisher_for_small_counts(production: Production) -> None:
    panel = ab_compare(InsightFilters(), version_a=production.v1.pk, version_b=production.v2.pk)
    # Both versions were decided on scene=beach and scene=city: A 2 of 4, B 3 of 4.
    assert panel.combinations == 2
    assert (panel.verdict.a.approved, panel.verdict.a.decided, panel.verdict.b.approved, panel.verdict.b.decided) == (
        2,
        4,
        3,
        4,
    )
    # Expected approvals 4·5/8 = 2.5 and rejections 4·3/8 = 1.5 < 5: Fisher. Tables with margins
    # (4, 4; 5, 3): P(x) = C(4,x)·C(4,5-x)/C(8,5) = 4, 24, 24, 4 of 56 for x = 1..4; observed
    # x = 2 (24/56), every table is at most as likely: p = 56/56 = 1.
    assert panel.verdict.test == "Fisher exact test"
    assert panel.verdict.p_value == pytest.approx(1.0)
    assert not panel.verdict.significant
    assert panel.verdict.verdict.startswith("no significant difference")


def test_rejection_reasons_over_time_and_per_template(production: Production) -> None:
    per_day, per_template = rejection_reasons(InsightFilters())
    # D1: ben off_brand on a3. D2: ana visual_artifact on a4, ben off_brand on b4.
    assert per_day.rows == ((DAY1, "off_brand", 1), (DAY2, "off_brand", 1), (DAY2, "visual_artifact", 1))
    assert per_template.rows == (("hero", "off_brand", 2), ("hero", "visual_artifact", 1))


def test_reviewer_throughput_and_agreement(production: Production) -> None:
    panel = reviewer_panel(InsightFilters())
    # ana: a1 a2 a3 a4 b1 b3 = 6 decisions, 5 approvals, on D1 and D2 -> 3 a day.
    # ben: a1 a2 a3 b2 b4 = 5 decisions, 3 approvals, on D1 and D2 -> 2.5 a day.
    assert panel.reviewers.rows == (("ana", 6, 5, 2, 3.0), ("ben", 5, 3, 2, 2.5))
    # Reviewed twice: a1 a2 a3; alike: a1 a2.
    assert (panel.multi_reviewed, panel.agreed) == (3, 2)
    assert panel.agreement.rate == pytest.approx(2 / 3)
    assert (panel.agreement.low, panel.agreement.high) == pytest.approx(wilson_by_hand(2, 3))


def test_time_from_generation_to_decision(production: Production) -> None:
    table = decision_time(InsightFilters())
    # v1: a1 12:00-10:00 = 7200, a2 3600, a3 1200, a4 1800 -> 13800 / 4 = 3450.
    # v2: b1-b4 600 each -> 600. All: (13800 + 2400) / 8 = 2025.
    assert table.rows == (("(all)", 8, 2025.0), ("hero v1", 4, 3450.0), ("hero v2", 4, 600.0))


def test_cost_per_asset_per_approved_asset_and_the_share_on_rejected(production: Production) -> None:
    cost = cost_panel(InsightFilters())
    # m-a: a1-a5 timed, 5 x 10 s = 50 s, 10 s an asset; 2 approved -> 25 s an approved asset.
    # m-b: b1-b5, 5 x 4 s = 20 s, 4 s an asset; 3 approved -> 20/3 s.
    assert cost.by_model.rows == (("m-a", 5, 50.0, 10.0, 2, 25.0), ("m-b", 5, 20.0, 4.0, 3, pytest.approx(20 / 3)))
    assert cost.by_campaign.rows == (
        ("spring", 5, 50.0, 10.0, 2, 25.0),
        ("summer", 5, 20.0, 4.0, 3, pytest.approx(20 / 3)),
    )
    # Rejected: a3 a4 (10 s each) and b4 (4 s) = 24 of 70 s.
    assert cost.seconds_total == 70.0
    assert cost.rejected_share == pytest.approx(24 / 70)


def test_figures_are_as_of_the_last_refresh(production: Production) -> None:
    production_build()
    assert dict(queue_panel(InsightFilters(), now=NOW).depth.rows)["approved"] == 5
    insight_refresh()
    assert dict(queue_panel(InsightFilters(), now=NOW).depth.rows)["approved"] == 10


def test_with_nothing_made_every_panel_is_empty_not_an_error() -> None:
    insight_refresh(concurrently=False)
    empty = InsightFilters()
    assert queue_panel(empty, now=NOW).depth.rows == () and queue_panel(empty, now=NOW).past_deadline == 0
    cost = cost_panel(empty)
    assert (cost.by_model.rows, cost.seconds_total, cost.rejected_share) == ((), 0.0, None)
    assert reviewer_panel(empty).agreement.rate is None
    assert decision_time(empty).rows == ()
    assert all(approval_by(empty, by=by).rows == () for by in DIMENSIONS)


# --- Every filter on every panel ---------------------------------------------------------------


def test_the_queue_follows_the_date_range(production: Production) -> None:
    # Made on D1: a1 a2 approved, a3 rejected; nothing of D1 waits.
    d1 = queue_panel(InsightFilters(date_to=DAY1), now=NOW)
    assert dict(d1.depth.rows) == {"approved": 2, "rejected": 1}
    assert (d1.past_deadline, d1.oldest_waiting_seconds) == (0, None)
    assert d1.throughput.rows == ((DAY1, 3, 6),)
    # From D2: a4 b4 rejected, b1-b3 approved, a5 b5 in review, a6 pending; a5 is spring's (late),
    # created D2 08:00, 24 h before now. b5 alone (summer) was created D2 09:00: 23 h.
    d2 = queue_panel(InsightFilters(date_from=DAY2), now=NOW)
    assert dict(d2.depth.rows) == {"approved": 3, "in_review": 2, "pending": 1, "rejected": 2}
    assert (d2.past_deadline, d2.oldest_waiting_seconds) == (1, 24 * 3600)
    summer = queue_panel(InsightFilters(date_from=DAY2, date_to=DAY2, campaign_id=production.summer.pk), now=NOW)
    assert (summer.past_deadline, summer.oldest_waiting_seconds) == (0, 23 * 3600)
    assert queue_panel(InsightFilters(date_from=date(2026, 3, 3)), now=NOW).oldest_waiting_seconds is None


def test_the_ab_view_follows_the_date_range_and_the_template(production: Production) -> None:
    # From D2, v1 has only a4 (city, rejected); v2 b3 (city, approved) and b4 (city, rejected) on
    # the one scene both have: A 0 of 1, B 1 of 2. Fisher over margins (1, 2; 1, 2):
    # P(x=0) = C(1,0)·C(2,1)/C(3,1) = 2/3, P(x=1) = 1/3; both at most as likely as x=0: p = 1.
    d2 = ab_compare(InsightFilters(date_from=DAY2), version_a=production.v1.pk, version_b=production.v2.pk)
    assert d2.combinations == 1
    assert d2.table.rows[0][:4] == ("A", 0, 1, 1) and d2.table.rows[1][:4] == ("B", 1, 1, 2)
    assert d2.verdict.test == "Fisher exact test" and d2.verdict.p_value == pytest.approx(1.0)
    # Until D1 v2 made nothing: nothing to compare.
    d1 = ab_compare(InsightFilters(date_to=DAY1), version_a=production.v1.pk, version_b=production.v2.pk)
    assert (d1.combinations, d1.verdict.p_value) == (0, None)
    assert d1.verdict.verdict == "not enough decisions to compare"
    other = InsightFilters(template_id=production.v1.template_id + 1000)
    assert ab_compare(other, version_a=production.v1.pk, version_b=production.v2.pk).verdict.p_value is None
    spring = InsightFilters(campaign_id=production.spring.pk)
    assert ab_compare(spring, version_a=production.v1.pk, version_b=production.v2.pk).combinations == 0


def test_decision_panels_follow_the_date_range(production: Production) -> None:
    from_d2 = InsightFilters(date_from=DAY2)
    # Decisions on D2: ana visual_artifact on a4, ben off_brand on b4.
    assert rejection_reasons(from_d2)[0].rows == ((DAY2, "off_brand", 1), (DAY2, "visual_artifact", 1))
    # Decisions on D1: ana approves a1 a2 a3; ben approves a1 a2 and rejects a3; one day each.
    until_d1 = reviewer_panel(InsightFilters(date_to=DAY1))
    assert until_d1.reviewers.rows == (("ana", 3, 3, 1, 3.0), ("ben", 3, 2, 1, 3.0))
    assert (until_d1.multi_reviewed, until_d1.agreed) == (3, 2)
    # Made from D2: v1 a4 decided 30 min after generation; v2 b1-b4 10 min each: (1800 + 2400) / 5.
    assert decision_time(from_d2).rows == (("(all)", 5, 840.0), ("hero v1", 1, 1800.0), ("hero v2", 4, 600.0))
    # Made from D2: m-a a4 a5 (10 s each, none approved), m-b b1-b5 (4 s, 3 approved); rejected
    # a4 and b4: 14 of 40 s.
    cost = cost_panel(from_d2)
    assert cost.by_model.rows == (("m-a", 2, 20.0, 10.0, 0, None), ("m-b", 5, 20.0, 4.0, 3, pytest.approx(20 / 3)))
    assert cost.rejected_share == pytest.approx(14 / 40)
    # Made from D2: beach b1 b2 approved; city a4 b4 rejected, b3 approved.
    assert [r[:4] for r in approval_by(from_d2, by="variable").rows] == [
        ("scene = beach", 2, 0, 2),
        ("scene = city", 1, 2, 3),
    ]


@pytest.mark.parametrize("campaign", [None, "spring", "summer"])
def test_the_all_time_totals_agree_with_the_days_they_sum(production: Production, campaign: str | None) -> None:
    """Without a date range the panels read the all-time totals; a range over every day reads the
    per-day views: the figures must be the same."""
    campaign_id = getattr(production, campaign).pk if campaign else None
    total = InsightFilters(campaign_id=campaign_id)
    every_day = InsightFilters(date_from=DAY1, date_to=DAY2, campaign_id=campaign_id)
    assert total.view("asset") != every_day.view("asset")
    for by in DIMENSIONS:
        assert approval_by(total, by=by) == approval_by(every_day, by=by)
    assert queue_panel(total, now=NOW) == queue_panel(every_day, now=NOW)
    assert cost_panel(total) == cost_panel(every_day)
    assert decision_time(total) == decision_time(every_day)
    assert reviewer_panel(total) == reviewer_panel(every_day)
    a, b = production.v1.pk, production.v2.pk
    assert ab_compare(total, version_a=a, version_b=b) == ab_compare(every_day, version_a=a, version_b=b)
