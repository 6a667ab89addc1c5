"""The production dashboard's numbers: every panel's table, the headline figures and the A/B
verdict, with the page's filters (date range, campaign, template) and from the same summary views
and cache as the page (`review.insight`)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from django.http import HttpRequest
from ninja import Path, Query, Router, Schema
from pydantic import Field, StringConstraints

from api.permissions import permission_require
from api.problems import ApiProblem
from api.responses import errors
from prompt_library.models import Campaign, PromptTemplate, PromptVersion
from review.insight.dashboard import TABLES, dashboard_get, table_get
from review.insight.filters import InsightFilters
from review.insight.forms import DAY_MAX, DAY_MIN
from review.insight.panels import insight_available
from review.insight.stats import Rate
from review.insight.tables import Table
from review.roles import AUDIT

router = Router(tags=["insight"])
ERRORS = errors(409)

Name = Annotated[str, StringConstraints(min_length=1, max_length=100)]
TableKey = Annotated[str, Path(pattern=r"^[a-z_]{1,40}$", description="a table's key (GET /insight lists them)")]


class InsightQuery(Schema):
    date_from: date | None = Field(None, description="first day (UTC) an asset was generated or a decision made")
    date_to: date | None = Field(None, description="last day, inclusive")
    campaign: Name | None = Field(None, description="a campaign's name")
    template: Name | None = Field(None, description="a template's name")
    a: int | None = Field(None, ge=1, le=1_000_000, description="A/B: a version number of `template`")
    b: int | None = Field(None, ge=1, le=1_000_000, description="A/B: another version number of `template`")


class RateOut(Schema):
    approved: int
    decided: int
    rate: float | None
    wilson_low: float | None
    wilson_high: float | None


class ABOut(Schema):
    a: RateOut
    b: RateOut
    combinations: int = Field(description="variable combinations both versions were decided on")
    test: str
    statistic: float | None
    p_value: float | None
    significant: bool
    verdict: str


class TableOut(Schema):
    key: str
    title: str
    headers: list[str]
    rows: list[list[Any]]


class InsightOut(Schema):
    refreshed_at: datetime | None = Field(description="when the summary views were refreshed")
    oldest_waiting_seconds: float | None = Field(description="live: the oldest asset in review")
    past_deadline: int
    agreement: RateOut = Field(description="assets decided by more than one reviewer, and how many alike")
    seconds_total: float
    seconds_rejected: float
    rejected_share: float | None = Field(description="share of generation seconds spent on rejected assets")
    ab: ABOut | None
    tables: list[TableOut]


def _rate(rate: Rate) -> RateOut:
    return RateOut(
        approved=rate.approved, decided=rate.decided, rate=rate.rate, wilson_low=rate.low, wilson_high=rate.high
    )


def _table(table: Table) -> TableOut:
    return TableOut(key=table.key, title=table.title, headers=list(table.headers), rows=[list(r) for r in table.rows])


def insight_filters(query: InsightQuery) -> tuple[InsightFilters, tuple[int, int, str, str] | None]:
    """The query as the dashboard's filters and A/B pair; a value that names nothing is refused (422)."""
    for name in ("date_from", "date_to"):
        day = getattr(query, name)
        if day is not None and not DAY_MIN <= day <= DAY_MAX:
            raise ApiProblem(
                422,
                "invalid-value",
                f"{name} must be between {DAY_MIN} and {DAY_MAX}",
                field=f"query.{name}",
                value=day,
            )
    if query.date_from and query.date_to and query.date_from > query.date_to:
        raise ApiProblem(
            422, "invalid-value", "date_to must not be before date_from", field="query.date_to", value=query.date_to
        )
    campaign_id = template_id = None
    if query.campaign is not None:
        campaign_id = Campaign.objects.filter(name=query.campaign).values_list("id", flat=True).first()
        if campaign_id is None:
            raise ApiProblem(
                422, "invalid-value", f"No campaign {query.campaign!r}", field="query.campaign", value=query.campaign
            )
    if query.template is not None:
        template_id = PromptTemplate.objects.filter(name=query.template).values_list("id", flat=True).first()
        if template_id is None:
            raise ApiProblem(
                422, "invalid-value", f"No template {query.template!r}", field="query.template", value=query.template
            )
    filters = InsightFilters(
        date_from=query.date_from, date_to=query.date_to, campaign_id=campaign_id, template_id=template_id
    )
    if query.a is None and query.b is None:
        return filters, None
    if query.a is None or query.b is None or template_id is None:
        missing = "template" if template_id is None else ("a" if query.a is None else "b")
        raise ApiProblem(
            422,
            "invalid-value",
            "An A/B needs a template and two of its version numbers, a and b",
            field=f"query.{missing}",
        )
    versions = {
        v.number: v for v in PromptVersion.objects.filter(template_id=template_id, number__in=[query.a, query.b])
    }
    for name, number in (("a", query.a), ("b", query.b)):
        if number not in versions:
            raise ApiProblem(
                422,
                "invalid-value",
                f"Template {query.template!r} has no version {number}",
                field=f"query.{name}",
                value=number,
            )
    a, b = versions[query.a], versions[query.b]
    return filters, (a.pk, b.pk, f"{query.template} v{a.number}", f"{query.template} v{b.number}")


def _available() -> None:
    if not insight_available():
        raise ApiProblem(409, "not-available", "The dashboard's summary views need PostgreSQL")


@router.get("/insight", response={200: InsightOut, **ERRORS}, summary="The production dashboard")
def insight_get(request: HttpRequest, query: Query[InsightQuery]) -> InsightOut:
    """Every panel's table (approval rates with Wilson 95% intervals, rejection reasons, reviewers,
    time to decision, cost), the headline figures and, given `template`, `a` and `b`, the A/B
    verdict: the page's figures, as of the last refresh of the summary views."""
    permission_require(request, AUDIT)
    _available()
    filters, ab = insight_filters(query)
    board = dashboard_get(filters, ab=ab)
    verdict = None
    if board.ab is not None:
        v = board.ab.verdict
        verdict = ABOut(
            a=_rate(v.a),
            b=_rate(v.b),
            combinations=board.ab.combinations,
            test=v.test,
            statistic=v.statistic,
            p_value=v.p_value,
            significant=v.significant,
            verdict=v.verdict,
        )
    return InsightOut(
        refreshed_at=board.refreshed_at,
        oldest_waiting_seconds=board.queue.oldest_waiting_seconds,
        past_deadline=board.queue.past_deadline,
        agreement=_rate(board.reviewers.agreement),
        seconds_total=board.cost.seconds_total,
        seconds_rejected=board.cost.seconds_rejected,
        rejected_share=board.cost.rejected_share,
        ab=verdict,
        tables=[_table(section.table) for section in board.sections.values()],
    )


@router.get("/insight/tables/{key}", response={200: TableOut, **ERRORS}, summary="One dashboard table")
def insight_table(request: HttpRequest, key: TableKey, query: Query[InsightQuery]) -> TableOut:
    """One panel's table (the page's CSV, as JSON) with the same filters."""
    permission_require(request, AUDIT)
    _available()
    if key not in TABLES:
        raise ApiProblem(
            404, "not-found", f"No dashboard table {key!r} (known: {', '.join(TABLES)})", field="path.key", value=key
        )
    filters, ab = insight_filters(query)
    if key == "ab" and ab is None:
        raise ApiProblem(422, "invalid-value", "The A/B table needs template, a and b", field="query.template")
    return _table(table_get(key, filters, ab))
