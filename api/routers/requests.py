"""Asset requests: ask for assets with a brief, list and follow one's progress, ask for more,
cancel it, and download its approved assets' signed files as a zip. The same services as the
request pages (`review.requests`), so a rule lives in one place: a requester sees and changes
only their own requests (another's answers 404), an admin every one."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Annotated, Any

from django.http import HttpRequest, StreamingHttpResponse
from ninja import Path, Query, Router, Schema, Status
from pydantic import Field, StringConstraints

from api.auth import actor
from api.idempotency import IdempotencyKey, idempotent
from api.pagination import Page, PageParams, keyset_page
from api.permissions import permission_require
from api.problems import ApiProblem, FieldProblem
from api.responses import ERRORS_READ, ERRORS_WRITE
from api.routers.sources import Sha256, image_bytes_check
from prompt_library.errors import SourceImageError
from prompt_library.sources import SOURCE_MAX_BYTES, source_image_bytes, source_image_get
from review.delivery import delivery_filename, delivery_stream
from review.requests import selectors, services
from review.requests.briefs import NOTES_MAX, TITLE_MAX
from review.requests.errors import BriefRefusedError, RequestForbiddenError
from review.requests.models import AssetRequest
from review.roles import REQUEST

router = Router(tags=["requests"])

RequestId = Annotated[int, Path(ge=1, le=10**18 - 1, description="the request's id")]
Name = Annotated[str, StringConstraints(min_length=1, max_length=100)]
Value = Annotated[str, StringConstraints(min_length=1, max_length=200)]
REFERENCE_BASE64_MAX = -(-SOURCE_MAX_BYTES // 3) * 4  # the base64 length of the largest source image


class BriefIn(Schema):
    """A brief: a template (its latest version unless `version` is given), values for each of its
    variables, how many variants of each combination, the renditions wanted, a deadline, notes."""

    template: Name
    version: int | None = Field(None, ge=1, le=1_000_000)
    values: dict[Name, list[Value]] = Field(description="each variable's values, one or more")
    variants_per_combination: int = Field(ge=1, le=10_000)
    renditions: list[Name] = Field(min_length=1, max_length=20)
    deadline: datetime | None = None
    notes: Annotated[str, StringConstraints(max_length=NOTES_MAX)] = ""
    title: Annotated[str, StringConstraints(max_length=TITLE_MAX)] = ""
    reference_image: Sha256 | None = Field(
        None,
        description="the sha256 of a source image uploaded through POST /sources: the variants are drawn from it "
        "(image-to-image, inpainting and image-to-video templates only)",
    )
    reference_image_base64: Annotated[str, StringConstraints(max_length=REFERENCE_BASE64_MAX)] | None = Field(
        None,
        description="or the image itself, base64-encoded (PNG, JPEG or WebP; the whole JSON body is limited to "
        "what the server accepts, so upload larger images through POST /sources)",
    )


class MoreIn(Schema):
    """Ask for more: new seeds of every combination and/or new values of the variables."""

    more_seeds: int = Field(0, ge=0, le=10_000)
    values: dict[Name, list[Value]] = Field(default_factory=dict, description="new values per variable")


class RequestOut(Schema):
    id: int
    campaign: str
    title: str
    requester: str
    template: str
    template_version: int
    deadline: datetime | None
    notes: str
    renditions: list[str]
    created_at: datetime
    cancelled_at: datetime | None
    briefs: int


class AssetProgress(Schema):
    serial: int
    state: str
    thumbnail: str
    variables: dict[str, Any]
    seed: int
    decisions: list[dict[str, Any]]


class RequestDetail(RequestOut):
    counts: dict[str, int] = Field(description="its assets per state")
    total: int
    generated: int
    run_state: str = Field(description="its latest run's state ('' before the first)")
    finished: bool = Field(description="no run of it is queued, running or paused")
    assets: list[AssetProgress]


def request_out(found: AssetRequest) -> RequestOut:
    return RequestOut(**_fields(found))


def _fields(found: AssetRequest) -> dict[str, Any]:
    return {
        "id": found.pk,
        "campaign": found.campaign.name,
        "title": found.title,
        "requester": found.requester.get_username(),
        "template": found.prompt_version.template.name,
        "template_version": found.prompt_version.number,
        "deadline": found.deadline,
        "notes": found.notes,
        "renditions": list(found.renditions),
        "created_at": found.created_at,
        "cancelled_at": found.cancelled_at,
        "briefs": found.briefs.count(),
    }


def request_found(request: HttpRequest, pk: int, *, change: bool = False) -> AssetRequest:
    """The request, if the caller may see it (or change it); 404 otherwise."""
    try:
        found = selectors.request_get(pk=pk)
        services.request_access_check(request=found, user=actor(request), change=change)
    except (AssetRequest.DoesNotExist, RequestForbiddenError):
        raise ApiProblem(404, "not-found", f"No request {pk}", field="path.request_id", value=pk) from None
    return found


def brief_problem(exc: BriefRefusedError) -> ApiProblem:
    """A refused brief: 422, every bad field with its value."""
    return ApiProblem(
        422,
        "invalid-brief",
        str(exc),
        field=f"body.{exc.field}",
        value=exc.value,
        errors=[FieldProblem(field=f"body.{p.field}", value=p.value, detail=p.problem) for p in exc.problems],
    )


@router.get("/requests", response={200: Page[RequestOut], **ERRORS_READ}, summary="List requests")
def requests_list(request: HttpRequest, page: Query[PageParams]) -> dict[str, Any]:
    """The caller's requests, newest first (an admin: every request)."""
    permission_require(request, REQUEST)
    qs = selectors.request_list(user=actor(request))
    return keyset_page(qs, page=page, field="created_at", item=request_out)


@router.post("/requests", response={201: RequestDetail, **ERRORS_WRITE}, summary="Ask for assets")
def request_post(request: HttpRequest, payload: BriefIn, idempotency_key: str | None = IdempotencyKey) -> Any:
    """Submit a brief: checked whole (every bad field is named in `errors`), stored unchanged,
    pinned to its template version; the request's run starts at once. At most
    GREENLIGHT_REQUEST_MAX_VARIANTS variants, and at most 20 values per variable."""
    permission_require(request, REQUEST)

    def run() -> Status[RequestDetail]:
        try:
            reference, name = _reference(payload)
            made = services.request_create(
                requester=actor(request),
                **payload.model_dump(exclude={"reference_image", "reference_image_base64"}),
                reference_image=reference,
                reference_image_name=name,
            )
        except BriefRefusedError as exc:
            raise brief_problem(exc) from None
        return Status(201, _detail(selectors.request_get(pk=made.pk)))

    return idempotent(request, key=idempotency_key, body=payload, run=run)


def _reference(payload: BriefIn) -> tuple[bytes | None, str]:
    """The brief's reference image bytes and name: an uploaded source by sha256, or the image
    itself in base64 (refused by size with 413, by format with 415, unreadable with 422)."""
    if payload.reference_image is not None and payload.reference_image_base64 is not None:
        raise ApiProblem(
            422,
            "invalid-value",
            "give the reference image either by sha256 or in base64, not both",
            field="body.reference_image_base64",
            value=f"{len(payload.reference_image_base64)} characters",
        )
    if payload.reference_image_base64 is not None:
        field = "body.reference_image_base64"
        try:
            data = base64.b64decode(payload.reference_image_base64, validate=True)
        except (binascii.Error, ValueError):
            raise ApiProblem(
                422,
                "invalid-value",
                f"{field} is not base64",
                field=field,
                value=payload.reference_image_base64,
            ) from None
        image_bytes_check(data, field=field)
        return data, "reference-image"
    if payload.reference_image is not None:
        try:
            source = source_image_get(sha256=payload.reference_image, field="reference_image")
            return source_image_bytes(sha256=source.sha256, field="reference_image"), source.name
        except SourceImageError as exc:
            raise ApiProblem(
                422,
                "invalid-value",
                f"body.reference_image {exc.problem}: upload it through POST /sources first",
                field="body.reference_image",
                value=payload.reference_image,
            ) from None
    return None, ""


def _detail(found: AssetRequest) -> RequestDetail:
    progress = selectors.request_progress(request=found)
    return RequestDetail(
        **_fields(found),
        counts=progress.counts,
        total=progress.total,
        generated=progress.generated,
        run_state=progress.run_state,
        finished=not progress.run_open,
        assets=[
            AssetProgress(
                serial=a["serial"],
                state=a["state"],
                thumbnail=a["thumbnail"],
                variables=a["variables"],
                seed=a["seed"],
                decisions=a["decisions"],
            )
            for a in progress.assets
        ],
    )


@router.get("/requests/{request_id}", response={200: RequestDetail, **ERRORS_READ}, summary="One request")
def request_get(request: HttpRequest, request_id: RequestId) -> RequestDetail:
    """A request with its progress: assets per state, each asset with its thumbnail and decisions
    (reasons and comments), and its latest run's state."""
    return _detail(request_found(request, request_id))


@router.post("/requests/{request_id}/more", response={200: RequestDetail, **ERRORS_WRITE}, summary="Ask for more")
def request_more(
    request: HttpRequest, request_id: RequestId, payload: MoreIn, idempotency_key: str | None = IdempotencyKey
) -> Any:
    """More variants in the same request (new seeds, new variable values), made by a new run;
    refused (409) while its run is still open or once it is cancelled."""
    found = request_found(request, request_id, change=True)

    def run() -> Status[RequestDetail]:
        try:
            services.request_more(
                request=found, user=actor(request), more_seeds=payload.more_seeds, values=payload.values
            )
        except BriefRefusedError as exc:
            raise brief_problem(exc) from None
        return Status(200, _detail(selectors.request_get(pk=found.pk)))

    return idempotent(request, key=idempotency_key, body={"id": request_id, **payload.model_dump()}, run=run)


@router.post("/requests/{request_id}/cancel", response={200: RequestDetail, **ERRORS_WRITE}, summary="Cancel")
def request_cancel(request: HttpRequest, request_id: RequestId) -> RequestDetail:
    """Cancel the request: its variants not made yet are cancelled; 409 if already cancelled."""
    found = request_found(request, request_id, change=True)
    services.request_cancel(request=found, user=actor(request))
    return _detail(selectors.request_get(pk=found.pk))


@router.get(
    "/requests/{request_id}/approved.zip",
    response={200: None, **ERRORS_READ},
    summary="Download the approved assets",
    openapi_extra={
        "responses": {
            200: {
                "description": "a zip: each approved asset's signed renditions, manifest.csv, README.txt",
                "content": {"application/zip": {"schema": {"type": "string", "format": "binary"}}},
            }
        }
    },
)
def request_download(request: HttpRequest, request_id: RequestId) -> StreamingHttpResponse:
    """The approved assets' signed renditions (those the brief asked for), manifest.csv and a
    README, streamed as the zip is written."""
    found = request_found(request, request_id)
    services.request_download_record(request=found, user=actor(request))
    response = StreamingHttpResponse(delivery_stream(request=found), content_type="application/zip")
    response["Content-Disposition"] = f'attachment; filename="{delivery_filename(found)}"'
    return response
