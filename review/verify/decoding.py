"""Reading an untrusted file within limits: its size first, then its format from its magic
numbers, then the pixel count its header claims, and only then a decode, so no upload can make
`verify` decode a decompression bomb or fill the memory. A video is decoded as a stream of only
the frames its watermark is read from (`provenance.mp4.mp4_watermark_luma`: a frame and pixel
budget, one decoder thread, the frames added up by coding kind as they come, so memory does not
grow with them), its frame size refused from the stream header first. Formats and limits come
from `provenance.media`; the byte and pixel limits from the settings."""

from __future__ import annotations

import importlib.util
import io
import warnings

from django.conf import settings
from PIL import Image, UnidentifiedImageError

from provenance.errors import MediaError
from provenance.media import EXTENSIONS_READ, MAX_VIDEO_SIDE, MIME
from provenance.mp4 import ClipLuma, mp4_watermark_luma
from review.errors import VerifyRefusedError
from review.verify.limits import Deadline

# MP4 frames for the watermark need PyAV (C2PA reads MP4 without it).
_HAVE_PYAV = importlib.util.find_spec("av") is not None
# The largest square of a still its watermark is read from (`watermark_still`): the pipeline's
# largest frame side.
STILL_READ_SIDE = MAX_VIDEO_SIDE

# Format name -> (mime, PIL format name, extensions that name it).
_PIL_FORMATS = {"png": "PNG", "jpeg": "JPEG", "webp": "WEBP", "mp4": ""}
FORMATS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    name: (mime, _PIL_FORMATS[name], EXTENSIONS_READ[name]) for name, mime in MIME.items()
}
# ISO base media brands read as MP4 (HEIF/AVIF brands are not video).
_MP4_BRANDS = {b"isom", b"iso2", b"iso4", b"iso5", b"iso6", b"mp41", b"mp42", b"avc1", b"M4V ", b"dash", b"qt  "}


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


def image_open(data: bytes, fmt: str, *, filename: str) -> Image.Image:
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


def image_load(image: Image.Image, fmt: str, *, filename: str) -> Image.Image:
    """Decode the opened image fully, as RGB; truncated or corrupt pixel data is refused."""
    try:
        image.load()
        return image if image.mode == "RGB" else image.convert("RGB")  # no second copy of an RGB image
    except (OSError, SyntaxError, ValueError, EOFError) as error:
        raise VerifyRefusedError(
            "unreadable", f"The {fmt.upper()} image data is truncated or corrupt ({error}).", filename=filename
        ) from None


def watermark_still(image: Image.Image) -> Image.Image:
    """The part of a decoded still its watermark is read from: all of it, or its central
    STILL_READ_SIDE x STILL_READ_SIDE when it is larger. The mark is tiled, so a crop only shifts
    the tile (which the reader finds) and keeps its scale; it bounds the reader's memory and time
    (it holds several float copies of what it reads) at what the pipeline's largest frame costs."""
    width, height = image.size
    if width <= STILL_READ_SIDE and height <= STILL_READ_SIDE:
        return image
    left, top = (width - min(width, STILL_READ_SIDE)) // 2, (height - min(height, STILL_READ_SIDE)) // 2
    return image.crop((left, top, left + min(width, STILL_READ_SIDE), top + min(height, STILL_READ_SIDE)))


def video_luma(data: bytes, *, filename: str, deadline: Deadline | None = None) -> ClipLuma | None:
    """What an MP4's watermark is read from (``mp4_watermark_luma``): its first frames (up to ten
    seconds, fewer when they are large) averaged by coding kind and with the moving picture taken
    away, and its first frame's luma for the content check. None where PyAV is missing.

    The frame size is refused by the stream header, before any packet is decoded, when it is
    above GREENLIGHT_VERIFY_MAX_VIDEO_PIXELS (or GREENLIGHT_VERIFY_MAX_PIXELS, if lower), and
    again by the first decoded frame's, in case the header lied. ``deadline`` is checked before
    each packet.
    """
    if not _HAVE_PYAV:  # pragma: no cover - PyAV is a declared dependency
        return None
    limit = min(int(settings.GREENLIGHT_VERIFY_MAX_VIDEO_PIXELS), int(settings.GREENLIGHT_VERIFY_MAX_PIXELS))

    def size_check(width: int, height: int) -> None:
        if width * height > limit:
            raise _too_many_pixels((width, height), limit, filename, what="video's frames are")

    def step() -> None:
        if deadline is not None:
            deadline.check("decoding the video")

    try:
        return mp4_watermark_luma(data, size_check=size_check, step=step)
    except MediaError as error:
        raise VerifyRefusedError("unreadable", f"The MP4 file cannot be read: {error}.", filename=filename) from None


def _too_many_pixels(
    size: tuple[int, int] | None, limit: int, filename: str, *, what: str = "image's header says"
) -> VerifyRefusedError:
    said = f"{size[0]}x{size[1]} ({_megapixels(size[0] * size[1])})" if size else "more pixels than PIL allows"
    return VerifyRefusedError(
        "too_many_pixels", f"The {what} {said}; verify decodes at most {_megapixels(limit)}.", filename=filename
    )


def _megapixels(pixels: int) -> str:
    value = pixels / 1e6
    return f"{value:.0f} MP" if value >= 10 else f"{value:.2g} MP"


def _megabytes(size: int) -> str:
    return f"{size / 1024 / 1024:.1f} MB"
