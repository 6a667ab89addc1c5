"""The dashboard's panels as plain functions over the summary views (`review/migrations/0013`,
`0016`).

Each panel runs a fixed number of queries whatever the number of assets: every figure is summed
from the views, which hold one row per day, campaign, template version, model and state (and per
variable value, reviewer and reason), not one per asset. Each query first sums the view's rows
by its integer keys and only then joins the names (a join before the sum costs a lookup and a
string per day and group: most of the page's time at a million assets).

Every panel takes the same filters. The date range applies to the day an asset was generated
(registered, for one not generated yet): the queue's figures count the assets of those days that
are in each state now; the reviewer and rejection panels count decisions made on those days.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection
from django.utils import timezone

from review.insight.filters import APPROVED_STATES, DECIDED_STATES, InsightFilters
from review.insight.stats import ABVerdict, Rate, ab_test, wilson
from review.insight.tables import Table

_APPROVED = "(" + ", ".join(f"'{s}'" for s in APPROVED_STATES) + ")"
_DECIDED = "(" + ", ".join(f"'{s}'" for s in DECIDED_STATES) + ")"
_NOT_MADE = "('pending', 'failed', 'cancelled')"
RATE_HEADERS = ("label", "approved", "rejected", "decided", "rate", "wilson_low", "wilson_high")


def _rows(sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return list(cursor.fetchall())


def insight_available() -> bool:
    """Whether the summary views exist (PostgreSQL); SQLite has none."""
    return connection.vendor == "postgresql"


def insight_refreshed_at() -> datetime | None:
    """When the summary views were last refreshed."""
    rows = _rows("SELECT refreshed_at FROM insight_refreshed", [])
    return rows[0][0] if rows else None


def _rate_row(label: object, approved: int, decided: int) -> tuple[object, ...]:
    r = wilson(int(approved), int(decided))
    return (label, r.approved, r.rejected, r.decided, r.rate, r.low, r.high)


# --- Queue -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class QueuePanel:
    depth: Table  # state, assets
    throughput: Table  # day, generated, decisions
    oldest_waiting_seconds: float | None  # live: the oldest asset in review, now
    past_deadline: int  # in review whose campaign's deadline has passed

    @property
    def oldest_waiting_text(self) -> str:
        """The oldest waiting age in its largest whole units: "3 d 4 h", "2 h 5 min", "40 s"."""
        if self.oldest_waiting_seconds is None:
            return "—"
        seconds = int(self.oldest_waiting_seconds)
        days, hours, minutes = seconds // 86400, seconds % 86400 // 3600, seconds % 3600 // 60
        if days:
            return f"{days} d {hours} h"
        if hours:
            return f"{hours} h {minutes} min"
        return f"{minutes} min" if minutes else f"{seconds} s"


def queue_panel(filters: InsightFilters, *, now: datetime | None = None) -> QueuePanel:
    """Depth by state, past-deadline count, oldest waiting age and throughput per day (3 queries)."""
    now = now or timezone.now()
    where, params = filters.where()
    depth = _rows(
        "SELECT s.state, sum(s.assets), coalesce(sum(s.assets) FILTER (WHERE c.deadline < %s), 0)"
        f" FROM (SELECT m.state, m.campaign_id, sum(m.assets) AS assets FROM {filters.view('asset')} m"
        f" WHERE true{where} GROUP BY 1, 2) s JOIN prompt_library_campaign c ON c.id = s.campaign_id"
        " GROUP BY 1 ORDER BY 1",
        [now, *params],
    )
    late = [int(n) for state, _, n in depth if state == "in_review"]
    oldest = oldest_waiting_seconds(filters, now=now)
    per_day = _rows(
        f"SELECT day, sum(generated), sum(decisions) FROM ("
        f" SELECT m.day, sum(m.assets) FILTER (WHERE m.state NOT IN {_NOT_MADE}) AS generated, 0 AS decisions"
        f" FROM insight_asset_day m WHERE true{where} GROUP BY 1"
        f" UNION ALL SELECT m.day, 0, sum(m.decisions) FROM insight_review_day m WHERE true{where} GROUP BY 1"
        ") t GROUP BY 1 ORDER BY 1",
        [*params, *params],
    )
    return QueuePanel(
        depth=Table(
            "queue_depth", "Queue depth by state", ("state", "assets"), tuple((s, int(n)) for s, n, _ in depth)
        ),
        throughput=Table(
            "throughput",
            "Throughput per day",
            ("day", "generated", "decisions"),
            tuple((d, int(g or 0), int(n or 0)) for d, g, n in per_day),
        ),
        oldest_waiting_seconds=oldest,
        past_deadline=late[0] if late else 0,
    )


# The day an asset counts on, as the summary views compute it and the index `asset_waiting_day`
# (migration 0016) holds it for the assets in review.
ASSET_DAY = "((coalesce(a.generated_at, a.created_at) AT TIME ZONE 'UTC')::date)"


def oldest_waiting_seconds(filters: InsightFilters, *, now: datetime | None = None) -> float | None:
    """How long the oldest asset in review has waited, read live (1 query). Without a date range
    it is the first entry of the index on (state, created_at); with one, the oldest of each day
    in the range is one probe of `asset_waiting_day`, for the days between the first and last
    day that has an asset in review (so the query's cost follows the days, not the assets)."""
    where, params = filters.where("a", dates=False)
    if filters.date_from is None and filters.date_to is None:
        rows = _rows(
            f"SELECT a.created_at FROM review_asset a WHERE a.state = 'in_review'{where} ORDER BY a.created_at LIMIT 1",
            params,
        )
    else:
        rows = _rows(
            "WITH span AS (SELECT"
            f" (SELECT {ASSET_DAY} FROM review_asset a WHERE a.state = 'in_review' ORDER BY 1 LIMIT 1) AS first,"
            f" (SELECT {ASSET_DAY} FROM review_asset a WHERE a.state = 'in_review' ORDER BY 1 DESC LIMIT 1) AS last)"
            " SELECT min(x.created_at) FROM span,"
            " generate_series(greatest(span.first, %s::date), least(span.last, %s::date), interval '1 day') g(day)"
            " CROSS JOIN LATERAL (SELECT a.created_at FROM review_asset a"
            f" WHERE a.state = 'in_review' AND {ASSET_DAY} = g.day::date{where}"
            " ORDER BY a.created_at LIMIT 1) x",
            [filters.date_from, filters.date_to, *params],
        )
        rows = [r for r in rows if r[0] is not None]
    return ((now or timezone.now()) - rows[0][0]).total_seconds() if rows else None


# --- Approval rates --------------------------------------------------------------------------

_LABELS = {
    "version": "t.name || ' v' || pv.number",
    "model": "m.model_name",
    "style": "coalesce(pv.parts -> 'style' ->> 0, '(no style)')",
    "campaign": "c.name",
}
DIMENSIONS = (*_LABELS, "variable")


def _rate_table(by: str, rows: Sequence[tuple[Any, ...]]) -> Table:
    return Table(
        f"approval_{by}",
        f"Approval rate by {by}",
        RATE_HEADERS,
        tuple(_rate_row(label, a or 0, n or 0) for label, a, n in rows),
    )


def approval_by(filters: InsightFilters, *, by: str) -> Table:
    """Approval rate by template version, model, style, campaign or variable value, each with its
    counts and Wilson 95% interval (1 query). `by` must be one of DIMENSIONS."""
    if by == "variable":
        where, params = filters.where()
        rows = _rows(
            "SELECT m.name || ' = ' || m.value, sum(m.approved), sum(m.approved + m.rejected)"
            f" FROM {filters.view('variable')} m WHERE true{where} GROUP BY m.name, m.value ORDER BY m.name, m.value",
            params,
        )
        return _rate_table(by, rows)
    return approvals_by(filters, dimensions=(by,))[by]


def approvals_by(filters: InsightFilters, *, dimensions: Sequence[str] = tuple(_LABELS)) -> dict[str, Table]:
    """`approval_by` for several of version, model, style and campaign in one pass over the
    summary view (1 query)."""
    unknown = [d for d in dimensions if d not in _LABELS]
    if unknown:
        raise ValueError(f"dimension {unknown[0]!r} is not one of {', '.join(_LABELS)}")
    where, params = filters.where()
    pairs = ", ".join(f"('{d}', {_LABELS[d]})" for d in dimensions)
    rows = _rows(
        "SELECT g.dim, g.label, sum(m.approved), sum(m.decided) FROM ("
        f" SELECT m.prompt_version_id, m.campaign_id, m.model_name,"
        f" sum(m.assets) FILTER (WHERE m.state IN {_APPROVED}) AS approved, sum(m.assets) AS decided"
        f" FROM {filters.view('asset')} m WHERE m.state IN {_DECIDED}{where} GROUP BY 1, 2, 3) m"
        " JOIN prompt_library_promptversion pv ON pv.id = m.prompt_version_id"
        " JOIN prompt_library_prompttemplate t ON t.id = pv.template_id"
        " JOIN prompt_library_campaign c ON c.id = m.campaign_id"
        f" CROSS JOIN LATERAL (VALUES {pairs}) AS g(dim, label)"
        " GROUP BY 1, 2 ORDER BY 1, 2",
        params,
    )
    grouped: dict[str, list[tuple[Any, ...]]] = {d: [] for d in dimensions}
    for dim, label, approved, decided in rows:
        grouped[dim].append((label, approved, decided))
    return {d: _rate_table(d, grouped[d]) for d in dimensions}


@dataclass(frozen=True)
class ABPanel:
    verdict: ABVerdict
    combinations: int  # variable combinations both versions were reviewed on
    table: Table


def ab_compare(
    filters: InsightFilters, *, version_a: int, version_b: int, labels: tuple[str, str] = ("A", "B")
) -> ABPanel:
    """Two template versions on the same variables: only the variable combinations both were
    decided on count. Every filter applies: the date range (the day each asset was generated),
    the campaign, and the template (a version of another template has no decisions) (1 query)."""
    where, params = filters.where()
    view = filters.view("combination")
    rows = _rows(
        f"WITH a AS (SELECT m.combination, sum(m.approved) ap, sum(m.rejected) rj FROM {view} m"
        f" WHERE m.prompt_version_id = %s{where} GROUP BY 1),"
        f" b AS (SELECT m.combination, sum(m.approved) ap, sum(m.rejected) rj FROM {view} m"
        f" WHERE m.prompt_version_id = %s{where} GROUP BY 1)"
        " SELECT count(*), coalesce(sum(a.ap), 0), coalesce(sum(a.ap + a.rj), 0), coalesce(sum(b.ap), 0),"
        " coalesce(sum(b.ap + b.rj), 0) FROM a JOIN b ON a.combination = b.combination",
        [version_a, *params, version_b, *params],
    )
    combos, a_ap, a_n, b_ap, b_n = (int(v) for v in rows[0])
    verdict = ab_test(a_ap, a_n, b_ap, b_n)
    table = Table(
        "ab",
        "A/B on the same variable values",
        RATE_HEADERS,
        (_rate_row(labels[0], a_ap, a_n), _rate_row(labels[1], b_ap, b_n)),
    )
    return ABPanel(verdict=verdict, combinations=combos, table=table)


# --- Rejections, reviewers, time to decision ---------------------------------------------------


def rejection_reasons(filters: InsightFilters) -> tuple[Table, Table]:
    """Rejections by reason per day, and per template (2 queries)."""
    where, params = filters.where()
    per_day = _rows(
        "SELECT m.day, coalesce(nullif(m.reason, ''), '(none)'), sum(m.rejections) FROM insight_reason_day m"
        f" WHERE true{where} GROUP BY 1, 2 ORDER BY 1, 2",
        params,
    )
    per_template = _rows(
        "SELECT t.name, coalesce(nullif(m.reason, ''), '(none)'), sum(m.rejections) FROM ("
        " SELECT m.prompt_version_id, m.reason, sum(m.rejections) AS rejections FROM insight_reason_day m"
        f" WHERE true{where} GROUP BY 1, 2) m"
        " JOIN prompt_library_promptversion pv ON pv.id = m.prompt_version_id"
        " JOIN prompt_library_prompttemplate t ON t.id = pv.template_id"
        " GROUP BY 1, 2 ORDER BY 1, 2",
        params,
    )
    return (
        Table(
            "reasons_day",
            "Rejection reasons per day",
            ("day", "reason", "rejections"),
            tuple((d, r, int(n)) for d, r, n in per_day),
        ),
        Table(
            "reasons_template",
            "Rejection reasons per template",
            ("template", "reason", "rejections"),
            tuple((t, r, int(n)) for t, r, n in per_template),
        ),
    )


@dataclass(frozen=True)
class ReviewerPanel:
    reviewers: Table  # reviewer, decisions, approvals, active_days, per_active_day
    multi_reviewed: int  # assets decided by more than one reviewer
    agreed: int  # of those, how many all reviewers decided alike
    agreement: Rate


def reviewer_panel(filters: InsightFilters) -> ReviewerPanel:
    """Each reviewer's decisions and throughput per active day; how often reviewers agree on
    assets that needed more than one decision (2 queries)."""
    where, params = filters.where()
    rows = _rows(
        "SELECT u.username, m.decisions, m.approvals, m.days FROM ("
        " SELECT m.reviewer_id, sum(m.decisions) AS decisions, sum(m.approvals) AS approvals,"
        f" count(DISTINCT m.day) AS days FROM insight_review_day m WHERE true{where} GROUP BY 1) m"
        " JOIN auth_user u ON u.id = m.reviewer_id ORDER BY 1",
        params,
    )
    agree = _rows(
        "SELECT coalesce(sum(m.multi_reviewed), 0), coalesce(sum(m.agreed), 0)"
        f" FROM {filters.view('asset')} m WHERE true{where}",
        params,
    )
    multi, agreed = (int(v) for v in agree[0])
    return ReviewerPanel(
        reviewers=Table(
            "reviewers",
            "Reviewer throughput",
            ("reviewer", "decisions", "approvals", "active_days", "per_active_day"),
            tuple((u, int(n), int(a or 0), int(d), int(n) / int(d)) for u, n, a, d in rows),
        ),
        multi_reviewed=multi,
        agreed=agreed,
        agreement=wilson(agreed, multi),
    )


def decision_time(filters: InsightFilters) -> Table:
    """Mean time from generation to the deciding review, per template version and overall (1 query)."""
    where, params = filters.where()
    rows = _rows(
        "SELECT coalesce(t.name || ' v' || pv.number, '(all)'), sum(m.seconds), sum(m.timed) FROM ("
        " SELECT m.prompt_version_id, sum(m.decide_seconds) AS seconds, sum(m.decide_timed) AS timed"
        f" FROM {filters.view('asset')} m WHERE m.decide_timed > 0{where} GROUP BY 1) m"
        " JOIN prompt_library_promptversion pv ON pv.id = m.prompt_version_id"
        " JOIN prompt_library_prompttemplate t ON t.id = pv.template_id"
        " GROUP BY GROUPING SETS ((t.name, pv.number), ()) ORDER BY 1",
        params,
    )
    return Table(
        "decision_time",
        "Time from generation to decision",
        ("version", "decided", "mean_seconds"),
        tuple((label, int(n), float(s) / int(n)) for label, s, n in rows if n),
    )


# --- Cost -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class CostPanel:
    by_model: Table
    by_campaign: Table
    seconds_total: float
    seconds_rejected: float

    @property
    def rejected_share(self) -> float | None:
        return self.seconds_rejected / self.seconds_total if self.seconds_total else None


COST_HEADERS = ("label", "assets_timed", "seconds", "seconds_per_asset", "approved", "seconds_per_approved")


def cost_panel(filters: InsightFilters) -> CostPanel:
    """Generation seconds per asset and per approved asset, per model and per campaign, and the
    share of compute spent on rejected assets (1 query)."""
    where, params = filters.where()
    rows = _rows(
        "SELECT m.model_name, c.name, GROUPING(m.model_name, c.name), sum(m.timed), sum(m.seconds),"
        " sum(m.approved), coalesce(sum(m.rejected_seconds), 0) FROM ("
        " SELECT m.model_name, m.campaign_id, sum(m.gen_timed) AS timed, sum(m.gen_seconds) AS seconds,"
        f" sum(m.gen_timed) FILTER (WHERE m.state IN {_APPROVED}) AS approved,"
        " sum(m.gen_seconds) FILTER (WHERE m.state = 'rejected') AS rejected_seconds"
        f" FROM {filters.view('asset')} m WHERE m.gen_timed > 0{where} GROUP BY 1, 2) m"
        " JOIN prompt_library_campaign c ON c.id = m.campaign_id"
        " GROUP BY GROUPING SETS ((m.model_name), (c.name), ()) ORDER BY 3, 1, 2",
        params,
    )
    by_model: list[tuple[object, ...]] = []
    by_campaign: list[tuple[object, ...]] = []
    total, rejected = 0.0, 0.0
    for model, campaign, grouping, timed, seconds, approved, rejected_seconds in rows:
        timed, seconds, approved = int(timed or 0), float(seconds or 0), int(approved or 0)
        row = (timed, seconds, seconds / timed if timed else None, approved, seconds / approved if approved else None)
        if grouping == 1:  # grouped by model (campaign rolled up)
            by_model.append((model, *row))
        elif grouping == 2:
            by_campaign.append((campaign, *row))
        else:
            total, rejected = seconds, float(rejected_seconds)
    return CostPanel(
        by_model=Table("cost_model", "Generation cost per model", COST_HEADERS, tuple(by_model)),
        by_campaign=Table("cost_campaign", "Generation cost per campaign", COST_HEADERS, tuple(by_campaign)),
        seconds_total=total,
        seconds_rejected=rejected,
    )
