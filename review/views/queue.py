"""The queue's tabs, an asset's page, its siblings side by side, and its stored files."""

from __future__ import annotations

from django.contrib.auth.decorators import permission_required
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import render
from django.views.decorators.http import require_GET

from provenance.config import provenance_config_from_settings
from provenance.credentials import c2pa_read, reader_context
from provenance.storage import LocalStorage
from review import selectors, verify
from review.files import file_response
from review.forms import (
    ApproveForm,
    BulkDecisionForm,
    CommentForm,
    RegenerateForm,
    RejectForm,
    RevokeForm,
)
from review.models import ReviewDecision
from review.states import AssetState
from review.views import asset_or_404

PAGE_SIZE = 60
MAX_PAGE = 500  # deeper pages cost an ever longer index walk; filter instead


@permission_required("review.view_asset", raise_exception=True)
@require_GET
def queue(request: HttpRequest) -> HttpResponse:
    state = request.GET.get("state") or AssetState.IN_REVIEW
    if state not in AssetState.values:
        state = AssetState.IN_REVIEW
    try:
        page = max(1, min(int(request.GET.get("page", "1")), MAX_PAGE))
    except ValueError:
        page = 1
    start = (page - 1) * PAGE_SIZE
    # One row more than a page tells whether there is a next page, without counting them all.
    assets = list(selectors.asset_list(state=state)[start : start + PAGE_SIZE + 1])
    has_next = len(assets) > PAGE_SIZE and page < MAX_PAGE
    return render(
        request,
        "review/queue.html",
        {
            "assets": assets[:PAGE_SIZE],
            "state": state,
            "state_label": AssetState(state).label,
            "page": page,
            "next_page": page + 1 if has_next else None,
            "previous_page": page - 1 if page > 1 else None,
            "counts": [(c.state, AssetState(c.state).label, c.label) for c in selectors.asset_state_counts()],
            "bulk_form": BulkDecisionForm(),
            "reasons": ReviewDecision.Reason.choices,
            "selectable": state == AssetState.IN_REVIEW and request.user.has_perm("review.review_asset"),
        },
    )


@permission_required("review.view_asset", raise_exception=True)
@require_GET
def asset_detail(request: HttpRequest, serial: int) -> HttpResponse:
    asset = asset_or_404(serial, history=True)
    c2pa_report = watermark = None
    if asset.file_path:
        config = provenance_config_from_settings()
        data = LocalStorage(config.storage_root).read(asset.file_path)
        with reader_context(config.signing) as context:
            c2pa_report = c2pa_read(data, mime=asset.mime, context=context)
        # An image's pixels, or a clip's first frames together, as `verify` reads them.
        watermark = verify.watermark_examine(data, mime=asset.mime)
    decisions = list(asset.decisions.all())
    mine = next((d for d in decisions if d.reviewer_id == request.user.pk), None)
    return render(
        request,
        "review/asset.html",
        {
            "asset": asset,
            "c2pa": c2pa_report,
            "watermark": watermark,
            "events": list(asset.events.all()),  # prefetched, oldest first
            "decisions": decisions,
            "my_decision": mine,
            "approvals": sum(d.decision == ReviewDecision.Decision.APPROVE for d in decisions),
            "publications": list(asset.publications.all()),
            "approve_form": ApproveForm(),
            "comment_form": CommentForm(),
            "revoke_form": RevokeForm(),
            "can_revoke": asset.state == AssetState.PUBLISHED,
            "reasons": ReviewDecision.Reason.choices,
            "reject_form": RejectForm(),
            "can_decide": asset.state == AssetState.IN_REVIEW and mine is None,
            "can_publish": asset.state == AssetState.APPROVED,
            "regenerate_form": RegenerateForm(variables=asset.variables)
            if asset.state == AssetState.REJECTED
            else None,
            "regenerations": list(asset.regenerations.all()),
        },
    )


@permission_required("review.view_asset", raise_exception=True)
@require_GET
def asset_compare(request: HttpRequest, serial: int) -> HttpResponse:
    """The asset and its siblings (the other seeds of its prompt) side by side."""
    asset = asset_or_404(serial)
    return render(
        request, "review/compare.html", {"asset": asset, "siblings": list(selectors.asset_siblings(asset=asset))}
    )


@permission_required("review.view_asset", raise_exception=True)
@require_GET
def asset_file(request: HttpRequest, serial: int, kind: str) -> HttpResponseBase:
    """The stored master or thumbnail, whole or the byte range a video player asks for; only for
    logged-in users (middleware)."""
    asset = asset_or_404(serial)
    relative = {"master": asset.file_path, "thumbnail": asset.thumb_path}.get(kind)
    if not relative:
        raise Http404(f"Asset {serial} has no {kind}")
    path = LocalStorage(provenance_config_from_settings().storage_root).path(relative)
    if not path.is_file():
        raise Http404(f"Asset {serial}'s {kind} is missing from storage")
    response = file_response(request, path, content_type=asset.mime if kind == "master" else "image/jpeg")
    response["Cache-Control"] = "private, max-age=3600"
    return response
