"""Dashboard views: thin, each parses input, calls one service or selector, and renders."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_not_required, permission_required
from django.core.files.uploadedfile import InMemoryUploadedFile
from django.core.files.uploadhandler import FileUploadHandler, StopUpload
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBase,
    HttpResponseNotAllowed,
    JsonResponse,
    StreamingHttpResponse,
)
from django.http.multipartparser import MultiPartParserError
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_GET, require_POST

from provenance.config import provenance_config_from_settings
from provenance.credentials import c2pa_read, reader_context
from provenance.storage import LocalStorage
from review import orchestrator, selectors, services, verify
from review.errors import ReviewError, VerifyRefusedError
from review.files import file_response
from review.forms import (
    ApproveForm,
    AuditFilterForm,
    BulkDecisionForm,
    CommentForm,
    RegenerateForm,
    RejectForm,
    RevokeForm,
)
from review.models import Asset, AuditEvent, ReviewDecision
from review.states import AssetState
from review.verify import VerifyReport

PAGE_SIZE = 60
MAX_PAGE = 500  # deeper pages cost an ever longer index walk; filter instead


def _asset_or_404(serial: int, *, history: bool = False) -> Asset:
    try:
        return selectors.asset_get(serial=serial, history=history)
    except Asset.DoesNotExist as exc:
        raise Http404(f"No asset {serial}") from exc


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
    asset = _asset_or_404(serial, history=True)
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


@permission_required("review.review_asset", raise_exception=True)
@require_POST
def task_claim(request: HttpRequest) -> HttpResponse:
    """Claim the next asset to review (leased to this reviewer) and open it."""
    asset = services.review_task_claim(reviewer=request.user)  # type: ignore[arg-type]
    if asset is None:
        messages.info(request, "Nothing is waiting for your review.")
        return redirect("review:queue")
    return redirect("review:asset", serial=asset.pk)


@permission_required("review.review_asset", raise_exception=True)
@require_POST
def task_release(request: HttpRequest, serial: int) -> HttpResponse:
    services.review_task_release(asset=_asset_or_404(serial), reviewer=request.user)  # type: ignore[arg-type]
    messages.info(request, f"Released asset {serial} back to the queue.")
    return redirect("review:queue")


def _after_decision(request: HttpRequest) -> HttpResponse:
    """Keep the reviewer moving: claim the next asset for them."""
    return task_claim(request)


@permission_required("review.review_asset", raise_exception=True)
@require_POST
def asset_approve(request: HttpRequest, serial: int) -> HttpResponse:
    asset = _asset_or_404(serial)
    form = ApproveForm(request.POST)
    if not form.is_valid():
        messages.error(request, f"Asset {serial} not approved: {form.errors.as_text()}")
        return redirect("review:asset", serial=serial)
    try:
        services.asset_approve(asset=asset, reviewer=request.user, comment=form.cleaned_data["comment"])  # type: ignore[arg-type]
    except ReviewError as exc:
        messages.error(request, str(exc))
        return redirect("review:asset", serial=serial)
    messages.success(request, f"Approved asset {serial}.")
    return _after_decision(request)


@permission_required("review.review_asset", raise_exception=True)
@require_POST
def asset_reject(request: HttpRequest, serial: int) -> HttpResponse:
    asset = _asset_or_404(serial)
    form = RejectForm(request.POST)
    if not form.is_valid():
        messages.error(request, f"Asset {serial} not rejected: choose a reason ({form.errors.as_text()})")
        return redirect("review:asset", serial=serial)
    try:
        services.asset_reject(
            asset=asset,
            reviewer=request.user,  # type: ignore[arg-type]
            reason=form.cleaned_data["reason"],
            comment=form.cleaned_data["comment"],
        )
    except ReviewError as exc:
        messages.error(request, str(exc))
        return redirect("review:asset", serial=serial)
    messages.success(request, f"Rejected asset {serial}.")
    return _after_decision(request)


@permission_required("review.view_asset", raise_exception=True)
@require_POST
def asset_regenerate(request: HttpRequest, serial: int) -> HttpResponse:
    """Ask for new variants of a rejected asset; they come back to the queue when generated."""
    asset = _asset_or_404(serial)
    form = RegenerateForm(request.POST, variables=asset.variables)
    if not form.is_valid():
        messages.error(request, f"Nothing regenerated: {form.errors.as_text()}")
        return redirect("review:asset", serial=serial)
    try:
        serials = services.asset_regenerate(
            asset=asset,
            user=request.user,  # type: ignore[arg-type]
            count=form.cleaned_data["count"],
            variables=form.variables(),
        )
    except (ReviewError, ValueError) as exc:
        messages.error(request, f"Nothing regenerated: {exc}")
        return redirect("review:asset", serial=serial)
    try:
        where = orchestrator.assets_generate_submit(serials=serials)
    except Exception as exc:  # the assets stay pending; say so rather than fail the page
        messages.warning(
            request,
            f"Registered asset(s) {', '.join(map(str, serials))}, but generation could not start ({exc}); "
            "they stay pending until `manage.py assets_generate --pending` runs.",
        )
    else:
        messages.success(
            request,
            f"Asked for {len(serials)} new variant(s) of asset {serial}: {', '.join(map(str, serials))} "
            f"({where}). They join the review queue when generated.",
        )
    return redirect("review:asset", serial=serial)


@permission_required("review.review_asset", raise_exception=True)
@require_POST
def assets_bulk(request: HttpRequest) -> HttpResponse:
    """Approve or reject the assets selected in the grid."""
    form = BulkDecisionForm(request.POST)
    serials = [int(s) for s in request.POST.getlist("serials") if s.isdigit()]
    if not serials:
        messages.error(request, "Select at least one asset first.")
    elif not form.is_valid():
        problems = " ".join(str(e) for e in form.non_field_errors()) or form.errors.as_text()
        messages.error(request, f"Nothing decided: {problems}")
    else:
        result = services.assets_decide_bulk(
            serials=serials,
            reviewer=request.user,  # type: ignore[arg-type]
            decision=form.cleaned_data["decision"],
            reason=form.cleaned_data["reason"],
            comment=form.cleaned_data["comment"],
        )
        verb = "Approved" if form.cleaned_data["decision"] == "approve" else "Rejected"
        if result.decided:
            messages.success(request, f"{verb} {len(result.decided)} asset(s): {', '.join(map(str, result.decided))}.")
        for _, problem in result.refused:
            messages.error(request, problem)
    return redirect(f"{reverse('review:queue')}?state=in_review")


@permission_required("review.publish_asset", raise_exception=True)
@require_POST
def asset_publish(request: HttpRequest, serial: int) -> HttpResponse:
    asset = _asset_or_404(serial)
    try:
        publications = services.asset_publish(asset=asset, user=request.user)  # type: ignore[arg-type]
    except ReviewError as exc:
        messages.error(request, str(exc))
        return redirect("review:asset", serial=serial)
    messages.success(request, f"Published asset {serial}: {', '.join(p.path for p in publications)}")
    return redirect("review:asset", serial=serial)


@permission_required("review.view_asset", raise_exception=True)
@require_GET
def asset_file(request: HttpRequest, serial: int, kind: str) -> HttpResponseBase:
    """The stored master or thumbnail, whole or the byte range a video player asks for; only for
    logged-in users (middleware)."""
    asset = _asset_or_404(serial)
    relative = {"master": asset.file_path, "thumbnail": asset.thumb_path}.get(kind)
    if not relative:
        raise Http404(f"Asset {serial} has no {kind}")
    path = LocalStorage(provenance_config_from_settings().storage_root).path(relative)
    if not path.is_file():
        raise Http404(f"Asset {serial}'s {kind} is missing from storage")
    response = file_response(request, path, content_type=asset.mime if kind == "master" else "image/jpeg")
    response["Cache-Control"] = "private, max-age=3600"
    return response


@permission_required("review.view_asset", raise_exception=True)
@require_POST
def asset_comment(request: HttpRequest, serial: int) -> HttpResponse:
    form = CommentForm(request.POST)
    if form.is_valid():
        services.asset_comment(asset=_asset_or_404(serial), user=request.user, text=form.cleaned_data["text"])  # type: ignore[arg-type]
    else:
        messages.error(request, f"Comment not saved: {form.errors.as_text()}")
    return redirect("review:asset", serial=serial)


@permission_required("review.publish_asset", raise_exception=True)
@require_POST
def asset_revoke(request: HttpRequest, serial: int) -> HttpResponse:
    form = RevokeForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Give a reason to revoke the asset.")
        return redirect("review:asset", serial=serial)
    try:
        services.asset_revoke(asset=_asset_or_404(serial), user=request.user, reason=form.cleaned_data["reason"])  # type: ignore[arg-type]
    except ReviewError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Revoked asset {serial}: its published files were removed.")
    return redirect("review:asset", serial=serial)


AUDIT_PAGE = 100
AUDIT_CSV_FIELDS = ["time", "asset", "action", "actor", "from_state", "to_state", "reason", "comment", "detail"]


def _audit_rows(request: HttpRequest) -> tuple[AuditFilterForm, QuerySet[AuditEvent]]:
    form = AuditFilterForm(request.GET)
    filters = form.cleaned_data if form.is_valid() else {}
    events = selectors.audit_event_list(
        action=filters.get("action") or "", actor=filters.get("actor") or "", serial=filters.get("serial")
    )
    return form, events


@permission_required("review.view_auditevent", raise_exception=True)
@require_GET
def audit_log(request: HttpRequest) -> HttpResponse:
    """The audit log, filterable, a page at a time; the same filters export as CSV."""
    form, events = _audit_rows(request)
    page = Paginator(events, AUDIT_PAGE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "review/audit.html",
        {"form": form, "page": page, "actions": selectors.audit_actions(), "query": query.urlencode()},
    )


@permission_required("review.view_auditevent", raise_exception=True)
@require_GET
def audit_csv(request: HttpRequest) -> StreamingHttpResponse:
    _, events = _audit_rows(request)

    def rows() -> Iterator[str]:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(AUDIT_CSV_FIELDS)
        for e in events.iterator(chunk_size=2000):
            detail = dict(e.detail)
            writer.writerow(
                [
                    e.created_at.isoformat(),
                    e.asset_id or "",
                    e.action,
                    e.actor.get_username() if e.actor else "pipeline",
                    e.from_state,
                    e.to_state,
                    detail.pop("reason", ""),
                    detail.pop("comment", ""),
                    json.dumps(detail, sort_keys=True),
                ]
            )
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()

    response = StreamingHttpResponse(rows(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="greenlight-audit.csv"'
    return response


@permission_required("review.view_asset", raise_exception=True)
@require_GET
def asset_compare(request: HttpRequest, serial: int) -> HttpResponse:
    """All variants of one prompt side by side."""
    asset = _asset_or_404(serial)
    return render(
        request, "review/compare.html", {"asset": asset, "variants": list(selectors.asset_variants(asset=asset))}
    )


# --- Verify any file (page and API) ---------------------------------------------------------

VERIFY_ENVELOPE = 64 * 1024  # room for the multipart headers and boundaries around the file
VERIFY_STATUS = {"too_large": 413, "not_supported": 415}  # other refusals: 400


class BoundedUploadHandler(FileUploadHandler):
    """Keeps the uploaded file in memory and stops the upload as soon as it passes ``limit``:
    nothing goes to disk and no more than the limit is ever held (a backstop behind the
    Content-Length check)."""

    def __init__(self, request: HttpRequest, limit: int) -> None:
        super().__init__(request)
        self.limit = limit
        self.too_large = False
        self._buffer = io.BytesIO()
        self._size = 0

    def new_file(self, *args: Any, **kwargs: Any) -> None:
        super().new_file(*args, **kwargs)
        self._buffer, self._size = io.BytesIO(), 0

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes | None:
        self._size += len(raw_data)
        if self._size > self.limit:
            self.too_large = True
            raise StopUpload(connection_reset=True)
        self._buffer.write(raw_data)
        return None

    def file_complete(self, file_size: int) -> InMemoryUploadedFile:
        self._buffer.seek(0)
        return InMemoryUploadedFile(
            self._buffer,
            self.field_name,
            self.file_name,
            self.content_type,
            file_size,
            self.charset,
            self.content_type_extra,
        )


def _verify_prepare(request: HttpRequest) -> BoundedUploadHandler:
    """Refuse by Content-Length before any of the body is read, and install the bounded
    in-memory upload handler. Call before anything touches request.POST or request.FILES."""
    limit = int(settings.GREENLIGHT_VERIFY_MAX_BYTES)
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > limit + VERIFY_ENVELOPE:
        raise VerifyRefusedError(
            "too_large", f"The upload is {length / 2**20:.1f} MB; verify takes files up to {limit / 2**20:.1f} MB."
        )
    handler = BoundedUploadHandler(request, limit)
    request.upload_handlers = [handler]
    return handler


def _verify_read(request: HttpRequest, handler: BoundedUploadHandler) -> VerifyReport:
    """Verify the upload's `file` field, read through ``handler``."""
    try:
        upload = request.FILES.get("file")
    except MultiPartParserError as error:
        raise VerifyRefusedError("unreadable", f"The upload is not a readable multipart form ({error}).") from None
    if handler.too_large:
        limit = handler.limit / 2**20
        raise VerifyRefusedError("too_large", f"The file is larger than {limit:.1f} MB, the most verify takes.")
    if upload is None:
        raise VerifyRefusedError("empty", "No file was uploaded (send it as the multipart field 'file').")
    return verify.file_verify(data=upload.read(), filename=upload.name or "")


@csrf_exempt  # the upload handler must be installed before CSRF reads the body; `_verify_post` checks CSRF
@permission_required("review.view_asset", raise_exception=True)
def verify_page(request: HttpRequest) -> HttpResponse:
    """Upload any file and see what its credentials, watermark and our records say."""
    if request.method == "POST":
        try:
            handler = _verify_prepare(request)
        except VerifyRefusedError as refused:
            return _verify_refused(request, refused)
        return _verify_post(request, handler)
    if request.method not in ("GET", "HEAD"):
        return HttpResponseNotAllowed(["GET", "POST"])
    return _verify_render(request, report=None, error=None, status=200)


@csrf_protect
def _verify_post(request: HttpRequest, handler: BoundedUploadHandler) -> HttpResponse:
    try:
        report = _verify_read(request, handler)
    except VerifyRefusedError as refused:
        return _verify_refused(request, refused)
    return _verify_render(request, report=report, error=None, status=200)


def _verify_refused(request: HttpRequest, refused: VerifyRefusedError) -> HttpResponse:
    return _verify_render(request, report=None, error=str(refused), status=VERIFY_STATUS.get(refused.reason, 400))


def _verify_render(
    request: HttpRequest, *, report: VerifyReport | None, error: str | None, status: int
) -> HttpResponse:
    return render(
        request,
        "review/verify.html",
        {
            "report": report,
            "error": error,
            "max_mb": int(settings.GREENLIGHT_VERIFY_MAX_BYTES) // 2**20,
            "stored_json": json.dumps(report.stored_manifest.store, indent=2)
            if report and report.stored_manifest
            else "",
        },
        status=status,
    )


@csrf_exempt  # read-only: it changes nothing, and a cross-site page cannot read the answer
@login_not_required  # answers 401 in JSON rather than redirecting to the login page
def verify_api(request: HttpRequest) -> JsonResponse:
    """POST /api/verify: a multipart `file` in, the verify report as JSON out (session login,
    permission review.view_asset, like the dashboard)."""
    if not request.user.is_authenticated:
        return JsonResponse({"error": "unauthenticated", "detail": "Log in first (session cookie)."}, status=401)
    if not request.user.has_perm("review.view_asset"):
        return JsonResponse({"error": "forbidden", "detail": "Needs permission review.view_asset."}, status=403)
    if request.method != "POST":
        response = JsonResponse({"error": "method_not_allowed", "detail": "POST a multipart 'file'."}, status=405)
        response["Allow"] = "POST"
        return response
    try:
        report = _verify_read(request, _verify_prepare(request))
    except VerifyRefusedError as refused:
        return JsonResponse(
            {"error": refused.reason, "detail": str(refused)}, status=VERIFY_STATUS.get(refused.reason, 400)
        )
    return JsonResponse(report.to_dict())
