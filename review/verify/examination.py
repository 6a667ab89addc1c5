"""What a file says about itself, before any database lookup: its format and size, its Content
Credentials as c2pa validates them with our trust anchors, and the watermark in its pixels, read
with each of the installation's secret watermark keys (``provenance.watermark_keys``)."""

from __future__ import annotations

import hashlib
from typing import Any

import c2pa as c2pa_lib
from PIL import Image

from provenance.config import provenance_config_from_settings
from provenance.credentials import GENERATION_LABEL, C2paReport, c2pa_read
from provenance.errors import SigningError, WatermarkError
from provenance.media import WATERMARK_MIN_SIDE
from provenance.mp4 import ClipLuma
from provenance.watermark import MAX_KEYS, watermark_read_frames
from provenance.watermark_keys import WatermarkKeyRing, watermark_keys_load
from review.errors import VerifyRefusedError
from review.verify.decoding import (
    FORMATS,
    format_detect,
    image_load,
    image_open,
    size_check,
    video_luma,
    watermark_still,
)
from review.verify.limits import Deadline
from review.verify.report import C2paFacts, Examination, FileFacts, WatermarkFacts

# Failure codes that say the content changed while the credentials themselves held.
CONTENT_BINDING_CODES = frozenset(
    {"assertion.dataHash.mismatch", "assertion.bmffHash.mismatch", "assertion.boxesHash.mismatch"}
)
# Failure codes of a certificate that was good when it signed and is not any more (c2pa also says
# "untrusted" then: the chain no longer validates today).
EXPIRY_CODES = frozenset({"signingCredential.expired", "signingCredential.revoked"})
_EXPIRED_ONLY = EXPIRY_CODES | {"signingCredential.untrusted"}
# The side the picture kept for the content check is shrunk to (it is shrunk to 64 px anyway).
PICTURE_SIDE = 512


def file_examine(
    *,
    data: bytes,
    filename: str,
    context: c2pa_lib.Context,
    deadline: Deadline | None = None,
    keys: WatermarkKeyRing | None = None,
) -> Examination:
    """The database-free half of `file_verify`: refusals, format, decode, C2PA and watermark.

    ``context`` is a reader context with the project's trust anchors (``reader_context``);
    ``deadline``, a time budget checked while a video is decoded and between the steps; ``keys``,
    the watermark key ring (default: the installation's, from the settings).
    """
    # 1. Cheap refusals on the bytes and the header; then a full decode.
    size_check(len(data), filename=filename)
    fmt = format_detect(data, filename=filename)
    mime, _, extensions = FORMATS[fmt]
    extension = filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
    notes: list[str] = []
    if extension and extension not in extensions:
        notes.append(f"The name says .{extension}, but the content is {fmt.upper()}: verified as {fmt.upper()}.")
    decode_error: VerifyRefusedError | None = None
    picture: Image.Image | None = None
    clip: ClipLuma | None = None
    if fmt == "mp4":
        clip = video_luma(data, filename=filename, deadline=deadline)
        width, height = clip.size if clip is not None else (0, 0)
        picture = _picture(clip.first) if clip is not None else None
        frames = list(clip.images) if clip is not None else []
    else:
        image = image_open(data, fmt, filename=filename)
        width, height = image.size
        try:
            loaded = image_load(image, fmt, filename=filename)
            picture = _picture(loaded)
            frames = [watermark_still(loaded)]
            del loaded
        except VerifyRefusedError as refused:  # a tampered file may still carry a manifest: read it first
            frames, decode_error = [], refused
        del image  # the watermark needs only its part (`watermark_still`): free the whole decoded image
    sha256 = hashlib.sha256(data).hexdigest()
    file = FileFacts(filename, len(data), sha256, fmt, mime, width, height, not extension or extension in extensions)

    # 2. The file's own Content Credentials, read with our trust anchors and no network.
    if deadline is not None:
        deadline.check("reading the Content Credentials")
    c2pa = _c2pa_facts(c2pa_read(data, mime=mime, context=context))
    # 3. The watermark, from the decoded pixels.
    if deadline is not None:
        deadline.check("reading the watermark")
    if decode_error is None:
        watermark = _watermark_facts(frames, keys, clip=clip, video=fmt == "mp4")
    elif c2pa.label is None:  # neither pixels nor credentials: a truncated or corrupt file
        raise decode_error
    else:
        watermark = WatermarkFacts(False, None, None, "not read: the image data is truncated or corrupt")
        notes.append("The image data cannot be decoded (truncated or corrupt); its Content Credentials were read.")
    return Examination(file=file, c2pa=c2pa, watermark=watermark, notes=tuple(notes), picture=picture)


def watermark_examine(data: bytes, *, mime: str, keys: WatermarkKeyRing | None = None) -> WatermarkFacts:
    """The watermark of a file whose type is known (an asset's stored master): an image's pixels,
    or a video's first frames read together, exactly as `file_verify` reads them. A file that
    cannot be decoded gives a reading with the reason, not an error."""
    fmt = next((name for name, (known, _, _) in FORMATS.items() if known == mime), None)
    try:
        fmt = fmt or format_detect(data)
        clip = video_luma(data, filename="") if fmt == "mp4" else None
        if fmt == "mp4":
            frames = list(clip.images) if clip is not None else []
        else:
            frames = [watermark_still(image_load(image_open(data, fmt, filename=""), fmt, filename=""))]
    except VerifyRefusedError as refused:
        return WatermarkFacts(False, None, None, f"not read: {refused}")
    return _watermark_facts(frames, keys, clip=clip, video=fmt == "mp4")


def _c2pa_facts(report: C2paReport) -> C2paFacts:
    manifest = report.manifest or {}
    # A rendition's own manifest has no generation record; its parent (the master) has.
    record = report.assertion(GENERATION_LABEL) or _parent_record(report) or {}
    serial = record.get("serial")
    asset_key = record.get("asset_key")
    success = set(report.success_codes())
    intact = (
        report.state in ("trusted", "invalid")
        and {"signingCredential.trusted", "claimSignature.validated"} <= success
        and set(report.validation_codes) <= CONTENT_BINDING_CODES
    )
    expired = (
        report.state == "invalid"
        and bool(set(report.validation_codes) & EXPIRY_CODES)
        and set(report.validation_codes) <= _EXPIRED_ONLY
        and "claimSignature.validated" in success
    )
    signature = manifest.get("signature_info") or {}
    signer = " / ".join(str(signature[k]) for k in ("issuer", "common_name") if signature.get(k)) or None
    signer_serial = signature.get("cert_serial_number")
    return C2paFacts(
        state=report.state,
        codes=report.validation_codes,
        error=report.error,
        label=report.active_label,
        claim_generator=_claim_generator(manifest),
        title=manifest.get("title"),
        actions=tuple(report.actions()),
        signer=signer,
        ingredients=tuple(
            f"{item.get('title') or 'untitled'} ({item.get('relationship') or 'ingredient'})"
            for item in manifest.get("ingredients", [])
            if isinstance(item, dict)
        ),
        credentials_intact=intact,
        serial=serial if isinstance(serial, int) and not isinstance(serial, bool) and serial > 0 else None,
        asset_key=asset_key if isinstance(asset_key, str) else None,
        expired_unchanged=expired,
        signer_serial=str(signer_serial) if isinstance(signer_serial, str | int) else None,
    )


def _parent_record(report: C2paReport) -> dict[str, Any] | None:
    """The generation record of the active manifest's parentOf ingredient, if it has one."""
    manifests = (report.store or {}).get("manifests") or {}
    for item in (report.manifest or {}).get("ingredients", []):
        if isinstance(item, dict) and item.get("relationship") == "parentOf":
            parent = manifests.get(item.get("active_manifest"))
            for assertion in (parent or {}).get("assertions", []):
                if isinstance(assertion, dict) and assertion.get("label") == GENERATION_LABEL:
                    data = assertion.get("data")
                    return data if isinstance(data, dict) else None
    return None


def _claim_generator(manifest: dict[str, Any]) -> str | None:
    """The claim generator as people read it: v1 manifests' string, or v2's info list."""
    if isinstance(manifest.get("claim_generator"), str):
        return str(manifest["claim_generator"])
    infos = [i for i in manifest.get("claim_generator_info") or [] if isinstance(i, dict) and i.get("name")]
    return (
        ", ".join(f"{i['name']} {i['version']}".strip() if i.get("version") else str(i["name"]) for i in infos) or None
    )


def _picture(image: Image.Image) -> Image.Image:
    """A small copy of the decoded picture for the content check (area-averaged, as it is then)."""
    if max(image.size) <= PICTURE_SIDE:
        return image
    factor = max(image.size) / PICTURE_SIDE
    size = (max(1, round(image.width / factor)), max(1, round(image.height / factor)))
    return image.resize(size, Image.Resampling.BOX)


def _watermark_facts(
    frames: list[Image.Image], keys: WatermarkKeyRing | None, *, clip: ClipLuma | None = None, video: bool = False
) -> WatermarkFacts:
    """Read ``frames`` (a still's picture, or a clip's per-kind averages: ``clip``) with every key
    on the ring, decided once."""
    if video and clip is None:  # pragma: no cover - PyAV is a declared dependency
        return WatermarkFacts(False, None, None, "not read: PyAV is not installed to decode video frames")
    width, height = clip.size if clip is not None else frames[0].size
    if not frames or (clip is None and min(width, height) < WATERMARK_MIN_SIDE):
        return WatermarkFacts(False, None, None, f"not read: {width}x{height} is too small to carry it")
    if keys is None:
        try:
            keys = watermark_keys_load(provenance_config_from_settings().watermark_keys)
        except SigningError as error:  # names the folder or the callback, never a key
            return WatermarkFacts(False, None, None, f"not read: {error}")
    # Every key on the ring (the current one first) in one geometry search: rotation orphans
    # nothing, and the threshold rises with the number of keys tried (`z_threshold`), so the
    # false-positive bound holds over all of them. A ring longer than one read takes is read in turns.
    ring = keys.keys
    best = None
    for start in range(0, len(ring), MAX_KEYS):
        chunk = ring[start : start + MAX_KEYS]
        try:
            # A clip's averages are folded into one reading, decided once: they are made from the file
            # alone, never with a key, so the still's false-positive bound holds.
            reading = watermark_read_frames(frames, keys=[key.secret for key in chunk])
        except WatermarkError as error:
            return WatermarkFacts(False, None, None, f"not read: {error}")
        if reading.serial is not None and reading.key_index is not None:
            return WatermarkFacts(True, reading.serial, reading.confidence, "", chunk[reading.key_index].key_id)
        if best is None or reading.confidence > best:
            best = reading.confidence
    return WatermarkFacts(False, None, best, "no watermark found")
