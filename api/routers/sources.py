"""Source images: upload a product or reference photo (or a mask) once, then name it by its sha256
from a campaign (`source_image`) or a request's brief (`reference_image`). Stored once per
content: uploading the same bytes again answers the same image (200 instead of 201).

An upload is checked at the boundary: by size before it is read (413), by its bytes being a PNG,
JPEG or WebP (415), and by decoding and its dimensions (422), each refusal naming the field.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Annotated, Any

from django.http import HttpRequest
from ninja import Path, Router, Schema, Status
from pydantic import Field, StringConstraints

from api.auth import actor
from api.problems import ApiProblem
from api.responses import errors
from prompt_library.errors import SourceImageError
from prompt_library.models import SourceImage
from prompt_library.sources import SOURCE_MAX_BYTES, source_image_get, source_image_store
from review.roles import REQUEST, VIEW, role_require

router = Router(tags=["sources"])

Sha256 = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
# What a multipart body may hold besides the image itself: its boundary and part headers.
MULTIPART_SLACK = 64 * 1024
# The first bytes of each format a source image may be (WebP: RIFF....WEBP).
SIGNATURES = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff")


class SourceOut(Schema):
    sha256: str
    name: str
    mime: str
    width: int
    height: int
    size: int = Field(description="bytes")
    has_alpha: bool = Field(description="it has transparency: an inpainting template can make its mask from it")
    url: str = Field(description="the image itself, for a signed-in dashboard user")
    created_at: datetime


def source_out(source: SourceImage) -> SourceOut:
    return SourceOut(
        sha256=source.sha256,
        name=source.name,
        mime=source.mime,
        width=source.width,
        height=source.height,
        size=source.size,
        has_alpha=source.has_alpha,
        url=f"/sources/{source.sha256}",
        created_at=source.created_at,
    )


def image_bytes_check(data: bytes, *, field: str) -> None:
    """Refuse bytes that cannot be a source image before decoding them: too large (413), or not
    the start of a PNG, JPEG or WebP file (415). Decoding and dimensions are the store's check."""
    if len(data) > SOURCE_MAX_BYTES:
        raise ApiProblem(
            413,
            "too-large",
            f"{field} is larger than {SOURCE_MAX_BYTES // 2**20} MiB",
            field=field,
            value=f"{len(data)} bytes",
        )
    webp = data[:4] == b"RIFF" and data[8:12] == b"WEBP"
    if not (webp or data.startswith(SIGNATURES)):
        raise ApiProblem(
            415,
            "unsupported-media-type",
            f"{field} must be a PNG, JPEG or WebP image",
            field=field,
            value=data[:12].hex() or "empty",
        )


def _source_refused(exc: SourceImageError, field: str) -> ApiProblem:
    return ApiProblem(422, "invalid-value", f"{field} {exc.problem}", field=field, value=exc.value)


@router.post(
    "/sources",
    response={200: SourceOut, 201: SourceOut, **errors(413, 415)},
    summary="Upload a source image",
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
def source_post(request: HttpRequest) -> Any:
    """Store a PNG, JPEG or WebP image (16 to 4096 px a side, at most 25 MiB) as a source image,
    once per content: 201 with its sha256 when new, 200 when the same bytes were uploaded before."""
    role_require(actor(request), REQUEST)
    field = "body.file"
    length = request.META.get("CONTENT_LENGTH") or "0"
    if not length.isdigit() or int(length) > SOURCE_MAX_BYTES + MULTIPART_SLACK:
        raise ApiProblem(
            413, "too-large", f"the upload is larger than {SOURCE_MAX_BYTES // 2**20} MiB", field=field, value=length
        )
    if request.content_type != "multipart/form-data":
        raise ApiProblem(
            415,
            "unsupported-media-type",
            "upload the image as multipart/form-data, in a part named 'file'",
            field="header.Content-Type",
            value=request.content_type or None,
        )
    upload = request.FILES.get("file")
    if upload is None:
        raise ApiProblem(422, "invalid-value", "the image is missing: send it in a part named 'file'", field=field)
    data = upload.read(SOURCE_MAX_BYTES + 1)
    image_bytes_check(data, field=field)
    existed = SourceImage.objects.filter(sha256=hashlib.sha256(data).hexdigest()).exists()
    try:
        source = source_image_store(data=data, name=str(upload.name or ""), created_by=actor(request), field=field)
    except SourceImageError as exc:
        raise _source_refused(exc, field) from None
    return Status(200 if existed else 201, source_out(source))


@router.get("/sources/{sha256}", response={200: SourceOut, **errors()}, summary="One source image")
def source_get(request: HttpRequest, sha256: Annotated[Sha256, Path(description="its sha256")]) -> SourceOut:
    """A stored source image's description: its name, format, size and transparency."""
    role_require(actor(request), VIEW)
    try:
        return source_out(source_image_get(sha256=sha256))
    except SourceImageError:
        raise ApiProblem(404, "not-found", f"No source image {sha256}", field="path.sha256", value=sha256) from None
