"""H.264 MP4 in memory: clips in, clips out (no torch here, so the web process can use it).

``mp4_encode`` writes RGB frames as an H.264 (yuv420p) MP4 with the moov atom first, so a browser
can start playing before the whole file has arrived; ``mp4_decode`` and ``mp4_clip`` read the
frames (and the rate) back. ``Clip`` is a generated clip as the pipeline passes it on. What a
clip's watermark is read from, within budgets, for files nobody vouches for (``mp4_watermark_luma``,
``mp4_watermark_frames``) is ``provenance.mp4_watermark``'s, re-exported here.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Sequence
from dataclasses import dataclass

from PIL import Image

from provenance.errors import MediaError
from provenance.media import MAX_FPS, MIN_FPS
from provenance.mp4_watermark import ClipLuma, mp4_watermark_frames, mp4_watermark_luma, watermark_frame_count

__all__ = [
    "Clip",
    "ClipLuma",
    "mp4_clip",
    "mp4_decode",
    "mp4_encode",
    "mp4_watermark_frames",
    "mp4_watermark_luma",
    "watermark_frame_count",
]


@dataclass(frozen=True)
class Clip:
    """A generated clip: its RGB frames (one size) and the rate they play at."""

    frames: tuple[Image.Image, ...]
    fps: int

    @property
    def seconds(self) -> float:
        return len(self.frames) / self.fps

    @property
    def size(self) -> tuple[int, int]:
        return self.frames[0].size


def mp4_encode(frames: Sequence[Image.Image], fps: int, *, crf: int = 18) -> bytes:
    """Encode RGB frames of one even size as an H.264 (libx264, yuv420p) MP4, in memory.

    ``crf`` is x264's constant rate factor (0-51; 18 looks lossless to most eyes, 23 is x264's
    default). The moov atom goes before the media data ("fast start"), so a player or browser can
    start before the whole file has arrived.
    """
    import av

    if not frames:
        raise MediaError("no frames to encode")
    if not _is_int(fps) or not MIN_FPS <= fps <= MAX_FPS:
        raise MediaError(f"fps = {fps!r}: must be an integer from {MIN_FPS} to {MAX_FPS}")
    if not _is_int(crf) or not 0 <= crf <= 51:
        raise MediaError(f"crf = {crf!r}: must be an integer from 0 to 51")
    width, height = frames[0].size
    sizes = {frame.size for frame in frames}
    if len(sizes) > 1:
        raise MediaError(f"frames must share one size, got {sorted(sizes)}")
    if width % 2 or height % 2:
        raise MediaError(f"frames are {width}x{height}; H.264 in yuv420p needs even sides")
    buffer = io.BytesIO()
    # ffmpeg's own +faststart re-opens the output by name, which an in-memory file has not; the
    # moov atom is moved up afterwards instead (_moov_first).
    with av.open(buffer, mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height = width, height
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": str(crf)}
        for frame in frames:
            image = frame if frame.mode == "RGB" else frame.convert("RGB")
            for packet in stream.encode(av.VideoFrame.from_image(image)):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return _moov_first(buffer.getvalue())


def mp4_decode(data: bytes, *, limit: int | None = None) -> list[Image.Image]:
    """Every frame (or the first ``limit``) of the first video stream of an MP4 (or any container
    ffmpeg reads), as RGB."""
    return list(mp4_clip(data, limit=limit).frames)


def mp4_clip(data: bytes, *, limit: int | None = None) -> Clip:
    """The first video stream of an MP4 as a ``Clip``: its frames (or the first ``limit``) and
    its frame rate (rounded to a whole fps)."""
    import av

    frames: list[Image.Image] = []
    with av.open(io.BytesIO(data), mode="r") as container:
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate
        for frame in container.decode(stream):
            # The same pixels as frame.to_image(), about three times faster (no PIL round trip).
            frames.append(Image.fromarray(frame.to_ndarray(format="rgb24")))
            if limit is not None and len(frames) >= limit:
                break
    if not frames:
        raise MediaError("the MP4 holds no decodable frame")
    fps = round(float(rate)) if rate else MIN_FPS
    return Clip(frames=tuple(frames), fps=min(MAX_FPS, max(MIN_FPS, fps)))


_CONTAINERS = frozenset({b"moov", b"trak", b"mdia", b"minf", b"stbl"})


def _boxes(data: bytes, start: int = 0, end: int | None = None) -> list[tuple[bytes, int, int]]:
    """The ISO-BMFF boxes between ``start`` and ``end``: (type, offset, size)."""
    end = len(data) if end is None else end
    boxes = []
    offset = start
    while offset + 8 <= end:
        size, kind = struct.unpack_from(">I4s", data, offset)
        if size == 1:
            (size,) = struct.unpack_from(">Q", data, offset + 8)
        elif size == 0:
            size = end - offset
        if size < 8 or offset + size > end:
            raise MediaError(f"MP4 box {kind!r} at {offset} has a bad size {size}")
        boxes.append((kind, offset, size))
        offset += size
    return boxes


def _moov_first(data: bytes) -> bytes:
    """Move the moov atom before mdat and shift every chunk offset by its size (what qt-faststart
    and ffmpeg's +faststart do). Returned unchanged when moov already leads or an offset would
    overflow 32 bits."""
    top = _boxes(data)
    kinds = [kind for kind, _, _ in top]
    if b"moov" not in kinds or b"mdat" not in kinds or kinds.index(b"moov") < kinds.index(b"mdat"):
        return data
    _, moov_at, moov_size = top[kinds.index(b"moov")]
    moov = bytearray(data[moov_at : moov_at + moov_size])

    def shift(start: int, end: int) -> bool:
        for kind, offset, size in _boxes(bytes(moov), start, end):
            header = 16 if struct.unpack_from(">I", moov, offset)[0] == 1 else 8
            if kind in _CONTAINERS:
                if not shift(offset + header, offset + size):
                    return False
            elif kind in (b"stco", b"co64"):
                (count,) = struct.unpack_from(">I", moov, offset + header + 4)
                width, code = (4, ">I") if kind == b"stco" else (8, ">Q")
                for i in range(count):
                    at = offset + header + 8 + i * width
                    (value,) = struct.unpack_from(code, moov, at)
                    if value + moov_size >= 1 << (8 * width):
                        return False
                    struct.pack_into(code, moov, at, value + moov_size)
        return True

    header = 16 if struct.unpack_from(">I", moov, 0)[0] == 1 else 8
    if not shift(header, moov_size):
        return data
    mdat_at = top[kinds.index(b"mdat")][1]
    # Everything before mdat stays (ftyp, free), then moov, then the rest without the old moov.
    return data[:mdat_at] + bytes(moov) + data[mdat_at:moov_at] + data[moov_at + moov_size :]


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
