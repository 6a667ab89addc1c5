"""The verify page and API: any uploaded file in, its verify report out. Uploads are read through
a bounded in-memory handler, refused by their Content-Length before any of the body is read. Only
GREENLIGHT_VERIFY_CONCURRENCY verifies run at once in the process (taken before the body is read,
so refused requests hold no upload either): another one is answered 429 with Retry-After at
once; each has GREENLIGHT_VERIFY_TIMEOUT_SECONDS of work, after which it is answered 503."""

from __future__ import annotations

import io
import json
from typing import Any, TypeVar

from django.conf import settings
from django.contrib.auth.decorators import login_not_required, permission_required
from django.core.files.uploadedfile import InMemoryUploadedFile
from django.core.files.uploadhandler import FileUploadHandler, StopUpload
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, JsonResponse
from django.http.multipartparser import MultiPartParserError
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt, csrf_protect

from review import verify
from review.errors import VerifyRefusedError
from review.verify import Deadline, VerifyReport, verify_slot
from review.verify.limits import RETRY_AFTER_SECONDS

_Response = TypeVar("_Response", bound=HttpResponse)

VERIFY_ENVELOPE = 64 * 1024  # room for the multipart headers and boundaries around the file
VERIFY_STATUS = {"too_large": 413, "not_supported": 415, "busy": 429, "timeout": 503}  # other refusals: 400


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
    data = upload.read()
    upload.close()  # the handler's buffer: the bytes are now held once, not twice
    # The time budget is for the work, from here: the upload's own pace is the server's to bound.
    return verify.file_verify(data=data, filename=upload.name or "", deadline=Deadline.from_settings())


@csrf_exempt  # the upload handler must be installed before CSRF reads the body; `_verify_post` checks CSRF
@permission_required("review.view_asset", raise_exception=True)
def verify_page(request: HttpRequest) -> HttpResponse:
    """Upload any file and see what its credentials, watermark and our records say."""
    if request.method == "POST":
        try:
            handler = _verify_prepare(request)
            with verify_slot():
                return _verify_post(request, handler)
        except VerifyRefusedError as refused:
            return _verify_refused(request, refused)
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
    response = _verify_render(request, report=None, error=str(refused), status=VERIFY_STATUS.get(refused.reason, 400))
    return _retry_after(response, refused)


def _retry_after(response: _Response, refused: VerifyRefusedError) -> _Response:
    if refused.reason == "busy":
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


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
        handler = _verify_prepare(request)
        with verify_slot():
            report = _verify_read(request, handler)
    except VerifyRefusedError as refused:
        response = JsonResponse(
            {"error": refused.reason, "detail": str(refused)}, status=VERIFY_STATUS.get(refused.reason, 400)
        )
        return _retry_after(response, refused)
    return JsonResponse(report.to_dict())


# The REST API's verify (api/routers/verify.py) reads an upload through the same two steps.
verify_upload_prepare = _verify_prepare
verify_upload_read = _verify_read
