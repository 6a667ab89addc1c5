"""Campaigns and their runs: create a campaign (every field a campaign file holds), list, one with
its assets counted per state; run one, and follow, pause, resume or cancel a run."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import datetime
from typing import Annotated, Any, Literal

from django.db.models import Count
from django.http import HttpRequest, StreamingHttpResponse
from ninja import Path, Query, Router, Schema, Status
from pydantic import Field, StringConstraints

from api.auth import actor
from api.idempotency import IdempotencyKey, idempotent
from api.pagination import Page, PageParams, keyset_page
from api.permissions import permission_require
from api.problems import ApiProblem
from api.responses import ERRORS_READ, ERRORS_WRITE
from api.schemas import Moment
from prompt_library.models import Campaign
from prompt_library.services import campaign_create
from review import selectors
from review.models import Asset, Run
from review.roles import RUN, VIEW
from review.services import runs as run_services
from review.states import AssetState

router = Router(tags=["campaigns and runs"])

CampaignName = Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{1,100}$", description="the campaign's name")]
RunId = Annotated[int, Path(ge=1, le=10**18 - 1, description="the run's id")]
Text = Annotated[str, StringConstraints(min_length=1, max_length=200)]


class ReviewPolicy(Schema):
    approvals: int = Field(1, ge=1, le=10, description="distinct approvals an asset needs")
    on_reject: Literal["reject", "return"] = Field("reject", description="what one rejection does")


class Schedule(Schema):
    cron: Annotated[str, StringConstraints(max_length=100)] = Field(description="five-field cron expression")
    timezone: Annotated[str, StringConstraints(max_length=64)] = "UTC"


class CampaignIn(Schema):
    """A campaign file's fields, as JSON."""

    name: Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{0,99}$")]
    title: Annotated[str, StringConstraints(max_length=200)] = ""
    kind: Literal["scheduled", "request"] = "scheduled"
    template: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    template_version: int = Field(ge=1, le=1_000_000)
    variables: dict[Annotated[str, StringConstraints(min_length=1, max_length=100)], list[Text]] = Field(
        description="each variable's values; the campaign is every combination, times the seeds"
    )
    seeds: list[Annotated[int, Field(ge=0, le=2**63 - 1)]] = Field(min_length=1, max_length=1000)
    deadline: Moment | None = None
    review: ReviewPolicy = Field(default_factory=lambda: ReviewPolicy(approvals=1, on_reject="reject"))
    priority: int = Field(5, ge=0, le=9, description="run order: lower first")
    schedule: Schedule | None = None
    active: bool = True
    source_image: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")] | None = Field(
        None,
        description="the sha256 of a source image uploaded through POST /sources: the variants draw from it "
        "instead of their image-to-image, inpainting or image-to-video template's own",
    )


class CampaignOut(Schema):
    name: str
    title: str
    kind: str
    template: str
    template_version: int
    variables: dict[str, Any]
    seeds: list[int]
    deadline: datetime | None
    approvals_required: int
    on_reject: str
    priority: int
    schedule_cron: str
    schedule_timezone: str
    schedule_active: bool
    source_image: str = Field("", description="the sha256 of the source image it draws from, if its own")
    requested_by: str | None
    created_at: datetime
    updated_at: datetime


def campaign_out(campaign: Campaign) -> CampaignOut:
    """Needs `prompt_version__template` and `requested_by` selected with the campaign."""
    return CampaignOut(
        name=campaign.name,
        title=campaign.title,
        kind=campaign.kind,
        template=campaign.prompt_version.template.name,
        template_version=campaign.prompt_version.number,
        variables=campaign.variables,
        seeds=campaign.seeds,
        deadline=campaign.deadline,
        approvals_required=campaign.approvals_required,
        on_reject=campaign.on_reject,
        priority=campaign.priority,
        schedule_cron=campaign.schedule_cron,
        schedule_timezone=campaign.schedule_timezone,
        schedule_active=campaign.schedule_active,
        source_image=campaign.source_image,
        requested_by=campaign.requested_by.get_username() if campaign.requested_by else None,
        created_at=campaign.created_at,
        updated_at=campaign.updated_at,
    )


def _campaigns() -> Any:
    return Campaign.objects.select_related("prompt_version__template", "requested_by")


def campaign_found(name: str) -> Campaign:
    campaign = _campaigns().filter(name=name).first()
    if campaign is None:
        raise ApiProblem(404, "not-found", f"No campaign {name!r}", field="path.name", value=name)
    return campaign


@router.get("/campaigns", response={200: Page[CampaignOut], **ERRORS_READ}, summary="List campaigns")
def campaigns_list(request: HttpRequest, page: Query[PageParams]) -> dict[str, Any]:
    """Campaigns by name."""
    permission_require(request, VIEW)
    return keyset_page(_campaigns(), page=page, field="name", descending=False, dated=False, item=campaign_out)


@router.post("/campaigns", response={201: CampaignOut, **ERRORS_WRITE}, summary="Create a campaign")
def campaign_post(request: HttpRequest, payload: CampaignIn, idempotency_key: str | None = IdempotencyKey) -> Any:
    """A new campaign, checked as the library loader checks a campaign file (its template version
    must exist and the variables must be exactly the version's)."""
    permission_require(request, RUN)

    def run() -> Status[CampaignOut]:
        data = payload.model_dump(exclude_none=True)
        data["deadline"] = payload.deadline  # a date-time, as YAML gives it
        if payload.deadline is None:
            data.pop("deadline")
        campaign = campaign_create(data=data, requested_by=actor(request))
        return Status(201, campaign_out(campaign_found(campaign.name)))

    return idempotent(request, key=idempotency_key, body=payload, run=run)


class CampaignDetail(CampaignOut):
    counts: dict[str, int] = Field(description="its assets per state")
    runs: list[int] = Field(description="its latest runs, newest first")


@router.get("/campaigns/{name}", response={200: CampaignDetail, **ERRORS_READ}, summary="One campaign")
def campaign_get(request: HttpRequest, name: CampaignName) -> CampaignDetail:
    """A campaign with its assets counted per state and its latest runs."""
    permission_require(request, VIEW)
    campaign = campaign_found(name)
    counts = dict.fromkeys(AssetState.values, 0)
    for row in Asset.objects.filter(campaign=campaign).values("state").annotate(n=Count("id")).order_by():
        counts[row["state"]] = row["n"]
    runs = list(Run.objects.filter(campaign=campaign).order_by("-created_at", "-id").values_list("id", flat=True)[:20])
    return CampaignDetail(**campaign_out(campaign).model_dump(), counts=counts, runs=runs)


class RunOut(Schema):
    id: int
    campaign: str | None
    state: str
    priority: int
    total: int
    done: int
    failed: int
    cancelled: int
    left: int
    percent: int
    images_per_second: float | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    started_by: str = Field(description="username, or 'schedule'")
    per_worker: dict[str, int]
    error: str


def run_out(run: Run) -> RunOut:
    """Needs `campaign` and `started_by` selected with the run."""
    progress = selectors.run_progress(run=run)
    return RunOut(
        id=run.pk,
        campaign=run.campaign.name if run.campaign else None,
        state=progress.state,
        priority=run.priority,
        total=progress.total,
        done=progress.done,
        failed=progress.failed,
        cancelled=progress.cancelled,
        left=progress.left,
        percent=progress.percent,
        images_per_second=progress.images_per_second,
        created_at=run.created_at,
        started_at=progress.started_at,
        finished_at=progress.finished_at,
        started_by=progress.started_by,
        per_worker=progress.per_worker,
        error=run.error,
    )


def run_found(run_id: int) -> Run:
    run = Run.objects.select_related("campaign", "started_by").filter(pk=run_id).first()
    if run is None:
        raise ApiProblem(404, "not-found", f"No run {run_id}", field="path.run_id", value=run_id)
    return run


class RunIn(Schema):
    priority: int | None = Field(None, ge=0, le=run_services.PRIORITY_MAX, description="default: the campaign's")


@router.post("/campaigns/{name}/runs", response={202: RunOut, **ERRORS_WRITE}, summary="Run a campaign")
def campaign_run(
    request: HttpRequest, name: CampaignName, payload: RunIn, idempotency_key: str | None = IdempotencyKey
) -> Any:
    """Register the campaign's variants not made yet and queue a run of them; the workers generate
    them (follow `/runs/{id}/events`). Refused (409) while another run of the campaign is open."""
    permission_require(request, RUN)

    def run() -> Status[RunOut]:
        started = run_services.campaign_run_start(
            campaign=campaign_found(name), actor=actor(request), priority=payload.priority
        )
        return Status(202, run_out(run_found(started.pk)))

    return idempotent(request, key=idempotency_key, body=payload, run=run)


class RunFilters(Schema):
    campaign: Annotated[str, StringConstraints(max_length=100)] | None = None
    state: Run.State | None = None


@router.get("/runs", response={200: Page[RunOut], **ERRORS_READ}, summary="List runs")
def runs_list(request: HttpRequest, filters: Query[RunFilters], page: Query[PageParams]) -> dict[str, Any]:
    """Runs, newest first."""
    permission_require(request, VIEW)
    qs = Run.objects.select_related("campaign", "started_by")
    if filters.campaign:
        qs = qs.filter(campaign__name=filters.campaign)
    if filters.state:
        qs = qs.filter(state=filters.state)
    return keyset_page(qs, page=page, field="id", dated=False, item=run_out)


@router.get("/runs/{run_id}", response={200: RunOut, **ERRORS_READ}, summary="One run")
def run_get(request: HttpRequest, run_id: RunId) -> RunOut:
    """A run's progress: variants done, failed and left, images per second, who started it."""
    permission_require(request, VIEW)
    return run_out(run_found(run_id))


@router.post("/runs/{run_id}/cancel", response={200: RunOut, **ERRORS_WRITE}, summary="Cancel a run")
def run_cancel(request: HttpRequest, run_id: RunId) -> RunOut:
    """Stop the run: its variants not made yet are cancelled."""
    permission_require(request, RUN)
    run_services.run_cancel(run=run_found(run_id), actor=actor(request))
    return run_out(run_found(run_id))


@router.post("/runs/{run_id}/pause", response={200: RunOut, **ERRORS_WRITE}, summary="Pause a run")
def run_pause(request: HttpRequest, run_id: RunId) -> RunOut:
    permission_require(request, RUN)
    run_services.run_pause(run=run_found(run_id), actor=actor(request))
    return run_out(run_found(run_id))


@router.post("/runs/{run_id}/resume", response={200: RunOut, **ERRORS_WRITE}, summary="Resume a run")
def run_resume(request: HttpRequest, run_id: RunId) -> RunOut:
    permission_require(request, RUN)
    run_services.run_resume(run=run_found(run_id), actor=actor(request))
    return run_out(run_found(run_id))


class FollowQuery(Schema):
    interval: float = Field(1.0, ge=0.2, le=30, description="seconds between progress events")
    max_seconds: int = Field(600, ge=1, le=3600, description="end the stream after this long even if the run is open")


@router.get(
    "/runs/{run_id}/events",
    response={200: None, **ERRORS_READ},
    summary="Follow a run (Server-Sent Events)",
    openapi_extra={
        "responses": {
            200: {
                "description": "`event: progress` with a RunOut as data whenever it changes (and at least "
                "every 15 s), then `event: end` with the final RunOut once the run is closed",
                "content": {"text/event-stream": {"schema": {"type": "string"}}},
            }
        }
    },
)
def run_events(request: HttpRequest, run_id: RunId, follow: Query[FollowQuery]) -> StreamingHttpResponse:
    """The run's progress as Server-Sent Events until it is succeeded, failed or cancelled."""
    permission_require(request, VIEW)
    run_found(run_id)
    response = StreamingHttpResponse(
        run_event_stream(run_id, interval=follow.interval, max_seconds=follow.max_seconds),
        content_type="text/event-stream",
    )
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"
    return response


KEEPALIVE_SECONDS = 15.0


def run_event_stream(run_id: int, *, interval: float, max_seconds: float) -> Iterator[str]:
    """Events for one run: progress when it changes, `end` when it closes (or `timeout`)."""
    started = time.monotonic()
    last_sent = ""
    last_time = 0.0
    while True:
        run = run_found(run_id)
        body = run_out(run).model_dump_json()
        now = time.monotonic()
        if not run.is_open:
            yield f"event: end\ndata: {body}\n\n"
            return
        if body != last_sent or now - last_time >= KEEPALIVE_SECONDS:
            yield f"event: progress\ndata: {body}\n\n"
            last_sent, last_time = body, now
        if now - started >= max_seconds:
            yield f"event: timeout\ndata: {json.dumps({'run': run_id, 'seconds': max_seconds})}\n\n"
            return
        time.sleep(interval)
