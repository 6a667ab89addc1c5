"""Putting the mark into an image: where, how strongly, and the read-back that proves it is there.

* **Where and how strongly.** The mark is a luma change. R, G and B move along the luma
  weights (0.67, 1.31, 0.26 per unit of luma), the smallest squared change for that luma
  change: 1.27 dB of PSNR better than moving all three alike, at a faint shift of hue in the
  mark's own pattern that the eye, far less sharp for colour than for light, does not see. It
  is scaled by a perceptual mask: local mean |Laplacian| (texture takes more, flat areas a
  floor), capped, and limited by the headroom to 0 and 255 (a flat white or black image takes
  nothing). One gain per image sets the mean squared change to PSNR 38.8 dB.
* **Adaptive strength.** The result is read back at scale 1 (with a margin over the
  threshold: ``_EMBED_TARGET``), for images of 512 px and up with 5% cut off each side, and,
  where brightness x1.2 would clip at least 10% of the pixels (light backgrounds), brightened
  so (to the same target): clipped highlights lose their part of the mark. An
  image that fails is marked again more strongly, down the ladder ``_PSNR_LEVELS`` (38, 37,
  35.5, 34, 33, 32 dB): busy textures, saturated colours and 256 px renditions of the tiny
  model's output need it. From the second level on, the luma change a channel cannot take (it
  would pass 0 or 255) spills to the other channels, so saturated colours carry the mark at a
  small hue shift. Only an image that reads back at no level (flat white or black, say) is
  refused (``WatermarkError``), never returned unmarked. A still that goes out in a lossy
  format is read back from its decoded file instead (``watermark_embed_encoded``): the ladder
  then answers for what the encoder kept.
* **Informed embedding.** At scale 1 the embedder sees what the detector will see of the
  unmarked image in each cell (its fold) and subtracts part of that interference
  (``_cell_values``, "improved spread spectrum"): in busy images this, not the raw mark
  strength, is what makes 512x512 images readable. It helps less once the image is resampled
  or cropped (hence the crop check above), so each strength is tried cancelling 70% of it,
  then 40%: less cancelled reads a little worse as the image lies and often better after a
  crop, which keeps busy textures at the higher PSNR.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt
from PIL import Image

from provenance.errors import WatermarkCapacityError, WatermarkError
from provenance.watermark_coding import (
    CELL,
    DEFAULT_KEY,
    GRID,
    TILE,
    WORK_CELL,
    WORK_TILE,
    FloatArray,
    cell_signs,
    serial_check,
    tile_from_grid,
)
from provenance.watermark_detection import (
    MASK_CAP,
    MASK_FLOOR,
    MIN_SIDE,
    WatermarkReading,
    detector_weight,
    fold_plain,
    mean_size,
    read_as_lies,
    residual_and_norm,
    sides_check,
)
from provenance.watermark_geometry import SEARCH_Z_THRESHOLD, Z_THRESHOLD

# PSNR levels (dB) tried in turn until the mark reads back at scale 1 at ``_EMBED_TARGET``:
# 38.8 for almost every image (the goal is >= 38; along the luma weights that is the luma
# change equal-RGB marking made at 37.5), more only for busy or small images whose own
# texture drowns the mark in the detector's cells.
_PSNR_LEVELS = (38.8, 38.0, 37.0, 35.5, 34.0, 33.0, 32.0)
# Confidence the read-backs at scale 1 (as lies, and brightened) must reach: 0.4 over the
# threshold of a searched lattice, so that a resampled, turned or stretched copy, which reads
# a little lower, still reads (11.75, the target marks have been made with since v2).
_EMBED_TARGET = SEARCH_Z_THRESHOLD + 0.4
_CROP_CHECK = 0.10  # share of each side cut off for the crop check (``_survives_crop``)
_BRIGHTEN = 1.2  # brightness factor of the highlight check (``_survives_brightening``)
_BRIGHTEN_MIN_SHARE = 0.10  # share of pixels that must clip for that check to run (below it: z lost <= 0.07)
# Shares of the host's interference that embedding cancels, tried in turn at each strength: the
# full share reads best as the image lies; the smaller one leaves less to come back when a crop
# moves the tile boundaries (busy textures then often pass the crop check at the same PSNR).
_ISS_CANCEL = (0.7, 0.4)
_ISS_MIN_SIGNAL = 0.5  # least share of the tile's amplitude kept for the signs
_MAX_BOOST = 1.6  # the tile blur and the ISS values may lower the energy; lift it back at most this much
_CLIP = 3.0  # as the detector clips its whitened values
_GAIN_MAX = 64.0  # the largest mask gain (a grid whose headroom allows no more stays below the target)
_GAIN_STEPS = 40  # Newton steps at most (bisection where a step leaves the bracket): 3-6 suffice

_LUMA_WEIGHTS = np.array([0.299, 0.587, 0.114], dtype=np.float32)  # BT.601, as cv2 and PIL compute luma
# The change of R, G and B that moves luma by 1 with the least squared change (so the least
# PSNR cost): along the luma weights. Per channel it costs ``_DIRECTION_POWER`` = 0.75 of
# moving all three by 1, i.e. 1.27 dB of PSNR for the same mark in the luma the detector reads.
_DIRECTION = _LUMA_WEIGHTS / float(_LUMA_WEIGHTS @ _LUMA_WEIGHTS)
_DIRECTION_POWER = float(np.mean(_DIRECTION**2))

RgbArray = npt.NDArray[np.uint8]


def watermark_embed(image: Image.Image, serial: int, *, key: str = DEFAULT_KEY) -> Image.Image:
    """Return a copy of the RGB ``image`` carrying ``serial`` invisibly.

    The mark is read back before returning (at scale 1, cropped, and brightened where the
    highlights would clip); where it does not read back it is embedded again more strongly
    (PSNR down to 32 dB; see the module docstring). An image that cannot carry it even then
    (flat white or black) raises WatermarkError rather than going out unmarked under a
    manifest that says it is watermarked. ``key`` selects the pilot and scrambler (tests
    use another one).
    """
    return Image.fromarray(watermark_embed_pixels(rgb_pixels(image), serial, key=key))


def watermark_embed_pixels(pixels: RgbArray, serial: int, *, key: str = DEFAULT_KEY) -> RgbArray:
    """``watermark_embed`` on an RGB picture as a height x width x 3 array of bytes, returning
    the marked array: for a caller that holds the pixels already and writes them out as they are
    (a master's PNG), each of Pillow's conversions to and from an array costs a copy of the
    picture (0.6-1.0 ms at 1024 px)."""
    if pixels.dtype != np.uint8 or pixels.ndim != 3 or pixels.shape[2] != 3:
        raise WatermarkError(
            f"Watermarking needs RGB pixels (height x width x 3 bytes), got {pixels.dtype} of shape {pixels.shape}"
        )
    marked, _ = _embed(pixels, serial, key, _as_marked)
    return marked


def rgb_pixels(image: Image.Image) -> RgbArray:
    """An RGB image's pixels as ``watermark_embed_pixels`` takes them; another mode is refused."""
    if image.mode != "RGB":
        raise WatermarkError(f"Watermarking needs an RGB image, got mode {image.mode!r}")
    return np.asarray(image, dtype=np.uint8)


def watermark_embed_encoded(
    image: Image.Image, serial: int, *, key: str = DEFAULT_KEY, encode: Callable[[Image.Image], bytes]
) -> tuple[Image.Image, bytes]:
    """``watermark_embed`` for a still that goes out in a lossy format: the marked image and its
    file, ``encode``'s bytes for it, whose decoded pixels are what the read-backs read.

    The file is what a reader gets, so the strength ladder answers to it: a mark the encoder
    weakens is made stronger until the decoded file reads back as ``watermark_embed`` demands
    of pixels, and no second read of the file is needed to claim that it carries ``serial``
    (a thumbnail made so was read three times before: the pixels, brightened, then the file).
    """

    def as_decoded(marked: RgbArray) -> tuple[RgbArray, bytes]:
        data = encode(Image.fromarray(marked))
        decoded = Image.open(io.BytesIO(data))
        return np.asarray(decoded if decoded.mode == "RGB" else decoded.convert("RGB"), dtype=np.uint8), data

    marked, data = _embed(rgb_pixels(image), serial, key, as_decoded)
    assert data is not None  # as_decoded encodes every attempt
    return Image.fromarray(marked), data


def _as_marked(marked: RgbArray) -> tuple[RgbArray, None]:
    """The marked pixels as a reader sees them when they are stored losslessly: as they are."""
    return marked, None


def _embed(
    pixels: RgbArray,
    serial: int,
    key: str,
    seen: Callable[[RgbArray], tuple[RgbArray, bytes | None]],
) -> tuple[RgbArray, bytes | None]:
    """The marked pixels and, where ``seen`` encodes them, their file: each strength of the
    ladder is read back from ``seen(marked)``, the pixels as a reader will decode them."""
    serial_check(serial)
    height, width = pixels.shape[:2]
    sides_check(width, height)
    host = _host_prepare(pixels)
    signs = cell_signs(serial, key)
    fallback: tuple[RgbArray, bytes | None] | None = None
    for level, psnr in enumerate(_PSNR_LEVELS):  # stronger only where the mark does not read back
        spill = level > 0  # the first level keeps every hue; later ones may move saturated ones
        amplitude = _amplitude(host, psnr, spill=spill)
        unit = _unit_response(host, amplitude, signs)  # the same for each share cancelled
        for cancel in _ISS_CANCEL:
            values = _cell_values(host, unit, signs, cancel=cancel)
            marked = _embed_rgb(host, amplitude, values, psnr=psnr, spill=spill)
            visible, data = seen(marked)
            luma = np.asarray(cv2.cvtColor(visible, cv2.COLOR_RGB2GRAY), dtype=np.float32)
            reading = _embed_read(luma, key)
            if reading.serial == serial:
                if (
                    reading.confidence >= _EMBED_TARGET
                    and _survives_crop(luma, serial, key)
                    and (not host.clips_brighter or _survives_brightening(visible, serial, key))
                ):
                    return marked, data
                if fallback is None:
                    fallback = (marked, data)
    if fallback is not None:
        return fallback
    raise WatermarkCapacityError(
        f"Image {width}x{height} cannot carry the watermark for serial {serial}: marked at PSNR "
        f"{_PSNR_LEVELS[-1]} dB, it reads back as "
        f"{'no serial' if reading.serial is None else f'serial {reading.serial}'} with confidence "
        f"{reading.confidence:.1f} (needs {Z_THRESHOLD} and a matching CRC): too flat or too "
        "saturated to take it"
    )


def _embed_read(luma: FloatArray, key: str) -> WatermarkReading:
    """The embedder's read-back: scale 1, as embedded (``read_as_lies``)."""
    return read_as_lies(luma, key, Z_THRESHOLD)


@dataclass(frozen=True)
class _Host:
    """What embedding needs to know about the unmarked image, computed once for every level."""

    rgb: RgbArray
    channels: tuple[RgbArray, ...]  # R, G, B apart
    relative: FloatArray  # perceptual mask on a quarter-resolution grid, relative to its mean
    limit: FloatArray  # headroom to 0 and 255 on the same grid, of a luma change along ``_DIRECTION``
    luma_limit: FloatArray  # headroom of the luma alone, any channel moving (saturated colours)
    work: FloatArray  # luma at the detector's working scale (scale 1: half size)
    norm: FloatArray  # the detector's local residual energy of ``work`` (``residual_and_norm``)
    weight: FloatArray  # its matched weighting of ``work`` (``detector_weight``)
    cells: FloatArray  # its cell sums of ``work`` at shift 0: the host's interference (``_cell_values``)
    clips_brighter: bool  # whether brightness x1.2 would clip a noticeable share of the pixels


def _survives_crop(luma: FloatArray, serial: int, key: str) -> bool:
    """Whether the marked image still reads with 5% cut off each side (images of 512 px and up).

    Informed embedding cancels the host's interference for the tiles as they lie; a crop
    moves every tile boundary and brings it back, so a busy image can read whole and not cropped.
    """
    height, width = luma.shape
    if min(height, width) < 2 * MIN_SIDE:
        return True
    dy, dx = round(height * _CROP_CHECK / 2), round(width * _CROP_CHECK / 2)
    cropped = np.ascontiguousarray(luma[dy : height - dy, dx : width - dx])
    return _embed_read(cropped, key).serial == serial


def _survives_brightening(marked: RgbArray, serial: int, key: str) -> bool:
    """Whether the marked image still reads, at ``_EMBED_TARGET``, after brightness x1.2.

    Run only where that clips a noticeable share of the pixels (``_Host.clips_brighter``):
    clipped highlights lose their part of the mark, and informed embedding cancelled the
    interference of the image as it was, so a bright image (a light background) can fall
    short where a uniformly scaled one would not.
    """
    brighter = cv2.convertScaleAbs(marked, alpha=_BRIGHTEN)  # x1.2, rounded, saturated at 255
    luma = np.asarray(cv2.cvtColor(brighter, cv2.COLOR_RGB2GRAY), dtype=np.float32)
    reading = _embed_read(luma, key)
    return reading.serial == serial and reading.confidence >= _EMBED_TARGET


def _host_prepare(rgb: RgbArray) -> _Host:
    """The perceptual mask and the detector's view of the unmarked image.

    The mask: texture from the local mean |Laplacian| (texture takes more, flat areas a
    floor), capped, and the headroom to 0 and 255, on a quarter-resolution grid.
    """
    height, width = rgb.shape[:2]
    luma = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    small = (max(1, width // 4), max(1, height // 4))
    laplacian = np.abs(cv2.Laplacian(luma, cv2.CV_16S, ksize=3)).astype(np.float32)
    texture = cv2.blur(cv2.resize(laplacian, small, interpolation=cv2.INTER_AREA), (5, 5))
    red, green, blue = channels = tuple(np.asarray(one, dtype=np.uint8) for one in cv2.split(rgb))
    brightest = cv2.max(cv2.max(red, green), blue)
    clipping = cv2.threshold(brightest, math.floor(255 / _BRIGHTEN), 255, cv2.THRESH_BINARY)[1]  # > 212.5
    clips_brighter = cv2.countNonZero(clipping) >= _BRIGHTEN_MIN_SHARE * brightest.size
    headroom = cv2.erode(
        cv2.resize(_headroom(red, green, blue), small, interpolation=cv2.INTER_AREA), np.ones((3, 3), np.uint8)
    )
    # Luma can move by up to sum(w_i * c_i) down and sum(w_i * (255 - c_i)) up: that is its own
    # value, and 255 minus it. Pure red, say, has none of the first headroom and plenty of this one.
    luma_room = cv2.min(luma, 255 - luma)
    luma_room = cv2.erode(cv2.resize(luma_room, small, interpolation=cv2.INTER_AREA), np.ones((3, 3), np.uint8))
    relative = np.minimum(MASK_FLOOR + texture / (float(np.mean(texture)) + 1e-6), MASK_CAP).astype(np.float32)
    work_size = (max(1, round(width * WORK_TILE / TILE)), max(1, round(height * WORK_TILE / TILE)))
    work = cv2.resize(luma, work_size, interpolation=cv2.INTER_AREA).astype(np.float32)
    residual, norm = residual_and_norm(work)
    weight = detector_weight(norm)
    cells = _cell_sums(np.clip(residual / norm, -_CLIP, _CLIP) * weight)
    limit, luma_limit = headroom.astype(np.float32), luma_room.astype(np.float32) * 0.5
    return _Host(rgb, channels, relative, limit, luma_limit, work, norm, weight, cells, clips_brighter)


def _headroom_tables() -> tuple[list[RgbArray], FloatArray]:
    """Per channel, the rank of its headroom (its room to 0 or 255 over its share of a unit luma
    change) among those of all three; and the headroom of each rank (see ``_headroom``).

    No pixel's least headroom exceeds the least of the channels' largest (green's, 96.7: green
    moves most): capped there, the three channels have 216 distinct values, so a rank fits a byte.
    """
    values = np.arange(256)
    room = np.minimum(values, 255 - values).astype(np.float32)
    per_channel = [room * (1.0 / float(d)) for d in _DIRECTION]  # as float32 as the pixels' would be
    cap = min(float(one.max()) for one in per_channel)
    capped = [np.minimum(one, np.float32(cap)) for one in per_channel]
    distinct = np.unique(np.concatenate(capped))
    assert distinct.size <= 256, "headroom ranks must fit a byte"
    ranks = [np.searchsorted(distinct, one).astype(np.uint8) for one in capped]
    by_rank = np.zeros(256, dtype=np.float32)
    by_rank[: distinct.size] = distinct
    return ranks, by_rank


_HEADROOM_RANKS, _HEADROOM_BY_RANK = _headroom_tables()


def _headroom(red: RgbArray, green: RgbArray, blue: RgbArray) -> FloatArray:
    """The largest luma change along ``_DIRECTION`` each pixel takes before a channel passes 0
    or 255: the least over the channels of min(c, 255 - c) / d (as float32).

    The least is taken over byte ranks (``_headroom_tables``: one LUT per channel, two byte
    minima, one LUT back to float): the same floats as three float rooms and two float minima,
    in 2.3 ms against 5.4 ms at 1024 px (0.6 against 1.0 at 512).
    """
    least = cv2.min(cv2.LUT(red, _HEADROOM_RANKS[0]), cv2.LUT(green, _HEADROOM_RANKS[1]))
    least = cv2.min(least, cv2.LUT(blue, _HEADROOM_RANKS[2]))
    return np.asarray(cv2.LUT(least, _HEADROOM_BY_RANK), dtype=np.float32)


def _amplitude(host: _Host, psnr: float, *, spill: bool) -> FloatArray:
    """The mask times one gain for PSNR ``psnr``, within the headroom (quarter resolution);
    with ``spill``, the luma's own headroom (channels may move by different amounts)."""
    target_mse = 255.0**2 / 10 ** (psnr / 10) / _DIRECTION_POWER  # of the luma change
    limit = host.luma_limit if spill else host.limit
    amplitude: FloatArray = np.minimum(host.relative * _gain_for(host.relative, limit, target_mse), limit)
    return amplitude


def _gain_for(relative: FloatArray, limit: FloatArray, target_mse: float) -> float:
    """The gain g (at most ``_GAIN_MAX``) with mean(min(g * relative, limit)^2) = target_mse.

    That mean rises with g: as g^2 mean(relative^2) while nothing reaches its limit, more
    slowly as more of the grid does. Newton steps from the gain that would reach the target
    with no limit (exact where none is reached), kept inside a bracket that bisection narrows
    where a step would leave it: a few steps, against the 24 a bisection of the whole grid
    takes (measured at 1024 px: 0.22 ms against 0.83 ms). It stops within 1e-7 of the target.
    """
    squares = (relative * relative).ravel()
    flat_relative, flat_limit = relative.ravel(), limit.ravel()
    count = squares.size
    if count == 0 or not np.any(squares > 0):
        return 0.0
    low, high = 0.0, _GAIN_MAX
    gain = min(math.sqrt(target_mse * count / float(squares.sum())), _GAIN_MAX)
    for _ in range(_GAIN_STEPS):
        clipped = np.minimum(flat_relative * gain, flat_limit)
        reached = float(np.dot(clipped, clipped)) / count
        if abs(reached - target_mse) <= 1e-7 * target_mse:
            break
        if reached < target_mse:
            low = gain
        else:
            high = gain
        if high - low <= 1e-7 * high:
            break
        free = flat_relative * gain < flat_limit  # the cells not held at their limit
        slope = 2.0 * gain * float(np.dot(squares, free)) / count
        step = gain - (reached - target_mse) / slope if slope > 0.0 else high
        gain = step if low < step < high else (low + high) / 2
    return min(gain, _GAIN_MAX)


def _embed_rgb(host: _Host, amplitude: FloatArray, values: FloatArray, *, psnr: float, spill: bool) -> RgbArray:
    """Add ``amplitude * tile(values)`` to R, G and B alike, scaled to PSNR ``psnr``.

    With ``spill``, the luma change a channel cannot take (it would pass 0 or 255) goes to
    the channels that can: the hue of saturated colours shifts a little, the mark stays.
    """
    height, width = host.rgb.shape[:2]
    target_mse = 255.0**2 / 10 ** (psnr / 10)
    delta = np.asarray(cv2.resize(amplitude, (width, height), interpolation=cv2.INTER_LINEAR), dtype=np.float32)
    pattern = _tile_band(tile_from_grid(values, CELL), width)
    # A band of tiles at a time, each step while the band is in cache: 4.7 ms against 5.3 ms at 1024 px.
    squares = np.empty_like(delta)
    for top in range(0, height, TILE):
        rows = delta[top : top + TILE]
        rows *= pattern[: rows.shape[0]]
        np.square(rows, out=squares[top : top + TILE])
    mse = float(np.mean(squares)) * _DIRECTION_POWER  # per channel, as PSNR counts it
    gain = min(math.sqrt(target_mse / max(mse, 1e-12)), _MAX_BOOST)
    if not spill:  # rounded and saturated by OpenCV, a channel at a time (several times faster than numpy)
        marked = np.empty_like(host.rgb)
        for top in range(0, height, TILE):
            rows, scratch = delta[top : top + TILE], squares[top : top + TILE]
            rows *= gain
            channels = []
            for channel, share in zip(host.channels, _DIRECTION, strict=True):
                np.multiply(rows, float(share), out=scratch)
                channels.append(cv2.add(channel[top : top + TILE], scratch, dtype=cv2.CV_8U))
            cv2.merge(channels, dst=marked[top : top + TILE])
        return marked
    delta *= gain
    original = host.rgb.astype(np.float32)
    moved = np.clip(original + delta[:, :, None] * _DIRECTION, 0, 255)
    shortfall = delta - (moved - original) @ _LUMA_WEIGHTS
    room = np.where(shortfall[:, :, None] > 0, moved < 255, moved > 0)
    share = (room * _LUMA_WEIGHTS).sum(axis=2)
    moved += room * (shortfall / np.maximum(share, 0.1))[:, :, None]
    return np.clip(np.rint(moved), 0, 255).astype(np.uint8)


def _unit_response(host: _Host, amplitude: FloatArray, signs: FloatArray) -> float:
    """What a unit mark of ``amplitude`` adds to a cell's sum along its sign, as the linearised
    detector sees it (the host's normaliser, no clipping): the median over the cells."""
    size = mean_size(WORK_CELL)
    shape = host.work.shape
    mark = np.asarray(cv2.resize(amplitude, (shape[1], shape[0])), dtype=np.float32)
    pattern = _tile_band(tile_from_grid(signs, WORK_CELL), shape[1])
    for top in range(0, shape[0], WORK_TILE):
        rows = mark[top : top + WORK_TILE]
        rows *= pattern[: rows.shape[0]]
    mark -= cv2.blur(mark, (size, size))
    mark /= host.norm
    mark *= host.weight
    response = _cell_sums(mark) * signs
    return max(float(np.median(response)), 1e-9)


def _cell_values(host: _Host, unit: float, signs: FloatArray, *, cancel: float) -> FloatArray:
    """Per-cell tile values: the signs, minus part of the host's own projection (ISS).

    The detector sums each cell over all tiles; at scale 1 the unmarked image's sum there
    is known here (``_Host.cells``). Subtracting ``cancel`` of it, in units of what a unit mark
    adds to that sum (``unit``: ``_unit_response``), removes much of the image's interference
    at the cost of some of the energy; values are scaled to mean square 1, keeping at least
    ``_ISS_MIN_SIGNAL`` of it for the signs. (Cancelling more than that looks better in the
    linear model but not to the real, clipping detector.)
    """
    interference = host.cells / unit
    spread = float(np.mean(interference**2))
    share = min(cancel, math.sqrt((1 - _ISS_MIN_SIGNAL**2) / max(spread, 1e-12)))
    along = float(np.mean(signs * interference))
    signal = share * along + math.sqrt(max(share**2 * along**2 - share**2 * spread + 1.0, 0.0))
    values: FloatArray = (signal * signs - share * interference).astype(np.float32)
    return values


def _tile_band(tile: FloatArray, width: int) -> FloatArray:
    """One band of ``tile`` repeated across ``width`` px from the left (the last one partial): a
    product with it, band by band, is the product with the whole tiling, without making it."""
    band: FloatArray = np.tile(tile, (1, -(-width // tile.shape[1])))[:, :width]
    return band


def _cell_sums(image: FloatArray) -> FloatArray:
    """The 16x16 cell sums of ``image`` folded at the working scale, at shift 0."""
    return fold_plain(image).reshape(GRID, WORK_CELL, GRID, WORK_CELL).sum(axis=(1, 3))
