"""From a generated image or clip to stored, signed files: watermark first, then sign, then store."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

import c2pa
import numpy as np
from PIL import Image

from pipeline.sources import source_ingredients
from prompt_library.specs import Variant
from provenance.credentials import c2pa_sign, generated_manifest, signed_manifest
from provenance.errors import WatermarkCapacityError, WatermarkError
from provenance.fingerprint import image_fingerprint
from provenance.media import MIME
from provenance.mp4 import Clip, mp4_encode, mp4_watermark_frames
from provenance.png import png_encode
from provenance.renditions import RenditionRequest, rendition_sign, thumbnail_render
from provenance.storage import LocalStorage
from provenance.watermark import (
    RgbArray,
    rgb_pixels,
    watermark_embed,
    watermark_embed_pixels,
    watermark_payload,
    watermark_read_frames,
)
from provenance.watermark_keys import WatermarkKey, mark_id_new
from review.intake import GeneratedFile

# The thumbnail as asked for: 256 px, or the smallest larger size at which its serial reads back
# (busy photographs: provenance.renditions.thumbnail_render); the generation record says which.
THUMBNAIL = RenditionRequest(name="thumbnail", format="jpeg", width=256, height=256, quality=80)
# x264 CRFs a clip master is encoded at, in turn, until its frames read back the serial: 18 looks
# lossless and keeps the mark (tests/pipeline/test_finalize.py); 10 is for the rare clip it does not.
MASTER_CRFS = (18, 10)
# Fresh mark ids an image tries when it cannot carry its asset's own (``_mark``).
MARK_ID_DRAWS = 3


@dataclass(frozen=True)
class Signing:
    """A signer and the trust context it signs with, opened once per batch, and the
    installation's current watermark key (``provenance.watermark_keys``)."""

    signer: c2pa.Signer
    context: c2pa.Context
    watermark: WatermarkKey


# The folders under the storage root that hold what a run stores, each file named by its asset's
# key (infra.sweep removes those no asset row references).
MASTERS_DIR = "masters"
THUMBNAILS_DIR = "thumbnails"


def master_path(key: str, fmt: str = "png") -> str:
    return f"{MASTERS_DIR}/{key[:2]}/{key}.{fmt}"


def thumbnail_path(key: str) -> str:
    return f"{THUMBNAILS_DIR}/{key[:2]}/{key}.jpg"


def image_finalize(
    variant: Variant,
    *,
    serial: int,
    mark_id: int,
    image: Image.Image | RgbArray,
    signing: Signing,
    storage: LocalStorage,
    safety: Mapping[str, object] | None = None,
) -> GeneratedFile:
    """Watermark the image (or its RGB pixels, height x width x 3 bytes) with its mark id (the
    installation's key), sign it as a PNG master, store it and a signed thumbnail, and describe
    the result (with both manifests) for the review hand-over."""
    # 1. Watermark first: any byte changed after signing would break the hard binding. The marked
    # pixels are written as they are: the PNG from the array, the thumbnail from its image.
    pixels = image if isinstance(image, np.ndarray) else rgb_pixels(image)
    marked_pixels, carried = _mark(pixels, mark_id, signing.watermark)
    png = png_encode(marked_pixels)
    marked = Image.fromarray(marked_pixels)
    # 2-4. Sign, read back, store the master and a signed thumbnail (made from the marked pixels:
    # the same as the signed PNG's, without decoding it again).
    record = {**variant.generation_record(), "serial": serial, "asset_key": variant.key}
    if safety:  # the classifier's verdict, signed with the file and kept on the asset
        record["safety"] = dict(safety)
    file = _master_store(
        variant,
        serial=serial,
        mark_id=carried,
        data=png,
        fmt="png",
        record=record,
        signing=signing,
        storage=storage,
        still=marked,
    )
    if not safety:
        return file
    score, flagged = safety.get("score"), safety.get("flagged")
    scored = float(score) if isinstance(score, int | float) else None
    return replace(file, safety_score=scored, safety_flagged=bool(flagged))


def _mark(pixels: RgbArray, mark_id: int, key: WatermarkKey) -> tuple[RgbArray, int]:
    """``pixels`` marked with ``mark_id``, and the mark id they carry.

    A small busy picture (a 256 px master of fine texture or noise) has room for some mark ids
    and not others: the read-back of a few falls short at every strength (7 of 60 for one such
    picture, against none at 384 px). Such an asset would fail again on every retry, its picture
    and mark id being the same, so a refused mark id is replaced by fresh random ones (up to
    ``MARK_ID_DRAWS``), which the hand-over records on the asset before any file is seen. A
    picture that takes none of them is refused with the first error; one too small or in the wrong
    mode (``WatermarkError``) at once."""
    try:
        return watermark_embed_pixels(pixels, mark_id, key=key.secret), mark_id
    except WatermarkCapacityError as refused:
        for _ in range(MARK_ID_DRAWS):
            drawn = mark_id_new()
            try:
                return watermark_embed_pixels(pixels, drawn, key=key.secret), drawn
            except WatermarkCapacityError:
                continue
        raise WatermarkCapacityError(f"{refused} (nor {MARK_ID_DRAWS} other mark ids drawn for it)") from refused


def clip_finalize(
    variant: Variant, *, serial: int, mark_id: int, clip: Clip, signing: Signing, storage: LocalStorage
) -> GeneratedFile:
    """Watermark every frame of the clip with its serial, encode it as an H.264 MP4 master that
    still reads back the serial, sign and store it and a signed JPEG thumbnail of its first
    frame, and describe the result for the review hand-over."""
    # 1. Watermark every frame, then encode; the mark must survive the encoder to be claimed.
    marked = [watermark_embed(frame, mark_id, key=signing.watermark.secret) for frame in clip.frames]
    mp4 = clip_encode(marked, clip.fps, serial=mark_id, mark_key=signing.watermark)
    # 2-4. Sign (the record says how many frames at what rate), read back, store.
    record = {
        **variant.generation_record(),
        "frames": len(marked),
        "seconds": round(len(marked) / clip.fps, 3),
        "serial": serial,
        "asset_key": variant.key,
    }
    return _master_store(
        variant,
        serial=serial,
        mark_id=mark_id,
        data=mp4,
        fmt="mp4",
        record=record,
        signing=signing,
        storage=storage,
        still=marked[0],
    )


def clip_encode(frames: list[Image.Image], fps: int, *, serial: int, mark_key: WatermarkKey) -> bytes:
    """The marked frames as an MP4 whose first decoded frames read back ``serial`` (a mark id,
    with ``mark_key``; ``mp4_watermark_frames``: what `verify` reads), at the first of
    ``MASTER_CRFS`` that keeps it."""
    for crf in MASTER_CRFS:
        data = mp4_encode(frames, fps, crf=crf)
        reading = watermark_read_frames(mp4_watermark_frames(data), key=mark_key.secret)  # as verify reads
        if reading.serial == serial:
            return data
    raise WatermarkError(
        f"Clip of {len(frames)} frames {frames[0].width}x{frames[0].height} does not read back serial {serial} "
        f"after H.264 at CRF {MASTER_CRFS[-1]} (read: {reading.serial}, confidence {reading.confidence:.1f})"
    )


def _master_store(
    variant: Variant,
    *,
    serial: int,
    mark_id: int,
    data: bytes,
    fmt: str,
    record: dict[str, object],
    signing: Signing,
    storage: LocalStorage,
    still: Image.Image,
) -> GeneratedFile:
    """Sign a marked master (generation record, watermark as soft binding), read its manifest
    back for the manifest store, store it and a signed thumbnail made from ``still`` (the marked
    image, or a clip's first marked frame), and describe both for the hand-over.

    The thumbnail is rendered first, so that the signed generation record says at what size it
    was made and whether it carries the serial ("own": marked at that size; "master": the
    master's mark, resized with it; "none"). It never fails the asset: the master is marked.
    """
    mime = MIME[fmt]
    title = f"{variant.campaign} #{serial}"
    thumb = thumbnail_render(still, serial=mark_id, mark_key=signing.watermark, request=THUMBNAIL, transcoded=True)
    # Width and height apart: c2pa stores a JSON array of numbers as a byte string (256 -> 0).
    width, height = thumb.size
    record = {**record, "thumbnail": {"width": width, "height": height, "watermark": thumb.mark}}
    manifest = generated_manifest(
        title=title,
        model_name=variant.model_name,
        model_manifest_hash=variant.model_manifest_hash,
        generation_record=record,
        watermark_value=watermark_payload(mark_id),
        watermark_key_id=signing.watermark.key_id,
        edit_actions=variant.edit_actions(),  # the resize from the model's size to the output's
    )
    signed = c2pa_sign(
        data,
        mime=mime,
        manifest=manifest,
        signer=signing.signer,
        context=signing.context,
        ingredients=source_ingredients(variant),  # the source photo it was drawn from, if any
    )
    # Read the manifest back (2-4 ms) for the manifest store: what `verify` retrieves when a copy
    # of the file has lost its own. It refuses a file that does not read back trusted, so only
    # such files are stored, and its sha256 of the signed bytes is the stored file's (not hashed
    # again on the way to the disk).
    master_manifest = signed_manifest(signed, kind="master", mime=mime, context=signing.context)
    path = master_path(variant.key, fmt)
    storage.write(path, signed, sha256=master_manifest.sha256)
    thumb_signed = rendition_sign(
        thumb,
        master=signed,
        master_mime=mime,
        serial=mark_id,
        mark_key=signing.watermark,
        request=THUMBNAIL,
        title=title,
        signer=signing.signer,
        context=signing.context,
    )
    thumb_manifest = signed_manifest(
        thumb_signed, kind="thumbnail", mime=MIME[THUMBNAIL.format], context=signing.context
    )
    storage.write(thumbnail_path(variant.key), thumb_signed, sha256=thumb_manifest.sha256)
    return GeneratedFile(
        key=variant.key,
        mark_id=mark_id,  # what the files carry: the hand-over records it on the asset
        file_path=path,
        thumb_path=thumbnail_path(variant.key),
        mime=mime,
        sha256=master_manifest.sha256,
        size=len(signed),
        generation_record=record,
        manifests=(master_manifest, thumb_manifest),
        fingerprint=image_fingerprint(still),  # the content check verify makes before a watermark claim
    )
