"""`verify`: given any file, what its Content Credentials, its watermark and our records say.

One service behind the CLI (`manage.py verify`), the dashboard page (`/verify/`) and the API
(`POST /api/verify`). The file's format comes from its bytes, never from its name; bad input is
refused before anything expensive runs (size first, then the header's pixel count, then a full
decode), so no upload can make it decode a decompression bomb or fill the memory.

Identifying an asset, without false matches:
1. the file's sha256 is one the manifest store holds (a file we signed, unchanged);
2. its manifest's generation record (`org.greenlight.generation`) names a serial, and the
   manifest was signed by a trusted signer with a validated claim signature: trusted, or invalid
   only because the content no longer matches (tampered pixels, intact credentials);
3. its watermark names a serial (reported only above the detector's false-positive bound).
A serial must also be an asset in this database (and its key must match the manifest's).
"""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, Literal

import c2pa as c2pa_lib
from django.conf import settings
from PIL import Image, UnidentifiedImageError

from provenance import watermark as watermark_module
from provenance.config import provenance_config_from_settings
from provenance.credentials import GENERATION_LABEL, C2paReport, c2pa_read, reader_context
from provenance.errors import WatermarkError
from provenance.media import EXTENSIONS_READ, MIME, WATERMARK_FRAMES, WATERMARK_MIN_SIDE
from provenance.watermark import WatermarkReading, watermark_read
from review.errors import VerifyRefusedError
from review.models import Asset, ManifestRecord

try:  # MP4 frames for the watermark (C2PA reads MP4 without it)
    import av
except ImportError:  # pragma: no cover - PyAV is a declared dependency
    av = None  # type: ignore[assignment]

Outcome = Literal["authentic", "trusted_unknown", "tampered", "third_party", "recovered", "unknown_serial", "nothing"]

# Format name -> (mime, PIL format name, extensions that name it).
_PIL_FORMATS = {"png": "PNG", "jpeg": "JPEG", "webp": "WEBP", "mp4": ""}
FORMATS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    name: (mime, _PIL_FORMATS[name], EXTENSIONS_READ[name]) for name, mime in MIME.items()
}
# ISO base media brands read as MP4 (HEIF/AVIF brands are not video).
_MP4_BRANDS = {b"isom", b"iso2", b"iso4", b"iso5", b"iso6", b"mp41", b"mp42", b"avc1", b"M4V ", b"dash", b"qt  "}
# Failure codes that say the content changed while the credentials themselves held.
CONTENT_BINDING_CODES = frozenset(
    {"assertion.dataHash.mismatch", "assertion.bmffHash.mismatch", "assertion.boxesHash.mismatch"}
)
VIDEO_FRAMES = WATERMARK_FRAMES  # frames decoded from a video for the watermark (a second at 24 fps)


# --- The report ----------------------------------------------------------------------------


@dataclass(frozen=True)
class FileFacts:
    """The file as given: its name, what its bytes are, and how big."""

    filename: str
    size: int
    sha256: str
    format: str  # png, jpeg, webp, mp4 (from the bytes)
    mime: str
    width: int
    height: int
    extension_matches: bool  # False when the name's extension names another format


@dataclass(frozen=True)
class C2paFacts:
    """The file's own Content Credentials, as c2pa validated them with our trust anchors."""

    state: str  # trusted, valid, invalid, none
    codes: tuple[str, ...]  # failure codes, e.g. assertion.dataHash.mismatch
    error: str | None
    label: str | None
    claim_generator: str | None
    title: str | None
    actions: tuple[str, ...]
    signer: str | None  # the signing certificate's issuer / common name
    ingredients: tuple[str, ...]  # titles and relationships of the active manifest's ingredients
    credentials_intact: bool  # trusted signer and validated claim signature, whatever the content
    serial: int | None  # from the generation record, if any
    asset_key: str | None


@dataclass(frozen=True)
class WatermarkFacts:
    """What the watermark detector found."""

    found: bool
    serial: int | None
    confidence: float | None
    note: str  # why it was not read, if it was not


@dataclass(frozen=True)
class DecisionFacts:
    reviewer: str
    decision: str
    reason: str
    comment: str
    at: datetime


@dataclass(frozen=True)
class PublicationFacts:
    rendition: str
    path: str
    mime: str
    sha256: str
    published_by: str
    at: datetime
    revoked_at: datetime | None


@dataclass(frozen=True)
class AssetFacts:
    """The asset's record: what made it and who let it out."""

    serial: int
    key: str
    state: str
    campaign: str
    template: str
    template_version: int
    model_name: str
    model_manifest_hash: str
    seed: int
    prompt: str
    negative_prompt: str
    created_at: datetime
    has_thumbnail: bool
    decisions: tuple[DecisionFacts, ...]
    publications: tuple[PublicationFacts, ...]


@dataclass(frozen=True)
class StoredManifestFacts:
    """A manifest from the manifest store: the one this file carries (by sha256) or the asset's
    master manifest (by serial)."""

    matched_by: str  # "sha256" or "serial"
    kind: str
    mime: str
    sha256: str
    label: str
    created_at: datetime
    store: dict[str, Any]


@dataclass(frozen=True)
class VerifyReport:
    """Everything `verify` found about one file, and the one-line verdict."""

    outcome: Outcome
    verdict: str
    file: FileFacts
    c2pa: C2paFacts
    watermark: WatermarkFacts
    matched_by: str | None  # how the asset was identified: sha256, manifest or watermark
    asset: AssetFacts | None
    stored_manifest: StoredManifestFacts | None
    other_manifests: tuple[str, ...]  # the asset's other stored manifests, as "kind label"
    notes: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (datetimes as ISO 8601 text)."""
        return _jsonable(asdict(self))


# --- The service ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Examination:
    """What the file itself says, before any database lookup."""

    file: FileFacts
    c2pa: C2paFacts
    watermark: WatermarkFacts
    notes: tuple[str, ...]


def file_verify(*, data: bytes, filename: str) -> VerifyReport:
    """Examine any file: C2PA state, watermark, the asset they lead to and its stored manifest.

    Raises VerifyRefusedError (with a reason code) for input it will not examine: empty, larger
    than GREENLIGHT_VERIFY_MAX_BYTES, not PNG/JPEG/WebP/MP4 by content, more pixels than
    GREENLIGHT_VERIFY_MAX_PIXELS (checked on the header, before decoding), or truncated or
    corrupt with no readable manifest either (a tampered file whose pixels no longer decode is
    still reported, with its manifest's verdict).
    """
    with reader_context(provenance_config_from_settings().signing) as context:
        examined = file_examine(data=data, filename=filename, context=context)
    file, c2pa, watermark, notes = examined.file, examined.c2pa, examined.watermark, list(examined.notes)
    sha256 = file.sha256

    # 4. Which asset, if any: the file's hash, then its intact manifest, then its watermark.
    by_hash = ManifestRecord.objects.filter(sha256=sha256).order_by("created_at", "id").first()
    matched_by: str | None = None
    serial: int | None = None
    if by_hash is not None:
        matched_by, serial = "sha256", by_hash.asset_id
    elif c2pa.credentials_intact and c2pa.serial is not None:
        matched_by, serial = "manifest", c2pa.serial
    elif watermark.serial is not None:
        matched_by, serial = "watermark", watermark.serial
    asset = _asset_load(serial) if serial is not None else None
    if serial is not None and asset is None:
        notes.append(f"Serial {serial} ({matched_by}) is not an asset in this database.")
    if asset is not None and matched_by == "manifest" and c2pa.asset_key and c2pa.asset_key != asset.key:
        notes.append(f"The manifest's asset key does not match asset #{serial}'s: another installation's file?")
        asset = None
    for source, other in (
        ("manifest", c2pa.serial if c2pa.credentials_intact else None),
        ("watermark", watermark.serial),
    ):
        if other is not None and serial is not None and other != serial:
            notes.append(f"The {source} names serial {other}, not {serial}.")

    # 5. The stored manifest: this very file's, else the asset's master.
    stored = by_hash
    if stored is None and asset is not None:
        stored = ManifestRecord.objects.filter(asset_id=asset.pk, kind="master").order_by("-created_at", "-id").first()
    stored_facts = (
        StoredManifestFacts(
            matched_by="sha256" if stored is by_hash else "serial",
            kind=stored.kind,
            mime=stored.mime,
            sha256=stored.sha256,
            label=stored.label,
            created_at=stored.created_at,
            store=stored.store,
        )
        if stored is not None
        else None
    )
    others: tuple[str, ...] = ()
    if asset is not None:
        rows = ManifestRecord.objects.filter(asset_id=asset.pk).order_by("created_at", "id")
        if stored is not None:
            rows = rows.exclude(pk=stored.pk)
        others = tuple(f"{kind} {label}" for kind, label in rows.values_list("kind", "label"))

    asset_facts = _asset_facts(asset) if asset is not None else None
    outcome, verdict = _verdict(c2pa, watermark, asset_facts, stored_facts, matched_by)
    return VerifyReport(
        outcome=outcome,
        verdict=verdict,
        file=file,
        c2pa=c2pa,
        watermark=watermark,
        matched_by=matched_by if asset_facts else None,
        asset=asset_facts,
        stored_manifest=stored_facts,
        other_manifests=others,
        notes=tuple(notes),
    )


def file_examine(*, data: bytes, filename: str, context: c2pa_lib.Context) -> Examination:
    """The database-free half of `file_verify`: refusals, format, decode, C2PA and watermark.

    ``context`` is a reader context with the project's trust anchors (``reader_context``).
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
    if fmt == "mp4":
        frames = _video_frames(data, filename=filename)
        width, height = frames[0].size if frames else (0, 0)
    else:
        image = _image_open(data, fmt, filename=filename)
        width, height = image.size
        try:
            frames = [_image_load(image, fmt, filename=filename)]
        except VerifyRefusedError as refused:  # a tampered file may still carry a manifest: read it first
            frames, decode_error = [], refused
    sha256 = hashlib.sha256(data).hexdigest()
    file = FileFacts(filename, len(data), sha256, fmt, mime, width, height, not extension or extension in extensions)

    # 2. The file's own Content Credentials, read with our trust anchors and no network.
    c2pa = _c2pa_facts(c2pa_read(data, mime=mime, context=context))
    # 3. The watermark, from the decoded pixels.
    if decode_error is None:
        watermark = _watermark_facts(frames, fmt)
    elif c2pa.label is None:  # neither pixels nor credentials: a truncated or corrupt file
        raise decode_error
    else:
        watermark = WatermarkFacts(False, None, None, "not read: the image data is truncated or corrupt")
        notes.append("The image data cannot be decoded (truncated or corrupt); its Content Credentials were read.")
    return Examination(file=file, c2pa=c2pa, watermark=watermark, notes=tuple(notes))


def size_check(size: int, *, filename: str = "") -> None:
    """Refuse an empty file or one larger than GREENLIGHT_VERIFY_MAX_BYTES (before reading it)."""
    limit = int(settings.GREENLIGHT_VERIFY_MAX_BYTES)
    if size == 0:
        raise VerifyRefusedError("empty", "The file is empty (0 bytes).", filename=filename)
    if size > limit:
        raise VerifyRefusedError(
            "too_large",
            f"The file is {_megabytes(size)}; verify takes files up to {_megabytes(limit)}.",
            filename=filename,
        )


def format_detect(data: bytes, *, filename: str = "") -> str:
    """The format of ``data`` from its magic numbers: png, jpeg, webp or mp4."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    if data[4:8] == b"ftyp" and data[8:12] in _MP4_BRANDS:
        return "mp4"
    raise VerifyRefusedError(
        "not_supported",
        f"Not a PNG, JPEG, WebP or MP4 file (it starts with {data[:8]!r}); verify reads those formats.",
        filename=filename,
    )


def watermark_examine(data: bytes, *, mime: str) -> WatermarkFacts:
    """The watermark of a file whose type is known (an asset's stored master): an image's pixels,
    or a video's first frames read together, exactly as `file_verify` reads them. A file that
    cannot be decoded gives a reading with the reason, not an error."""
    fmt = next((name for name, (known, _, _) in FORMATS.items() if known == mime), None)
    try:
        fmt = fmt or format_detect(data)
        if fmt == "mp4":
            frames = _video_frames(data, filename="")
        else:
            frames = [_image_load(_image_open(data, fmt, filename=""), fmt, filename="")]
    except VerifyRefusedError as refused:
        return WatermarkFacts(False, None, None, f"not read: {refused}")
    return _watermark_facts(frames, fmt)


# --- Decoding, within limits ---------------------------------------------------------------


def _image_open(data: bytes, fmt: str, *, filename: str) -> Image.Image:
    """Parse the image's header and refuse it by its pixel count, before anything is decoded."""
    max_pixels = int(settings.GREENLIGHT_VERIFY_MAX_PIXELS)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=[FORMATS[fmt][1]])
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise _too_many_pixels(None, max_pixels, filename) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as error:
        raise VerifyRefusedError(
            "unreadable", f"The {fmt.upper()} header cannot be read ({error}).", filename=filename
        ) from None
    width, height = image.size
    if width * height > max_pixels:
        raise _too_many_pixels((width, height), max_pixels, filename)
    return image


def _image_load(image: Image.Image, fmt: str, *, filename: str) -> Image.Image:
    """Decode the opened image fully, as RGB; truncated or corrupt pixel data is refused."""
    try:
        image.load()
        return image.convert("RGB")
    except (OSError, SyntaxError, ValueError, EOFError) as error:
        raise VerifyRefusedError(
            "unreadable", f"The {fmt.upper()} image data is truncated or corrupt ({error}).", filename=filename
        ) from None


def _too_many_pixels(size: tuple[int, int] | None, limit: int, filename: str) -> VerifyRefusedError:
    said = f"{size[0]}x{size[1]} ({size[0] * size[1] / 1e6:.0f} MP)" if size else "more pixels than PIL allows"
    return VerifyRefusedError(
        "too_many_pixels",
        f"The image's header says {said}; verify decodes at most {limit / 1e6:.0f} MP.",
        filename=filename,
    )


def _video_frames(data: bytes, *, filename: str) -> list[Image.Image]:
    """The first VIDEO_FRAMES frames of an MP4 as RGB images (for the watermark); the frame
    size is checked against the pixel limit before anything is decoded."""
    if av is None:  # pragma: no cover
        return []
    max_pixels = int(settings.GREENLIGHT_VERIFY_MAX_PIXELS)
    frames: list[Image.Image] = []
    try:
        with av.open(io.BytesIO(data), mode="r") as container:
            if not container.streams.video:
                raise VerifyRefusedError("unreadable", "The MP4 file has no video stream.", filename=filename)
            stream = container.streams.video[0]
            width, height = stream.codec_context.width, stream.codec_context.height
            if width * height > max_pixels:
                raise _too_many_pixels((width, height), max_pixels, filename)
            for frame in container.decode(stream):
                frames.append(frame.to_image().convert("RGB"))
                if len(frames) >= VIDEO_FRAMES:
                    break
    except av.FFmpegError as error:
        if not frames:
            raise VerifyRefusedError(
                "unreadable", f"The MP4 file cannot be decoded ({error}).", filename=filename
            ) from None
    if not frames:
        raise VerifyRefusedError("unreadable", "The MP4 file holds no decodable frame.", filename=filename)
    return frames


# --- Facts ---------------------------------------------------------------------------------


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
    signature = manifest.get("signature_info") or {}
    signer = " / ".join(str(signature[k]) for k in ("issuer", "common_name") if signature.get(k)) or None
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


def _watermark_facts(frames: list[Image.Image], fmt: str) -> WatermarkFacts:
    if not frames:
        return WatermarkFacts(False, None, None, "not read: PyAV is not installed to decode video frames")
    width, height = frames[0].size
    if min(width, height) < WATERMARK_MIN_SIDE:
        return WatermarkFacts(False, None, None, f"not read: {width}x{height} is too small to carry it")
    try:
        reading: WatermarkReading
        read_frames = getattr(watermark_module, "watermark_read_frames", None)
        if len(frames) > 1 and read_frames is not None:
            reading = read_frames(frames)  # all frames folded into one reading
        else:
            reading = _frames_vote(frames) if len(frames) > 1 else watermark_read(frames[0])
    except WatermarkError as error:
        return WatermarkFacts(False, None, None, f"not read: {error}")
    confidence = _confidence(reading)
    if reading.serial is None:
        return WatermarkFacts(False, None, confidence, "no watermark found")
    return WatermarkFacts(True, reading.serial, confidence, "")


def _frames_vote(frames: list[Image.Image]) -> WatermarkReading:
    """Read up to 6 evenly spaced frames; the serial most of them agree on wins."""
    step = max(1, len(frames) // 6)
    readings = [watermark_read(frame) for frame in frames[::step][:6]]
    found = [r for r in readings if r.serial is not None]
    if not found:
        return max(readings, key=lambda r: _confidence(r) or 0.0)
    serials = [r.serial for r in found]
    best = max(set(serials), key=serials.count)
    return max((r for r in found if r.serial == best), key=lambda r: _confidence(r) or 0.0)


def _confidence(reading: WatermarkReading) -> float | None:
    """The detector's confidence (its z-score); None from a detector that gives none."""
    value = getattr(reading, "confidence", None)
    return float(value) if isinstance(value, int | float) else None


def _asset_load(serial: int) -> Asset | None:
    """The asset and everything its record shows, in a fixed number of queries."""
    return (
        Asset.objects.select_related("campaign", "prompt_version__template")
        .prefetch_related("decisions__reviewer", "publications__published_by")
        .filter(pk=serial)
        .first()
    )


def _asset_facts(asset: Asset) -> AssetFacts:
    return AssetFacts(
        serial=asset.pk,
        key=asset.key,
        state=asset.state,
        campaign=asset.campaign.name,
        template=asset.prompt_version.template.name,
        template_version=asset.prompt_version.number,
        model_name=asset.model_name,
        model_manifest_hash=asset.model_manifest_hash,
        seed=asset.seed,
        prompt=asset.prompt,
        negative_prompt=asset.negative_prompt,
        created_at=asset.created_at,
        has_thumbnail=bool(asset.thumb_path),
        decisions=tuple(
            DecisionFacts(d.reviewer.get_username(), d.decision, d.reason, d.comment, d.created_at)
            for d in asset.decisions.all()
        ),
        publications=tuple(
            PublicationFacts(
                p.rendition, p.path, p.mime, p.sha256, p.published_by.get_username(), p.created_at, p.revoked_at
            )
            for p in asset.publications.all()
        ),
    )


def _verdict(
    c2pa: C2paFacts,
    watermark: WatermarkFacts,
    asset: AssetFacts | None,
    stored: StoredManifestFacts | None,
    matched_by: str | None,
) -> tuple[Outcome, str]:
    found = f"asset #{asset.serial} found" if asset else ""
    if c2pa.state == "trusted":
        if asset:
            return "authentic", f"Content Credentials trusted; {found}"
        return "trusted_unknown", "Content Credentials trusted, but no asset in this database matches"
    if c2pa.state == "invalid":
        detail = ", ".join(c2pa.codes) or c2pa.error or "no reason given"
        suffix = f"; it names asset #{asset.serial} ({matched_by})" if asset else ""
        return "tampered", f"tampered: manifest invalid ({detail}){suffix}"
    if c2pa.state == "valid":
        who = c2pa.claim_generator or "an unknown claim generator"
        suffix = f"; {found} by its {matched_by}" if asset else ""
        return "third_party", f"Content Credentials valid but not trusted (third party: {who}){suffix}"
    if asset:
        retrieved = "stored manifest retrieved" if stored else "no stored manifest"
        return (
            "recovered",
            f"provenance recovered, file modified: no Content Credentials, {found} by its {matched_by}; {retrieved}",
        )
    if watermark.serial is not None:
        return "unknown_serial", f"watermark names serial {watermark.serial}, which is not an asset in this database"
    return "nothing", "nothing found: no Content Credentials, no watermark"


# --- Helpers -------------------------------------------------------------------------------


def _megabytes(size: int) -> str:
    return f"{size / 1024 / 1024:.1f} MB"


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    return value
