"""Each panel's number of queries does not grow with the number of assets."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

import pytest

from review.insight.filters import InsightFilters
from review.insight.panels import (
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
from tests.review.insight.production import NOW, production_build

pytestmark = pytest.mark.django_db

PANELS: list[tuple[str, int, Callable[..., object]]] = [
    ("queue", 3, lambda f, p: queue_panel(f, now=NOW)),
    ("approval by version", 1, lambda f, p: approval_by(f, by="version")),
    ("approval by model", 1, lambda f, p: approval_by(f, by="model")),
    ("approval by style", 1, lambda f, p: approval_by(f, by="style")),
    ("approval by campaign", 1, lambda f, p: approval_by(f, by="campaign")),
    ("approval by variable", 1, lambda f, p: approval_by(f, by="variable")),
    ("approval by all four", 1, lambda f, p: approvals_by(f)),
    ("a/b", 1, lambda f, p: ab_compare(f, version_a=p.v1.pk, version_b=p.v2.pk)),
    ("reasons", 2, lambda f, p: rejection_reasons(f)),
    ("reviewers", 2, lambda f, p: reviewer_panel(f)),
    ("decision time", 1, lambda f, p: decision_time(f)),
    ("cost", 1, lambda f, p: cost_panel(f)),
]


@pytest.mark.parametrize("copies", [1, 6])
@pytest.mark.parametrize("dated", [False, True], ids=["all time", "date range"])
@pytest.mark.parametrize(("name", "queries", "panel"), PANELS, ids=[p[0] for p in PANELS])
def test_each_panel_runs_the_same_queries_at_any_size(
    django_assert_num_queries: Callable[..., object],
    copies: int,
    dated: bool,
    name: str,
    queries: int,
    panel: Callable[..., object],
) -> None:
    production = production_build(copies=copies)
    insight_refresh(concurrently=False)
    filters = InsightFilters(
        date_from=date(2026, 3, 1) if dated else None,
        date_to=date(2026, 3, 2) if dated else None,
        campaign_id=production.spring.pk,
        template_id=production.v1.template_id,
    )
    with django_assert_num_queries(queries):  # type: ignore[attr-defined]
        panel(filters, production)
