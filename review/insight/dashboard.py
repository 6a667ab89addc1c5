"""The dashboard page's content: every panel for one set of filters, each with its SVG chart and
its table (the CSV download of a table is `table_get`)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from html import escape

from django.core.cache import cache
from django.utils.safestring import SafeString, mark_safe

from review.insight import charts
from review.insight.filters import InsightFilters
from review.insight.panels import (
    DIMENSIONS,
    ABPanel,
    CostPanel,
    QueuePanel,
    ReviewerPanel,
    ab_compare,
    approval_by,
    approvals_by,
    cost_panel,
    decision_time,
    insight_refreshed_at,
    oldest_waiting_seconds,
    queue_panel,
    rejection_reasons,
    reviewer_panel,
)
from review.insight.tables import Table

SHOWN_ROWS = 60  # rows of a table on the page; its CSV holds them all


def cell_text(value: object) -> str:
    """A table cell as the page shows it: "—" for none, thousands separated, at most 3 decimals."""
    if value is None:
        return "—"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:,.3f}".rstrip("0").rstrip(".")


def table_html(table: Table) -> SafeString:
    """A table's first SHOWN_ROWS rows as HTML, every cell escaped (built here: a template loop
    over thousands of cells costs more than all of the page's queries)."""
    head = "".join(f"<th>{escape(h)}</th>" for h in table.headers)
    rows = [
        "<tr>" + "".join(f"<td>{escape(cell_text(v))}</td>" for v in row) + "</tr>" for row in table.rows[:SHOWN_ROWS]
    ]
    if not rows:
        rows = [f'<tr><td colspan="{len(table.headers)}" class="empty">Nothing in this range.</td></tr>']
    return mark_safe(f'<table class="audit"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>')


@dataclass(frozen=True)
class Section:
    """One chart with its table. The table's HTML is made with the section, so a dashboard
    reused from the cache is not escaped again on every request."""

    table: Table
    chart: SafeString
    table_html: SafeString = field(init=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "table_html", table_html(self.table))

    @property
    def hidden_rows(self) -> int:
        return max(0, len(self.table.rows) - SHOWN_ROWS)


@dataclass
class Dashboard:
    refreshed_at: datetime | None
    queue: QueuePanel
    cost: CostPanel
    reviewers: ReviewerPanel
    ab: ABPanel | None
    sections: dict[str, Section] = field(default_factory=dict)


def _rate_chart(table: Table) -> SafeString:
    return charts.rate_bars(table.title, [(str(r[0]), r[4], r[5], r[6], int(r[3])) for r in table.rows])


def _stacked(table: Table, *, day: int, series: int, value: int) -> SafeString:
    days = sorted({str(r[day]) for r in table.rows})
    names = sorted({str(r[series]) for r in table.rows})
    values = {(str(r[day]), str(r[series])): float(r[value]) for r in table.rows}
    return charts.stacked_columns(table.title, days, [(n, [values.get((d, n), 0.0) for d in days]) for n in names])


CACHE_SECONDS = 3600


def dashboard_get(filters: InsightFilters, *, ab: tuple[int, int, str, str] | None = None) -> Dashboard:
    """The dashboard for these filters: built once per refresh of the summary views (their figures
    cannot change in between) and kept in Django's cache under the refresh time; the oldest
    waiting age is read live every time. Two queries when cached."""
    refreshed = insight_refreshed_at()
    key = "insight:" + hashlib.sha256(repr((refreshed, filters, ab)).encode()).hexdigest()
    board: Dashboard | None = cache.get(key)
    if board is None:
        board = dashboard_build(filters, ab=ab, refreshed_at=refreshed)
        cache.set(key, board, CACHE_SECONDS)
        return board
    board.queue = replace(board.queue, oldest_waiting_seconds=oldest_waiting_seconds(filters))
    return board


def dashboard_build(
    filters: InsightFilters, *, ab: tuple[int, int, str, str] | None = None, refreshed_at: datetime | None = None
) -> Dashboard:
    """Every panel (a fixed number of queries: see the panels' docstrings)."""
    queue = queue_panel(filters)
    cost = cost_panel(filters)
    reviewers = reviewer_panel(filters)
    compared = ab_compare(filters, version_a=ab[0], version_b=ab[1], labels=(ab[2], ab[3])) if ab else None
    board = Dashboard(
        refreshed_at=refreshed_at or insight_refreshed_at(), queue=queue, cost=cost, reviewers=reviewers, ab=compared
    )
    s = board.sections
    s["queue_depth"] = Section(
        queue.depth, charts.value_bars(queue.depth.title, [(str(a), float(b)) for a, b in queue.depth.rows])
    )
    tp = queue.throughput
    s["throughput"] = Section(
        tp,
        charts.stacked_columns(
            tp.title,
            [str(r[0]) for r in tp.rows],
            [("generated", [float(r[1]) for r in tp.rows]), ("decisions", [float(r[2]) for r in tp.rows])],
        ),
    )
    for table in (*approvals_by(filters).values(), approval_by(filters, by="variable")):
        s[table.key] = Section(table, _rate_chart(table))
    if compared is not None:
        s["ab"] = Section(compared.table, _rate_chart(compared.table))
    per_day, per_template = rejection_reasons(filters)
    s["reasons_day"] = Section(per_day, _stacked(per_day, day=0, series=1, value=2))
    s["reasons_template"] = Section(per_template, _stacked(per_template, day=0, series=1, value=2))
    rv = reviewers.reviewers
    s["reviewers"] = Section(
        rv, charts.value_bars(rv.title, [(str(r[0]), float(r[4])) for r in rv.rows], unit=" a day")
    )
    dt = decision_time(filters)
    s["decision_time"] = Section(
        dt,
        charts.value_bars(dt.title, [(str(r[0]), float(r[2]) / 3600) for r in dt.rows if r[2] is not None], unit=" h"),
    )
    for table in (cost.by_model, cost.by_campaign):
        s[table.key] = Section(
            table,
            charts.value_bars(
                table.title, [(str(r[0]), float(r[5])) for r in table.rows if r[5] is not None], unit=" s per approved"
            ),
        )
    return board


def _approval_table(by: str) -> Callable[[InsightFilters, tuple[int, int, str, str] | None], Table]:
    def table(filters: InsightFilters, ab: tuple[int, int, str, str] | None) -> Table:
        return approval_by(filters, by=by)

    return table


TABLES: dict[str, Callable[[InsightFilters, tuple[int, int, str, str] | None], Table]] = {
    "queue_depth": lambda f, ab: queue_panel(f).depth,
    "throughput": lambda f, ab: queue_panel(f).throughput,
    **{f"approval_{by}": _approval_table(by) for by in DIMENSIONS},
    "reasons_day": lambda f, ab: rejection_reasons(f)[0],
    "reasons_template": lambda f, ab: rejection_reasons(f)[1],
    "reviewers": lambda f, ab: reviewer_panel(f).reviewers,
    "decision_time": lambda f, ab: decision_time(f),
    "cost_model": lambda f, ab: cost_panel(f).by_model,
    "cost_campaign": lambda f, ab: cost_panel(f).by_campaign,
    "ab": lambda f, ab: (
        ab_compare(f, version_a=ab[0], version_b=ab[1], labels=(ab[2], ab[3])).table if ab else Table("ab", "A/B", ())
    ),
}


def table_get(key: str, filters: InsightFilters, ab: tuple[int, int, str, str] | None = None) -> Table:
    """One panel's table by key (KeyError for an unknown key)."""
    return TABLES[key](filters, ab)
