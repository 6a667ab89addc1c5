"""Verify: any uploaded file in, its verify report out, through the same bounded upload, limits,
concurrency slots and time budget as the dashboard's verify page."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja import Router

from api.auth import AUTH_READ_ONLY_UPLOAD
from api.permissions import permission_require
from api.responses import errors
from review.roles import VIEW
from review.verify import verify_slot
from review.views.verify import verify_upload_prepare, verify_upload_read

router = Router(tags=["verify"])


@router.post(
    "/verify",
    auth=AUTH_READ_ONLY_UPLOAD,
    response={200: dict[str, Any], **errors(413, 415, 429, 503)},
    summary="Verify a file",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": ["file"],
                        "properties": {"file": {"type": "string", "format": "binary"}},
                    }
                }
            },
        }
    },
)
def file_verify(request: HttpRequest) -> dict[str, Any]:
    """What a file's Content Credentials, watermark and this installation's records say about it:
    `c2pa.state` is trusted, valid, invalid or none; `asset` is the asset it leads to, if any.
    Refused by size before the upload is read (413), by format (415); 429 when every verify slot
    is taken (Retry-After), 503 when its time budget is spent."""
    permission_require(request, VIEW)
    handler = verify_upload_prepare(request)
    with verify_slot():
        report = verify_upload_read(request, handler)
    return report.to_dict()
