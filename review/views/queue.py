"""The queue's tabs, an asset's page, its siblings side by side, and its stored files."""

from __future__ import annotations

import logging

from django.contrib.auth.decorators import permission_required
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import render
from django.views.decorators.http import require_GET

from provenance.config import provenance_config_from_settings
from provenance.credentials import c2pa_read, reader_context
from provenance.errors import StorageError
from provenance.storage import LocalStorage
from review import selectors, verify
from review.files import file_response
from review.forms import (
    ApproveForm,
    BulkDecisionForm,
    CommentForm,
    QueueFilterForm,
    RegenerateForm,
    RejectForm,
    RevokeForm,
    form_problems,
)
from review.models import Asset, ReviewDecision
from review.states import AssetState
from review.views import asset_or_404

logger = logging.getLogger("greenlight.review")

PAGE_SIZE = 60
MAX_PAGE = 500  # deeper pages cost an ever longer index walk; filter instead


@permission_required("review.view_asset", raise_exception=True)
@require_GET
def queue(request: HttpRequest) -> HttpResponse:
    """A tab of the queue, a page at a time. A filter it cannot read (a state that does not
    exist, a page that is not a number) answers 400 with the problem named, over the first page
    of what it can read."""
    form = QueueFilterForm(request.GET)
    understood = form.is_valid()
    filters = form.cleaned_data  # after is_valid(), only the fields that were understood
    state = filters.get("state") or AssetState.IN_REVIEW
    page = min(filters.get("page") or 1, MAX_PAGE)
    start = (page - 1) * PAGE_SIZE
    # One row more than a page tells whether there is a next page, without counting them all.
    flagged = bool(filters.get("flagged"))
    assets = list(selectors.asset_list(state=state, flagged=flagged)[start : start + PAGE_SIZE + 1])
    has_next = len(assets) > PAGE_SIZE and page < MAX_PAGE
    return render(
        request,
        "review/queue.html",
        {
            "assets": assets[:PAGE_SIZE],
            "state": state,
            "flagged": flagged,
            "state_label": AssetState(state).label,
            "page": page,
            "next_page": page + 1 if has_next else None,
            "previous_page": page - 1 if page > 1 else None,
            "counts": [(c.state, AssetState(c.state).label, c.label) for c in selectors.asset_state_counts()],
            "bulk_form": BulkDecisionForm(),
            "reasons": ReviewDecision.Reason.choices,
            "selectable": state == AssetState.IN_REVIEW and request.user.has_perm("review.review_asset"),
            "filter_problems": "" if understood else form_problems(form),
        },
        status=200 if understood else 400,
    )


@permission_required("review.view_asset", raise_exception=True)
@require_GET
def asset_detail(request: HttpRequest, serial: int) -> HttpResponse:
    """An asset: its file, credentials, watermark, history and the forms to act on it. A master
    or thumbnail missing from storage (or unreadable) is shown as such, never a server error."""
    asset = asset_or_404(serial, history=True)
    c2pa_report = watermark = None
    config = provenance_config_from_settings()
    storage = LocalStorage(config.storage_root)
    master_problem = _stored_problem(storage, asset, "master", asset.file_path) if asset.file_path else ""
    thumb_problem = _stored_problem(storage, asset, "thumbnail", asset.thumb_path) if asset.thumb_path else ""
    if asset.file_path and not master_problem:
        try:
            data = storage.read(asset.file_path)
        except StorageError as exc:  # gone or unreadable since the check: the same answer
            master_problem = "unreadable"
            _stored_problem_log(asset, "master", asset.file_path, f"{master_problem} ({exc})")
        else:
            with reader_context(config.signing) as context:
                c2pa_report = c2pa_read(data, mime=asset.mime, context=context)
            # An image's pixels, or a clip's first frames together, as `verify` reads them.
            watermark = verify.watermark_examine(data, mime=asset.mime)
    decisions = list(asset.decisions.all())
    mine = next((d for d in decisions if d.reviewer_id == request.user.pk), None)
    # Segregation of duties: whoever requested the campaign may not decide on its assets.
    requested_by_me = asset.campaign.requested_by_id == request.user.pk
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
            "can_decide": asset.state == AssetState.IN_REVIEW and mine is None and not requested_by_me,
            "requested_by_me": requested_by_me,
            "master_problem": master_problem,
            "thumb_problem": thumb_problem,
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
    logged-in users (middleware). A file missing from storage, or unreadable, answers 404."""
    asset = asset_or_404(serial)
    relative = {"master": asset.file_path, "thumbnail": asset.thumb_path}.get(kind)
    if not relative:
        raise Http404(f"Asset {serial} has no {kind}")
    storage = LocalStorage(provenance_config_from_settings().storage_root)
    problem = _stored_problem(storage, asset, kind, relative)
    if problem:
        raise Http404(f"Asset {serial}'s {kind} is {problem}")
    try:
        response = file_response(
            request, storage.path(relative), content_type=asset.mime if kind == "master" else "image/jpeg"
        )
    except OSError as exc:  # removed or made unreadable since the check
        _stored_problem_log(asset, kind, relative, f"unreadable ({exc})")
        raise Http404(f"Asset {serial}'s {kind} is unreadable") from exc
    response["Cache-Control"] = "private, max-age=3600"
    return response


def _stored_problem(storage: LocalStorage, asset: Asset, kind: str, relative: str) -> str:
    """What is wrong with an asset's stored file ("missing from storage", "unreadable", "outside
    the storage root"), or "" when it is there to read; a problem is logged as a warning.

    Logged, not written to the audit log: it is seen on every page view (one a reviewer may
    reload many times) rather than done to the asset, and the audit log records what people and
    the pipeline did. The warning reaches whoever runs the storage, who can restore the file.
    """
    try:
        path = storage.path(relative)
    except StorageError:
        problem = "outside the storage root"
    else:
        try:
            problem = "" if path.is_file() else "missing from storage"
        except OSError:  # a parent folder that may not be searched
            problem = "unreadable"
    if problem:
        _stored_problem_log(asset, kind, relative, problem)
    return problem


def _stored_problem_log(asset: Asset, kind: str, relative: str, problem: str) -> None:
    logger.warning("asset %s: its %s %r is %s", asset.pk, kind, relative, problem)
