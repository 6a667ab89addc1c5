"""What a clip's watermark is read from: a few luma images made from its first frames, within
budgets, for files nobody vouches for (what `verify` reads, and what the pipeline reads back
before it claims a clip's mark).

Every frame of a clip carries the mark at the same place, while the picture moves. A sharing
site's encoder does not keep the mark alike in every frame: it quantises intra frames finest,
predicted ones coarser and bidirectional ones coarsest, and a predicted or bidirectional frame
of a moving picture is mostly other frames' pixels moved with the picture, their mark moved
along. Read frame by frame and summed, two dozen weak frames drown the one good intra frame.
So the reader is given (``ClipLuma.images``):

1. **Averages by coding kind**: the frames of each kind averaged (the mark adds up, the moving
   picture and the encoder's noise blur away), intra counted twice, predicted once,
   bidirectional not at all unless it is all there is (``READ_WEIGHTS``).
2. **The moving picture taken away** (``_Residuals``): each of the first ``RESIDUAL_FRAMES``
   frames minus its neighbours three and six frames away, each first moved back by the
   picture's own motion (phase correlation of the frames blurred past the mark's chips, so the
   mark, which does not move, cannot pull the estimate to zero). The picture cancels, the mark
   does not (in the neighbours it sits where it was, which the shift moves away), and the
   differences are averaged into one image. A neighbour that moved less than ``MIN_SHIFT`` px is
   not used (it would take the mark away with the picture): a still clip has no such image.

Both are made from the file alone, never with a key, so one read of them keeps the detector's
false-positive bound: the same hypotheses as one image. Over 512 px pans across photographs
halved and encoded again at CRF 28 (``bench.video_robustness``) this reads every clip where the
first 24 frames summed read two in three.

Budgets: frames up to ``WATERMARK_READ_FRAMES`` (ten seconds at 24 fps) and
``WATERMARK_READ_PIXELS`` decoded pixels (96 frames of 720p: about 0.4 s of decoding on one
core); every frame centre-cropped to at most ``WATERMARK_READ_SIDE`` before it is kept (the mark
is tiled, so a crop only shifts the tile; frames are never downscaled: the reader searches scales
0.4-2x of the embedding, and halving a frame would move a half-size copy out of that range);
memory of three running sums and 13 frames, whatever the clip's length.
"""

from __future__ import annotations

import io
import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
from PIL import Image

from provenance.errors import MediaError
from provenance.media import WATERMARK_FRAMES, WATERMARK_MIN_SIDE

if TYPE_CHECKING:
    import av

WATERMARK_READ_FRAMES = 10 * WATERMARK_FRAMES
WATERMARK_READ_PIXELS = 4 * WATERMARK_FRAMES * 1280 * 720
WATERMARK_READ_SIDE = 1280
# Frames smaller than the mark's minimum (a 512 px clip halved and cropped is 230 px) are read on a
# canvas of WATERMARK_MIN_SIDE filled with their mean grey, down to this side: at half the
# embedding scale two tiles still fit across it.
WATERMARK_PAD_MIN_SIDE = WATERMARK_MIN_SIDE // 2

# Coding kinds of decoded frames (FFmpeg's AVPictureType): intra, predicted, bidirectional.
FRAME_KINDS = ("intra", "predicted", "bidirectional")
_INTRA_TYPES = frozenset({1, 5})  # I, SI
_BIDIRECTIONAL_TYPES = frozenset({3, 7})  # B, BI
# How much each kind's average counts (the reader sums the folds of the images it is given, each
# with an equal say): intra twice (x264 quantises it 1.4 times finer than predicted frames, about
# half the noise variance), predicted once, bidirectional not at all unless it is all there is.
READ_WEIGHTS = {"intra": 2, "predicted": 1, "bidirectional": 0}

# The moving picture taken away: the first RESIDUAL_FRAMES frames, each against its neighbours at
# these distances that moved at least MIN_SHIFT px; motion measured on frames blurred by
# MOTION_BLUR px (the mark's chips are 8 px as embedded, 4 px at half size) at half resolution.
RESIDUAL_FRAMES = WATERMARK_FRAMES
NEIGHBOURS = (3, 6)
MIN_SHIFT = 2.0
MOTION_BLUR = 3.0
# Each kind's weight in the residual image: bidirectional frames count here (the picture they
# copy is taken away with their neighbours').
RESIDUAL_WEIGHTS = {"intra": 2, "predicted": 1, "bidirectional": 1}

Luma = npt.NDArray[np.uint8]


def watermark_frame_count(width: int, height: int) -> int:
    """How many of a clip's first frames of ``width`` x ``height`` its watermark is read from:
    WATERMARK_READ_FRAMES, or as many as fit WATERMARK_READ_PIXELS (at least one)."""
    return max(1, min(WATERMARK_READ_FRAMES, WATERMARK_READ_PIXELS // max(1, width * height)))


@dataclass(frozen=True)
class ClipLuma:
    """What a clip's watermark is read from, and what its picture is compared by.

    ``averages`` are the mean luma ("L") of the frames read, one image per coding kind present
    (``kinds``: intra, predicted, bidirectional, in that order; ``counts``: how many frames of
    each were averaged); ``residual`` the moving picture taken away (None for a clip that does
    not move). All on a canvas of at least WATERMARK_MIN_SIDE a side; none when the frames are
    smaller than WATERMARK_PAD_MIN_SIDE. ``images`` is what to give ``watermark_read_frames``.
    ``first`` is the first frame's luma as decoded (the picture), ``size`` the frames' size,
    ``frames`` how many were read.
    """

    averages: tuple[Image.Image, ...]
    kinds: tuple[str, ...]
    counts: tuple[int, ...]
    residual: Image.Image | None
    first: Image.Image
    size: tuple[int, int]
    frames: int

    @property
    def images(self) -> tuple[Image.Image, ...]:
        """The averages as many times as their kind's ``READ_WEIGHTS`` (all once where the weights
        leave none), then the residual image; none for frames too small to carry the mark."""
        if not self.averages:
            return ()
        weighted = tuple(
            image for kind, image in zip(self.kinds, self.averages, strict=True) for _ in range(READ_WEIGHTS[kind])
        )
        return (weighted or self.averages) + ((self.residual,) if self.residual is not None else ())


def mp4_watermark_luma(
    data: bytes,
    *,
    size_check: Callable[[int, int], None] | None = None,
    step: Callable[[], None] | None = None,
) -> ClipLuma:
    """Read a clip's first frames (``watermark_frame_count``) as a stream that stops as soon as
    they are read, into the images its watermark is read from (``ClipLuma``; the module says why).

    Luma is all the watermark reader uses: RGB (as ``provenance.mp4.mp4_clip`` gives it), then
    OpenCV's BT.601 grey, exactly what the reader computes from an RGB frame.

    For untrusted files: ``size_check(width, height)`` is called with the stream header's frame
    size before any packet is decoded, and again with the first decoded frame's (a header can
    lie); ``step()`` before each packet is demuxed (a time budget). Either may raise to stop;
    what they raise goes through unchanged. The decoder runs on one thread (no frame-threading
    buffers; callers run several decodes at once, not one faster). Raises MediaError for a file
    that is not a video or holds no decodable frame; a decoding error after the first frame ends
    the reading with the frames read so far, as does a change of frame size.
    """
    means, residuals = _KindMeans(), _Residuals()

    def add(luma: Luma, kind: str) -> None:
        means.add(luma, kind)
        residuals.add(np.ascontiguousarray(_centre(luma, WATERMARK_READ_SIDE)), kind)  # not a view of the frame

    size = _decode_luma(data, size_check=size_check, step=step, add=add)
    if means.first is None:
        raise MediaError("the video holds no decodable frame", field="data", value=len(data))
    kinds = tuple(kind for kind in FRAME_KINDS if kind in means.sums)
    counts = tuple(means.counts[kind] for kind in kinds)
    if min(size) < WATERMARK_PAD_MIN_SIDE:
        return ClipLuma((), kinds, counts, None, means.first, size, means.frames)
    averages = tuple(_on_canvas(means.sums[kind] / means.counts[kind]) for kind in kinds)
    difference = residuals.finish()
    residual = _on_canvas(difference + 128.0) if difference is not None else None
    return ClipLuma(averages, kinds, counts, residual, means.first, size, means.frames)


def mp4_watermark_frames(
    data: bytes,
    *,
    size_check: Callable[[int, int], None] | None = None,
    step: Callable[[], None] | None = None,
) -> list[Image.Image]:
    """The images a clip's watermark is read from (``mp4_watermark_luma(...).images``): give them
    to ``watermark_read_frames``. What `verify` reads, and what the pipeline reads back from a
    clip it encodes before it claims the mark. Empty for frames too small to carry it."""
    return list(mp4_watermark_luma(data, size_check=size_check, step=step).images)


class _KindMeans:
    """Running sums of luma frames by coding kind (memory: one frame per kind, however many are
    read), and the first frame as decoded."""

    def __init__(self) -> None:
        self.sums: dict[str, npt.NDArray[np.float32]] = {}
        self.counts: dict[str, int] = {}
        self.first: Image.Image | None = None
        self.frames = 0

    def add(self, luma: Luma, kind: str) -> None:
        if self.first is None:
            self.first = Image.fromarray(luma)
        part = _centre(luma, WATERMARK_READ_SIDE)
        if kind in self.sums:
            self.sums[kind] += part
        else:
            self.sums[kind] = part.astype(np.float32)
        self.counts[kind] = self.counts.get(kind, 0) + 1
        self.frames += 1


class _Residuals:
    """The moving picture taken away from the first RESIDUAL_FRAMES frames (see the module), as
    they stream in: a frame's difference is taken once its farthest later neighbour has arrived,
    so at most 2 * max(NEIGHBOURS) + 1 frames are held."""

    def __init__(self) -> None:
        reach = max(NEIGHBOURS)
        self._frames: deque[tuple[int, Luma, npt.NDArray[np.float32], str]] = deque(maxlen=2 * reach + 1)
        self._window: npt.NDArray[np.float32] | None = None
        self._shifts: dict[tuple[int, int], tuple[float, float]] = {}
        self._sum: npt.NDArray[np.float32] | None = None
        self._weight = 0
        self._seen = 0
        self._done = 0

    def add(self, luma: Luma, kind: str) -> None:
        if self._seen >= RESIDUAL_FRAMES + max(NEIGHBOURS):
            return
        self._frames.append((self._seen, luma, self._motion_image(luma), kind))
        self._seen += 1
        target = self._seen - 1 - max(NEIGHBOURS)  # every neighbour of this one has arrived
        if 0 <= target < RESIDUAL_FRAMES:
            self._difference(target)

    def finish(self) -> npt.NDArray[np.float32] | None:
        """The weighted mean difference, or None where no frame had a neighbour that moved."""
        for target in range(self._done, min(self._seen, RESIDUAL_FRAMES)):  # a clip shorter than the reach
            self._difference(target)
        if self._sum is None or not self._weight:
            return None
        return np.asarray(self._sum / self._weight, dtype=np.float32)

    def _motion_image(self, luma: Luma) -> npt.NDArray[np.float32]:
        """The frame at half resolution, blurred past the mark's chips: what motion is measured on."""
        import cv2

        half = (max(1, luma.shape[1] // 2), max(1, luma.shape[0] // 2))
        small = cv2.resize(luma, half, interpolation=cv2.INTER_AREA).astype(np.float32)
        return np.asarray(cv2.GaussianBlur(small, (0, 0), MOTION_BLUR / 2), dtype=np.float32)

    def _difference(self, target: int) -> None:
        self._done = target + 1
        held = {index: (luma, motion, kind) for index, luma, motion, kind in self._frames}
        if target not in held:
            return
        luma, motion, kind = held[target]
        weight = RESIDUAL_WEIGHTS[kind]
        if not weight or min(motion.shape) < 8:
            return
        host: npt.NDArray[np.float32] | None = None  # the neighbours moved back, added up
        used = 0
        for distance in NEIGHBOURS:
            for index in (target - distance, target + distance):
                if index not in held:
                    continue
                other, other_motion, _ = held[index]
                dx, dy = self._shift(target, index, motion, other_motion)
                if dx * dx + dy * dy < MIN_SHIFT * MIN_SHIFT:
                    continue  # moved too little: it would take the mark away with the picture
                moved = _translated(other, dx, dy)
                host = moved if host is None else host + moved
                used += 1
        if host is None:
            return
        difference = np.asarray((luma.astype(np.float32) - host / used) * weight, dtype=np.float32)
        self._sum = difference if self._sum is None else self._sum + difference
        self._weight += weight

    def _shift(
        self, target: int, index: int, motion: npt.NDArray[np.float32], other: npt.NDArray[np.float32]
    ) -> tuple[float, float]:
        """How far the picture moved from frame ``target`` to frame ``index``, in px (each pair is
        measured once: the way back is the same shift turned round)."""
        import cv2

        if (index, target) in self._shifts:
            dx, dy = self._shifts.pop((index, target))
            return -dx, -dy
        if self._window is None or self._window.shape != motion.shape:
            self._window = np.asarray(cv2.createHanningWindow(motion.shape[::-1], cv2.CV_32F), dtype=np.float32)
        (dx, dy), _ = cv2.phaseCorrelate(motion, other, self._window)
        shift = (2 * dx, 2 * dy)  # measured at half resolution
        self._shifts[(target, index)] = shift
        return shift


def _decode_luma(
    data: bytes,
    *,
    size_check: Callable[[int, int], None] | None,
    step: Callable[[], None] | None,
    add: Callable[[Luma, str], None],
) -> tuple[int, int]:
    """Decode the first ``watermark_frame_count`` frames of the first video stream, giving each
    one's luma and kind to ``add``; returns the frames' size. Checks and errors as
    ``mp4_watermark_luma`` says."""
    import av
    import cv2

    read = 0
    size = (0, 0)
    try:
        with av.open(io.BytesIO(data), mode="r") as container:
            if not container.streams.video:
                raise MediaError("the file has no video stream", field="streams", value=0)
            stream = container.streams.video[0]
            if stream.codec_context is None:  # a codec FFmpeg does not know (or a damaged sample entry)
                raise MediaError("the video's codec cannot be decoded", field="codec", value=None)
            stream.thread_type = "SLICE"
            stream.codec_context.thread_count = 1
            size = (stream.codec_context.width, stream.codec_context.height)
            if size_check is not None:
                size_check(*size)
            wanted = watermark_frame_count(*size)
            for packet in container.demux(stream):
                if step is not None:
                    step()
                for frame in stream.decode(packet):
                    if not read and (frame.width, frame.height) != size:
                        size = (frame.width, frame.height)
                        if size_check is not None:
                            size_check(*size)
                        wanted = watermark_frame_count(*size)
                    if (frame.width, frame.height) != size:  # the images need one size
                        return size
                    luma = np.asarray(cv2.cvtColor(frame.to_ndarray(format="rgb24"), cv2.COLOR_RGB2GRAY), np.uint8)
                    add(luma, _frame_kind(frame))
                    read += 1
                    if read >= wanted:
                        return size  # leaving the with-block stops the demuxer here
    except (av.FFmpegError, ValueError) as error:  # ValueError: a pixel format PyAV cannot convert
        if not read:
            raise MediaError(f"the video cannot be decoded ({error})", field="data", value=len(data)) from None
    return size


def _translated(luma: Luma, dx: float, dy: float) -> npt.NDArray[np.float32]:
    """``luma`` sampled at (x + dx, y + dy): a frame whose picture moved by (dx, dy) moved back.
    A separable cubic (Keys, a = -0.5) for the fraction and a slice for the whole pixels, about a
    third of what OpenCV's general cubic warp costs; reflected at the borders."""
    import cv2

    whole_x, whole_y = math.floor(dx), math.floor(dy)
    filtered = cv2.sepFilter2D(
        luma.astype(np.float32),
        cv2.CV_32F,
        _cubic_taps(dx - whole_x),
        _cubic_taps(dy - whole_y),
        anchor=(1, 1),
        borderType=cv2.BORDER_REFLECT,
    )
    height, width = luma.shape
    pad_x, pad_y = min(abs(whole_x), width - 1), min(abs(whole_y), height - 1)
    padded = cv2.copyMakeBorder(filtered, pad_y, pad_y, pad_x, pad_x, cv2.BORDER_REFLECT)
    top = pad_y + max(-pad_y, min(pad_y, whole_y))
    left = pad_x + max(-pad_x, min(pad_x, whole_x))
    return np.asarray(padded[top : top + height, left : left + width], dtype=np.float32)


def _cubic_taps(fraction: float) -> npt.NDArray[np.float32]:
    """Keys' cubic convolution weights (a = -0.5) of the samples at -1, 0, 1 and 2 for a point
    ``fraction`` (0 to 1) past sample 0."""
    a = -0.5

    def weight(distance: float) -> float:
        d = abs(distance)
        if d <= 1:
            return (a + 2) * d**3 - (a + 3) * d**2 + 1
        return a * d**3 - 5 * a * d**2 + 8 * a * d - 4 * a if d < 2 else 0.0

    return np.array([weight(fraction + 1), weight(fraction), weight(1 - fraction), weight(2 - fraction)], np.float32)


def _frame_kind(frame: av.VideoFrame) -> str:
    """A decoded frame's coding kind (``FRAME_KINDS``): intra for key frames and I/SI pictures,
    bidirectional for B/BI, predicted for the rest (P, S, SP, and frames that do not say)."""
    picture = int(frame.pict_type)
    if frame.key_frame or picture in _INTRA_TYPES:
        return FRAME_KINDS[0]
    return FRAME_KINDS[2] if picture in _BIDIRECTIONAL_TYPES else FRAME_KINDS[1]


def _centre(luma: Luma, side: int) -> Luma:
    """The central at most ``side`` x ``side`` of a frame."""
    height, width = luma.shape
    top, left = max(0, (height - side) // 2), max(0, (width - side) // 2)
    return luma[top : top + min(height, side), left : left + min(width, side)]


def _on_canvas(pixels: npt.NDArray[np.floating[Any]]) -> Image.Image:
    """A luma image as "L" (rounded, clipped), centred on a canvas of its own mean grey when a side
    is under WATERMARK_MIN_SIDE. The flat margin carries no mark and adds nothing to any fold; a
    step at its edge is clipped by the reader's prefilter like any edge."""
    grey = np.clip(np.rint(pixels), 0, 255).astype(np.uint8)
    height, width = grey.shape
    if width >= WATERMARK_MIN_SIDE and height >= WATERMARK_MIN_SIDE:
        return Image.fromarray(grey)
    canvas = np.full(
        (max(height, WATERMARK_MIN_SIDE), max(width, WATERMARK_MIN_SIDE)), round(float(grey.mean())), np.uint8
    )
    top, left = (canvas.shape[0] - height) // 2, (canvas.shape[1] - width) // 2
    canvas[top : top + height, left : left + width] = grey
    return Image.fromarray(canvas)
