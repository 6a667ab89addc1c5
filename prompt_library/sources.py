"""Source images: the product or reference photos (and masks) that image-to-image and inpainting
templates generate from, stored once under their sha256.

A source image is an asset of its own: hashed, checked (a PNG, JPEG or WebP that decodes, 16 to
4096 px a side), stored under ``sources/`` in the storage root and recorded as a `SourceImage`
row. Templates and briefs name it (a library file, or an uploaded image by its sha256); the
variants made from it carry the sha256 in their key and generation record, and the signed file
credits it as an ingredient.

``mask_from_alpha`` makes an inpainting mask from a cut-out product photo's transparency: what is
transparent is repainted (white), the product itself is kept (black).
"""

from __future__ import annotations

import functools
import hashlib
import io
import re
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.contrib.auth.models import User
from PIL import Image, UnidentifiedImageError

from prompt_library.errors import SourceImageError
from prompt_library.models import SourceImage
from prompt_library.specs import TEXT_TO_IMAGE, TemplateSpec
from provenance.storage import LocalStorage

SOURCES_DIR = "sources"
SOURCE_FORMATS = {"PNG": ("png", "image/png"), "JPEG": ("jpeg", "image/jpeg"), "WEBP": ("webp", "image/webp")}
SOURCE_MIN_SIDE, SOURCE_MAX_SIDE = 16, 4096
SOURCE_MAX_BYTES = 25 * 1024 * 1024
SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
ALPHA_MASK = "alpha"  # a template's `mask: alpha`: the mask is made from the source's transparency


def source_path(sha256: str, ext: str) -> str:
    """Where a source image is stored, relative to the storage root."""
    return f"{SOURCES_DIR}/{sha256[:2]}/{sha256}.{ext}"


def source_image_describe(data: bytes, *, field: str) -> tuple[str, str, int, int, bool]:
    """Check encoded image bytes: (format extension, mime, width, height, has alpha); a refusal
    names ``field`` and what is wrong."""
    if len(data) > SOURCE_MAX_BYTES:
        raise SourceImageError(field, f"{len(data)} bytes", f"is larger than {SOURCE_MAX_BYTES // 2**20} MiB")
    try:
        with Image.open(io.BytesIO(data)) as image:
            fmt = image.format or ""
            image.load()
            size, bands = image.size, image.getbands()
            transparent = "A" in bands or "transparency" in image.info
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise SourceImageError(field, f"{len(data)} bytes", f"is not a readable image ({type(exc).__name__})") from exc
    if fmt not in SOURCE_FORMATS:
        raise SourceImageError(field, fmt or "unknown", "must be a PNG, JPEG or WebP image")
    width, height = size
    if not (SOURCE_MIN_SIDE <= width <= SOURCE_MAX_SIDE and SOURCE_MIN_SIDE <= height <= SOURCE_MAX_SIDE):
        raise SourceImageError(
            field, f"{width}x{height}", f"each side must be from {SOURCE_MIN_SIDE} to {SOURCE_MAX_SIDE} px"
        )
    ext, mime = SOURCE_FORMATS[fmt]
    return ext, mime, width, height, transparent


def source_image_store(
    *, data: bytes, name: str, created_by: User | None = None, field: str = "source_image"
) -> SourceImage:
    """Store a source image once under its sha256 (the same bytes again return the same row)."""
    sha256 = hashlib.sha256(data).hexdigest()
    existing = SourceImage.objects.filter(sha256=sha256).first()
    if existing is not None:
        return existing
    ext, mime, width, height, transparent = source_image_describe(data, field=field)
    path = source_path(sha256, ext)
    _storage().write(path, data)
    row, _ = SourceImage.objects.get_or_create(
        sha256=sha256,
        defaults={
            "name": Path(name).name[:200] or sha256[:12],
            "file_path": path,
            "mime": mime,
            "width": width,
            "height": height,
            "size": len(data),
            "has_alpha": transparent,
            "created_by": created_by,
        },
    )
    return row


def source_image_get(*, sha256: str, field: str = "source_image") -> SourceImage:
    """The stored source image with that sha256, or a refusal naming the field and value."""
    row = SourceImage.objects.filter(sha256=sha256).first() if SHA256_RE.match(sha256 or "") else None
    if row is None:
        raise SourceImageError(field, sha256, "no source image with that sha256 has been uploaded")
    return row


def source_image_bytes(*, sha256: str, field: str = "source_image") -> bytes:
    """A stored source image's bytes, checked against its sha256 (a changed file is refused)."""
    row = source_image_get(sha256=sha256, field=field)
    data = _storage().read(row.file_path)
    if hashlib.sha256(data).hexdigest() != sha256:
        raise SourceImageError(field, sha256, f"the stored file {row.file_path} no longer has that sha256")
    return data


@dataclass(frozen=True)
class LoadedSource:
    """A stored source image's bytes with what its credit needs: file name and mime."""

    sha256: str
    data: bytes
    name: str
    mime: str


@functools.lru_cache(maxsize=32)
def source_image_load(*, sha256: str, field: str = "source_image") -> LoadedSource:
    """A stored source image, read and checked once per process: the bytes under a sha256 never
    change, so the generator and the signer (in its own thread) share one read."""
    row = source_image_get(sha256=sha256, field=field)
    return LoadedSource(
        sha256=sha256, data=source_image_bytes(sha256=sha256, field=field), name=row.name, mime=row.mime
    )


def source_override_refusal(*, template: TemplateSpec, width: int, height: int, has_alpha: bool) -> str:
    """Why a campaign's or brief's own source image (of that size and transparency) cannot stand
    in for ``template``'s, or "" when it can: only an image-to-image, inpainting or image-to-video template draws
    from a photo, ``mask: alpha`` needs transparency, and a mask file needs the photo's size."""
    label = f"template '{template.name}' v{template.number}"
    if template.mode == TEXT_TO_IMAGE:
        return (
            f"is not taken by {label}: its mode is {TEXT_TO_IMAGE} "
            "(image-to-image, inpainting and image-to-video take one)"
        )
    if template.mask == ALPHA_MASK and not has_alpha:
        return (
            f"has no transparency, but {label} (inpainting) makes its mask from the photo's alpha: give a cut-out PNG"
        )
    if template.mask and template.mask != ALPHA_MASK:
        mask = SourceImage.objects.filter(sha256=template.mask).first()
        if mask is not None and (mask.width, mask.height) != (width, height):
            return (
                f"is {width}x{height}, but the mask of {label} is {mask.width}x{mask.height}: "
                "a mask has its photo's size"
            )
    return ""


def mask_from_alpha(image: Image.Image) -> Image.Image:
    """An inpainting mask from a cut-out photo's transparency: white (repaint) where it is
    transparent, black (keep) where the product is."""
    alpha = image.convert("RGBA").getchannel("A")
    return alpha.point(lambda value: 255 - value)


def _storage() -> LocalStorage:
    return LocalStorage(Path(settings.GREENLIGHT_STORAGE_ROOT))
