"""Assets: the list (filters, cursor pages), one asset with its provenance and history, its files
(master, thumbnail, published renditions), comments and regeneration."""

from __future__ import annotations

import logging
from typing import Annotated, Any, Literal

from django.db.models import prefetch_related_objects
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from ninja import Path, Query, Router, Schema, Status
from pydantic import Field, StringConstraints

from api.auth import actor
from api.idempotency import IdempotencyKey, idempotent
from api.pagination import Page, PageParams, keyset_page
from api.permissions import permission_require
from api.problems import ApiProblem
from api.responses import ERRORS_READ, ERRORS_WRITE
from api.schemas import AssetDetail, AssetSummary, EventOut, Moment, asset_detail, asset_summary, event_out
from provenance.config import provenance_config_from_settings
from provenance.errors import StorageError
from provenance.media import MIME
from provenance.storage import LocalStorage, publish_storage
from review import orchestrator, selectors, services
from review.files import file_response
from review.models import Asset, Publication
from review.roles import VIEW
from review.services.comments import COMMENT_MAX
from review.services.regeneration import REGENERATE_MAX
from review.states import AssetState

logger = logging.getLogger("greenlight.api")
router = Router(tags=["assets"])

Serial = Annotated[int, Path(ge=1, le=10**18 - 1, description="the asset's serial")]
Slug = Annotated[str, StringConstraints(max_length=100)]


def asset_found(serial: int, *, history: bool = False) -> Asset:
    """The asset, or a 404 problem naming the serial."""
    try:
        return selectors.asset_get(serial=serial, history=history)
    except Asset.DoesNotExist:
        raise ApiProblem(404, "not-found", f"No asset {serial}", field="path.serial", value=serial) from None


class AssetFilters(Schema):
    state: AssetState | None = Field(None, description="only assets in this state")
    campaign: Slug | None = Field(None, description="campaign name")
    template: Slug | None = Field(None, description="template name")
    template_version: int | None = Field(None, ge=1, le=1_000_000, description="template version number")
    model: Slug | None = Field(None, description="model name")
    created_after: Moment | None = None
    created_before: Moment | None = None
    q: Annotated[str, StringConstraints(max_length=200)] | None = Field(None, description="text in the prompt")
    flagged: bool | None = Field(
        None, description="only assets the safety classifier flagged (true) or did not (false)"
    )


@router.get("/assets", response={200: Page[AssetSummary], **ERRORS_READ}, summary="List assets")
def assets_list(request: HttpRequest, filters: Query[AssetFilters], page: Query[PageParams]) -> dict[str, Any]:
    """Assets, newest first, filtered; a page at a time (`next_cursor`)."""
    permission_require(request, VIEW)
    qs = selectors.asset_list(state=filters.state, campaign=filters.campaign)
    if filters.template:
        qs = qs.filter(prompt_version__template__name=filters.template)
    if filters.template_version:
        qs = qs.filter(prompt_version__number=filters.template_version)
    if filters.model:
        qs = qs.filter(model_name=filters.model)
    if filters.created_after:
        qs = qs.filter(created_at__gte=filters.created_after)
    if filters.created_before:
        qs = qs.filter(created_at__lt=filters.created_before)
    if filters.q:
        qs = qs.filter(prompt__icontains=filters.q.replace("\x00", ""))
    if filters.flagged is not None:
        qs = qs.filter(safety_flagged=filters.flagged)
    return keyset_page(qs, page=page, field="id", dated=False, item=asset_summary)


@router.get("/assets/{serial}", response={200: AssetDetail, **ERRORS_READ}, summary="One asset")
def asset_get(request: HttpRequest, serial: Serial) -> AssetDetail:
    """The asset with its provenance (key, generation record, signed manifests), decisions,
    history and publications."""
    permission_require(request, VIEW)
    asset = asset_found(serial, history=True)
    prefetch_related_objects([asset], "publications__published_by", "manifests")
    return asset_detail(asset)


FILE_MIMES = sorted(set(MIME.values()))  # what a master, thumbnail or rendition can be
FILE_KIND = r"^(master|thumbnail|rendition:[A-Za-z0-9_.-]{1,50})$"


@router.get(
    "/assets/{serial}/files/{kind}",
    response={200: None, 206: None, 416: None, **ERRORS_READ},
    summary="Download a file",
    openapi_extra={
        "responses": {
            200: {
                "description": "the file (byte ranges answered with 206)",
                "content": {
                    mime: {"schema": {"type": "string", "format": "binary"}} for mime in sorted(set(MIME.values()))
                },
            }
        }
    },
)
def asset_file(
    request: HttpRequest,
    serial: Serial,
    kind: Annotated[str, Path(pattern=FILE_KIND, description="master, thumbnail or rendition:<name>")],
) -> HttpResponseBase:
    """The master, the thumbnail, or a published rendition (`rendition:web`), as stored and signed."""
    permission_require(request, VIEW)
    asset = asset_found(serial)
    if kind.startswith("rendition:"):
        return _rendition_file(asset, kind.removeprefix("rendition:"))
    relative = asset.file_path if kind == "master" else asset.thumb_path
    missing = ApiProblem(404, "file-missing", f"Asset {serial} has no {kind} in storage", field="path.kind", value=kind)
    if not relative:
        raise missing
    storage = LocalStorage(provenance_config_from_settings().storage_root)
    try:
        path = storage.path(relative)
        return file_response(request, path, content_type=asset.mime if kind == "master" else "image/jpeg")
    except (StorageError, OSError) as exc:
        logger.warning("asset %s: its %s %r cannot be read: %s", serial, kind, relative, exc)
        raise missing from None


def _rendition_file(asset: Asset, name: str) -> HttpResponse:
    publication = (
        Publication.objects.filter(asset=asset, rendition=name, state=Publication.State.PUBLISHED, revoked_at=None)
        .order_by("-created_at")
        .first()
    )
    if publication is None:
        raise ApiProblem(
            404, "file-missing", f"Asset {asset.pk} has no published rendition {name!r}", field="path.kind", value=name
        )
    config = provenance_config_from_settings()
    try:
        data = publish_storage(config.publish_root, config.publish_url, config.publish_options).read(publication.path)
    except (StorageError, OSError) as exc:
        logger.warning("asset %s: its rendition %r cannot be read: %s", asset.pk, publication.path, exc)
        raise ApiProblem(404, "file-missing", f"Asset {asset.pk}'s rendition {name!r} cannot be read") from None
    response = HttpResponse(data, content_type=publication.mime)
    response["Content-Disposition"] = f'attachment; filename="{publication.path.rsplit("/", 1)[-1]}"'
    return response


class CommentIn(Schema):
    text: Annotated[str, StringConstraints(min_length=1, max_length=COMMENT_MAX)]


@router.post("/assets/{serial}/comments", response={201: EventOut, **ERRORS_WRITE}, summary="Comment")
def asset_comment(request: HttpRequest, serial: Serial, payload: CommentIn) -> Status[EventOut]:
    """A comment kept in the asset's history."""
    permission_require(request, VIEW)
    event = services.asset_comment(asset=asset_found(serial), user=actor(request), text=payload.text)
    event.actor = actor(request)
    return Status(201, event_out(event))


class RegenerateIn(Schema):
    count: Literal[1, 2, 4, 8] = Field(4, description=f"new variants (at most {REGENERATE_MAX})")
    variables: (
        dict[Annotated[str, StringConstraints(max_length=100)], Annotated[str, StringConstraints(max_length=200)]]
        | None
    ) = Field(None, description="variable values to change (the others keep the asset's own)")


class RegenerateOut(Schema):
    serials: list[int] = Field(description="the new, pending assets")
    generation: str = Field(description="where their generation was started, or why it could not start")
    started: bool


@router.post("/assets/{serial}/regenerate", response={202: RegenerateOut, **ERRORS_WRITE}, summary="Regenerate")
def asset_regenerate(
    request: HttpRequest, serial: Serial, payload: RegenerateIn, idempotency_key: str | None = IdempotencyKey
) -> Any:
    """New variants of a rejected asset (new seeds, optionally edited variables); they join the
    queue when generated."""
    permission_require(request, VIEW)

    def run() -> Status[RegenerateOut]:
        serials = services.asset_regenerate(
            asset=asset_found(serial), user=actor(request), count=payload.count, variables=payload.variables
        )
        try:
            where = orchestrator.assets_generate_submit(serials=serials)
        except Exception as exc:  # the assets stay pending, as the page says
            logger.warning("regeneration of asset %s registered %s but could not start: %s", serial, serials, exc)
            return Status(202, RegenerateOut(serials=serials, generation=f"not started ({exc})", started=False))
        return Status(202, RegenerateOut(serials=serials, generation=where, started=True))

    return idempotent(request, key=idempotency_key, body=payload, run=run)
