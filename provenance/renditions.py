"""Derived files (thumbnails, posters, published renditions): resized, re-watermarked, signed with
the master as their `parentOf` ingredient.

A still rendition is made from the master image, or from a video master's first frame (a poster);
an MP4 rendition of a video master is every frame resized, marked again and re-encoded.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import c2pa
from PIL import Image, ImageOps

from provenance.credentials import c2pa_sign, rendition_manifest
from provenance.errors import MediaError
from provenance.media import IMAGE_FORMATS, MIME, VIDEO_MIMES, WATERMARK_FRAMES, WATERMARK_MIN_SIDE
from provenance.mp4 import mp4_clip, mp4_decode, mp4_encode
from provenance.watermark import watermark_embed, watermark_payload, watermark_read, watermark_read_frames


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
        raise MediaError(f"unknown image format {fmt!r} (known: {', '.join(IMAGE_FORMATS)})", field="format", value=fmt)
    return buf.getvalue()


def mp4_crf(quality: int) -> int:
    """The x264 CRF of an MP4 rendition from its 1-100 ``quality``: 100 is CRF 18 (looks
    lossless), 85 is 23 (x264's default), 1 is 51 (the lowest)."""
    return round(18 + (100 - quality) / 3)


def master_still(master: bytes, master_mime: str) -> Image.Image:
    """The picture a still rendition is made from: the master image, or a clip's first frame."""
    if master_mime in VIDEO_MIMES:
        return mp4_decode(master, limit=1)[0]
    return Image.open(io.BytesIO(master)).convert("RGB")


def rendition_make(
    master: bytes,
    *,
    master_mime: str,
    serial: int,
    request: RenditionRequest,
    title: str,
    signer: c2pa.Signer,
    context: c2pa.Context,
    still: Image.Image | None = None,
) -> bytes:
    """A signed rendition of a signed master: resized (cropped to the aspect), re-watermarked
    with the same serial where it is large enough, encoded, and signed with the master as parent.

    ``still`` is the picture to make a still from when the caller has it (a clip's first marked
    frame, before encoding); otherwise it comes from the master (``master_still``).
    """
    mime = MIME[request.format]
    if mime in VIDEO_MIMES:
        data, actions, marked = _clip_rendition(master, master_mime=master_mime, serial=serial, request=request)
    else:
        image = still if still is not None else master_still(master, master_mime)
        data, actions, marked = _still_rendition(image, serial=serial, request=request, transcoded=mime != master_mime)
    manifest = rendition_manifest(
        title=f"{title} ({request.name})",
        actions=actions or ["c2pa.converted"],
        watermark_value=watermark_payload(serial) if marked else None,
    )
    return c2pa_sign(data, mime=mime, manifest=manifest, signer=signer, context=context, parent=(master, master_mime))


def _still_rendition(
    image: Image.Image, *, serial: int, request: RenditionRequest, transcoded: bool
) -> tuple[bytes, list[str], bool]:
    """Encoded bytes, the edit actions and whether the mark reads back, for a still."""
    size = (request.width, request.height)
    actions = []
    if image.size != size:
        image = ImageOps.fit(image, size, Image.Resampling.LANCZOS)
        actions.append("c2pa.resized")
    marked = min(size) >= WATERMARK_MIN_SIDE
    if marked:
        image = watermark_embed(image, serial)
    if transcoded:
        actions.append("c2pa.transcoded")
    data = image_encode(image, request.format, quality=request.quality)
    # Claim the watermark only if it survived resizing and encoding.
    marked = marked and watermark_read(Image.open(io.BytesIO(data)).convert("RGB")).serial == serial
    if marked:
        actions.append("c2pa.watermarked")
    return data, actions, marked


def _clip_rendition(
    master: bytes, *, master_mime: str, serial: int, request: RenditionRequest
) -> tuple[bytes, list[str], bool]:
    """Encoded bytes, the edit actions and whether the mark reads back, for an MP4 of a clip."""
    if master_mime not in VIDEO_MIMES:
        raise MediaError(
            f"an mp4 rendition needs a video master (this one is {master_mime})", field="master_mime", value=master_mime
        )
    clip = mp4_clip(master)
    size = (request.width, request.height)
    frames = list(clip.frames)
    actions = []
    if clip.size != size:
        frames = [ImageOps.fit(frame, size, Image.Resampling.LANCZOS) for frame in frames]
        actions.append("c2pa.resized")
    marked = min(size) >= WATERMARK_MIN_SIDE
    if marked:
        frames = [watermark_embed(frame, serial) for frame in frames]
    # Always re-encoded (at the rendition's quality), so always transcoded.
    actions.append("c2pa.transcoded")
    data = mp4_encode(frames, clip.fps, crf=mp4_crf(request.quality))
    marked = marked and watermark_read_frames(mp4_decode(data, limit=WATERMARK_FRAMES)).serial == serial
    if marked:
        actions.append("c2pa.watermarked")
    return data, actions, marked
