"""Derived files (thumbnails, published renditions): resized, re-watermarked, signed with the
master as their `parentOf` ingredient."""

from __future__ import annotations

import io
from dataclasses import dataclass

import c2pa
from PIL import Image, ImageOps

from pipeline.signing import c2pa_sign, rendition_manifest
from pipeline.watermark import watermark_embed, watermark_payload, watermark_read

MIME = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}
EXTENSION = {"png": "png", "jpeg": "jpg", "webp": "webp"}
WATERMARK_MIN_SIDE = 256


@dataclass(frozen=True)
class RenditionRequest:
    name: str
    format: str
    width: int
    height: int
    quality: int = 90


def image_encode(image: Image.Image, fmt: str, *, quality: int = 90) -> bytes:
    """Encode an RGB image; PNG is lossless, JPEG and WebP use `quality`."""
    buf = io.BytesIO()
    if fmt == "png":
        image.save(buf, format="PNG", compress_level=6)
    elif fmt == "jpeg":
        # 4:4:4: chroma subsampling would blur the U channel that carries the watermark.
        image.save(buf, format="JPEG", quality=quality, optimize=True, subsampling=0)
    elif fmt == "webp":
        image.save(buf, format="WEBP", quality=quality, method=4)
    else:
        raise ValueError(f"unknown image format {fmt!r} (known: {', '.join(MIME)})")
    return buf.getvalue()


def rendition_make(
    master: bytes,
    *,
    master_mime: str,
    serial: int,
    request: RenditionRequest,
    title: str,
    signer: c2pa.Signer,
    context: c2pa.Context,
) -> bytes:
    """A signed rendition of a signed master: resized (cropped to the aspect), re-watermarked
    with the same serial where it is large enough, encoded, and signed with the master as parent."""
    image = Image.open(io.BytesIO(master)).convert("RGB")
    size = (request.width, request.height)
    actions = []
    if image.size != size:
        image = ImageOps.fit(image, size, Image.Resampling.LANCZOS)
        actions.append("c2pa.resized")
    marked = min(size) >= WATERMARK_MIN_SIDE
    if marked:
        image = watermark_embed(image, serial)
    mime = MIME[request.format]
    if mime != master_mime:
        actions.append("c2pa.transcoded")
    data = image_encode(image, request.format, quality=request.quality)
    # Claim the watermark only if it survived resizing and encoding.
    if marked and watermark_read(Image.open(io.BytesIO(data)).convert("RGB")).serial == serial:
        actions.append("c2pa.watermarked")
    else:
        marked = False
    manifest = rendition_manifest(
        title=f"{title} ({request.name})",
        actions=actions or ["c2pa.converted"],
        watermark_value=watermark_payload(serial) if marked else None,
    )
    return c2pa_sign(data, mime=mime, manifest=manifest, signer=signer, context=context, parent=(master, master_mime))
