"""Reading an untrusted file within limits: its size first, then its format from its magic
numbers, then the pixel count its header claims, and only then a full decode, so no upload can
make `verify` decode a decompression bomb or fill the memory. Formats and limits come from
`provenance.media`; the byte and pixel limits from the settings."""

from __future__ import annotations

import io
import warnings

from django.conf import settings
from PIL import Image, UnidentifiedImageError

from provenance.media import EXTENSIONS_READ, MIME, WATERMARK_FRAMES
from review.errors import VerifyRefusedError

try:  # MP4 frames for the watermark (C2PA reads MP4 without it)
    import av
except ImportError:  # pragma: no cover - PyAV is a declared dependency
    av = None  # type: ignore[assignment]

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
        return image.convert("RGB")
    except (OSError, SyntaxError, ValueError, EOFError) as error:
        raise VerifyRefusedError(
            "unreadable", f"The {fmt.upper()} image data is truncated or corrupt ({error}).", filename=filename
        ) from None


def video_frames(data: bytes, *, filename: str) -> list[Image.Image]:
    """The first WATERMARK_FRAMES frames of an MP4 as RGB images (for the watermark); the frame
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
                if len(frames) >= WATERMARK_FRAMES:
                    break
    except av.FFmpegError as error:
        if not frames:
            raise VerifyRefusedError(
                "unreadable", f"The MP4 file cannot be decoded ({error}).", filename=filename
            ) from None
    if not frames:
        raise VerifyRefusedError("unreadable", "The MP4 file holds no decodable frame.", filename=filename)
    return frames


def _too_many_pixels(size: tuple[int, int] | None, limit: int, filename: str) -> VerifyRefusedError:
    said = f"{size[0]}x{size[1]} ({size[0] * size[1] / 1e6:.0f} MP)" if size else "more pixels than PIL allows"
    return VerifyRefusedError(
        "too_many_pixels",
        f"The image's header says {said}; verify decodes at most {limit / 1e6:.0f} MP.",
        filename=filename,
    )


def _megabytes(size: int) -> str:
    return f"{size / 1024 / 1024:.1f} MB"
