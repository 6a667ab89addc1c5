"""Reading one lattice hypothesis: prefilter, fold, sync on the pilot, decode, score.

* **Prefilter.** Luma minus its local mean, divided by the local residual energy, clipped, and
  weighted by the amplitude the embedder's mask would have given that spot (a matched filter):
  ``whiten``. Everything after it is linear, so the frames of a video are whitened one by one and
  then summed into one canvas.
* **Fold.** The tiling makes the whitened luma periodic. Resampled so that a tile is 64x64 px
  (half the embedding scale; 8 px chips lose nothing), all tiles, partial ones included, are
  summed into one (``fold_plain``). A crop becomes a cyclic shift of that tile.
* **Sync.** FFT circular cross-correlation of the fold with the pilot over all 64x64 shifts, in
  the 8 orientations of the square and for every key at once (``Synced``): one FFT of the fold,
  one batched inverse FFT per statistic. The *coarse* fold (``coarse_spectra``) samples the
  canvas at half the working resolution after a low-pass (``coarse_canvas``); its spectrum,
  padded with zeros, interpolates the pilot correlation to every 1 px shift for a quarter of
  the resampling. ``coarse_syncs`` screens it with one statistic (the cells' mean energy, from
  the spectrum, in place of the pilot cells' own at each shift), transformed at the even
  shifts only and summed directly at the 1 px shifts around the best of them. A screen decides
  nothing: it only chooses which lattices are folded in full.
* **Decode.** The 4x4 cell sums at the best shifts are the soft chips: descrambled,
  soft-Viterbi-decoded, CRC-checked, and every cell scored against the decoded word
  (``decode_at``). The score is the reading's ``confidence``; ``provenance.watermark`` derives
  the false-positive bound from it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt
from PIL import Image

from provenance.errors import WatermarkError
from provenance.media import WATERMARK_MIN_SIDE
from provenance.watermark_coding import (
    CRC_BITS,
    GRID,
    PAYLOAD_BITS,
    PILOT_CELLS,
    SERIAL_BITS,
    TILE,
    WORK_CELL,
    WORK_TILE,
    Codebook,
    FloatArray,
    Keyring,
    bits_word,
    conv_encode,
    crc16,
    embed_keyring,
    viterbi,
)

MIN_SIDE = WATERMARK_MIN_SIDE  # two tiles each way: enough to fold and to see the period
MASK_FLOOR = 0.35  # the embedder's mask value of a flat area, relative to a mean textured one
MASK_CAP = 3.0  # the mask's ceiling, relative to its floor-free mean
SHORTLIST = 3  # best pilot shifts decoded per fold
DECODE_GATE = 4.5  # pilot z a shift needs to be decoded (unmarked images: max about 4.5)
_CLIP = 3.0  # whitened values are clipped to +-this
_ENERGY_CELLS = 2.25  # local energy window, in chips
_NORM_FLOOR = 0.5  # added to the local residual energy (grey levels)
_COARSE_TILE = WORK_TILE // 2  # the coarse fold's tile side, px
_SHAPE = (WORK_TILE, WORK_TILE)

Lattice = npt.NDArray[np.float64]  # 2x2, tile basis vectors as columns (x; y), image px
IDENTITY: Lattice = np.array([[float(TILE), 0.0], [0.0, float(TILE)]])  # the lattice as embedded


def _box_spectrum() -> npt.NDArray[np.complex64]:
    box = np.zeros(_SHAPE, dtype=np.float32)
    box[:WORK_CELL, :WORK_CELL] = 1.0
    return np.conj(np.fft.rfft2(box)).astype(np.complex64)


_BOX_SPECTRUM = _box_spectrum()  # conj real FFT of one working-scale cell: the cell sums
# The energy of a fold's cell sums over the 16x16 cells at one phase, on average, per unit of
# the fold's power spectrum: |box|^2, times 2 for the columns a real FFT leaves out, over 64^2
# (Parseval), over the 16 phases of a cell.
_CELL_POWER = (
    np.abs(_BOX_SPECTRUM) ** 2
    * np.where(np.isin(np.arange(WORK_TILE // 2 + 1), (0, WORK_TILE // 2)), 1.0, 2.0)
    / (WORK_TILE * WORK_TILE * WORK_CELL * WORK_CELL)
).astype(np.float32)


@dataclass(frozen=True)
class WatermarkReading:
    """What ``watermark_read`` found.

    ``serial`` is None unless the mark was detected: ``check_ok`` and ``confidence >=
    Z_THRESHOLD`` (more with several keys). ``confidence`` is the z-score of all 256 cells
    against the decoded word (at most 16; unmarked images score about 7-9.5, marked ones 12-16;
    ``provenance.watermark`` derives the false-positive bound). ``sync`` is the pilot's own
    z-score at the chosen shift (at most sqrt(70), about 8.4). ``bits`` is the decoded 56-bit
    word (serial then CRC) at the best hypothesis, equal to ``watermark_payload(serial)`` when
    detected. ``scale`` is image px per embedding px (1.0 as embedded, 0.5 after halving; the
    mean of the two axes after a change of aspect ratio), ``rotation`` in degrees
    counter-clockwise as seen (PIL's ``rotate``), applied after a horizontal mirror where
    ``mirrored``; ``offset`` where the image's top-left corner sits in the tile (x, y), in
    embedding px on a 2 px grid: a crop of 26 px from the left gives x = 26 (of the turned tile
    where the image was mirrored or turned). ``key_index`` is the index of the key that matched
    among the keys read with (0 with one key), None unless detected. ``frames`` is how many
    frames were combined.
    """

    serial: int | None
    bits: str
    check_ok: bool
    confidence: float
    sync: float = 0.0
    scale: float = 1.0
    rotation: float = 0.0
    offset: tuple[int, int] = (0, 0)
    mirrored: bool = False
    key_index: int | None = None
    frames: int = field(default=1, compare=False)


def size_check(image: Image.Image) -> None:
    sides_check(image.width, image.height)


def sides_check(width: int, height: int) -> None:
    """Refuse a picture too small to carry (or be searched for) the watermark."""
    if width < MIN_SIDE or height < MIN_SIDE:
        raise WatermarkError(f"Image is {width}x{height}; the watermark needs at least {MIN_SIDE}x{MIN_SIDE}")


def luma(image: Image.Image) -> FloatArray:
    """Luma as float32 (BT.601 weights, as cv2 and PIL compute it)."""
    rgb = np.asarray(image if image.mode == "RGB" else image.convert("RGB"), dtype=np.uint8)
    return np.asarray(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), dtype=np.float32)


def lattice_scale(lattice: Lattice) -> float:
    return float(np.sqrt(abs(np.linalg.det(lattice)))) / TILE


# --- prefilter ----------------------------------------------------------------------------


def mean_size(cell: float) -> int:
    return max(3, round(cell * 1.75) | 1)


def residual_and_norm(luma: FloatArray, cell: float = WORK_CELL) -> tuple[FloatArray, FloatArray]:
    """The detector's prefilter: luma minus its local mean, and the local residual energy."""
    size = mean_size(cell)
    residual = _floats(cv2.blur(luma, (size, size)))
    cv2.subtract(luma, residual, dst=residual)  # in place, here and below: fewer arrays to fill
    energy_size = max(5, round(cell * _ENERGY_CELLS) | 1)
    norm = _floats(cv2.multiply(residual, residual))
    norm = _floats(cv2.blur(norm, (energy_size, energy_size)))
    np.maximum(norm, 0.0, out=norm)
    np.sqrt(norm, out=norm)
    norm += _NORM_FLOOR
    return residual, norm


def detector_weight(norm: FloatArray) -> FloatArray:
    """The embedder's mask relative to the noise at each spot: what the matched filter weighs by."""
    level = float(cv2.mean(norm)[0])
    weight = norm + np.float32(MASK_FLOOR * level)
    np.minimum(weight, np.float32(MASK_CAP * level), out=weight)
    return _floats(cv2.divide(weight, norm, dst=weight, scale=1.0 / level))


def whiten(luma: FloatArray, cell: float) -> FloatArray:
    """The detector's prefilter: a matched weighting of the high-passed luma.

    Subtract the local mean, divide by the local residual energy (clipped, so edges do not
    dominate), then weight by the amplitude the embedder's mask would have given this
    spot relative to its noise: busy texture is noisy but capped, flat areas quiet but
    floored. ``cell`` is the chip size in px at this image's scale; windows scale with it.
    """
    residual, norm = residual_and_norm(luma, cell)
    ratio = _floats(cv2.divide(residual, norm, dst=residual))
    np.clip(ratio, -_CLIP, _CLIP, out=ratio)
    return _floats(cv2.multiply(ratio, detector_weight(norm), dst=ratio))


def _floats(array: npt.NDArray[Any]) -> FloatArray:
    """``array`` as float32 (OpenCV's results are typed loosely; no copy when it already is)."""
    return np.asarray(array, dtype=np.float32)


# --- folding ------------------------------------------------------------------------------


def fold_plain(image: FloatArray, tile: int = WORK_TILE) -> FloatArray:
    """Sum all ``tile`` x ``tile`` tiles of ``image`` into one; partial tiles at the edges count too."""
    height, width = image.shape
    rows, cols = -(-height // tile), -(-width // tile)
    if (height, width) != (rows * tile, cols * tile):
        padded = np.zeros((rows * tile, cols * tile), dtype=np.float32)
        padded[:height, :width] = image
        image = padded
    strips = image.reshape(rows, tile, cols * tile).sum(axis=0, dtype=np.float32)
    folded: FloatArray = strips.reshape(tile, cols, tile).sum(axis=1, dtype=np.float32)
    return folded


def warp(image: FloatArray, per_px: Lattice, border: int, *, tile: int = WORK_TILE) -> FloatArray:
    """``image`` resampled so that ``per_px`` (image px per output px, 2x2) becomes the identity;
    the output's sides are whole tiles (what lies outside the image is 0 or the border). A
    diagonal map with a zero border is a resize (about 3x faster than a general warp)."""
    if border == cv2.BORDER_CONSTANT and per_px[0, 1] == 0.0 and per_px[1, 0] == 0.0:
        return _stretch(image, float(per_px[0, 0]), float(per_px[1, 1]))
    height, width = image.shape
    inverse = np.linalg.inv(per_px)
    corners = inverse @ np.array([[0, width, 0, width], [0, 0, height, height]], dtype=np.float64)
    low = corners.min(axis=1)
    extent = np.ceil((corners.max(axis=1) - low) / tile).astype(int) * tile
    matrix = np.hstack([per_px, (per_px @ low)[:, None]])
    warped = cv2.warpAffine(
        image,
        matrix,
        (int(extent[0]), int(extent[1])),
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=border,
    )
    return np.asarray(warped, dtype=np.float32)


def _stretch(image: FloatArray, across: float, down: float) -> FloatArray:
    """``image`` resized so that ``across`` x ``down`` of its px become one: each output side is
    chosen among the nearby ones for the one whose input side (padded with zeros or cut) makes the
    factor exact to within a hundredth of a px over the image."""
    height, width = image.shape
    out_w, in_w = _exact_sides(width, across)
    out_h, in_h = _exact_sides(height, down)
    if (in_h, in_w) != (height, width):
        fitted = np.zeros((in_h, in_w), dtype=np.float32)
        fitted[: min(height, in_h), : min(width, in_w)] = image[:in_h, :in_w]
        image = fitted
    if (out_h, out_w) == (in_h, in_w):
        return image
    return np.asarray(cv2.resize(image, (out_w, out_h), interpolation=cv2.INTER_LINEAR), dtype=np.float32)


@lru_cache(maxsize=4096)  # the same sides and lattices recur in every read of one size
def _exact_sides(side: int, factor: float) -> tuple[int, int]:
    """An output side near ``side / factor`` and the input side ``factor`` times it, nearest a whole px."""
    if abs(factor - 1.0) * side <= 0.5:
        return side, side
    nominal = side / factor
    candidates = range(max(1, math.floor(nominal) - 6), math.ceil(nominal) + 7)
    out = min(candidates, key=lambda n: (abs(round(n * factor) - n * factor), abs(n - nominal)))
    return out, round(out * factor)


def fold_lumas(lumas: Sequence[FloatArray], lattice: Lattice) -> FloatArray:
    """Resample each frame so that ``lattice`` becomes a 64x64 px tile, whiten, add, sum all tiles."""
    whites: dict[int, FloatArray] = {}  # a frame given several times is resampled and whitened once
    for one in lumas:
        if id(one) not in whites:
            whites[id(one)] = _white_at(one, lattice)
    parts = [whites[id(one)] for one in lumas]
    return fold_plain(parts[0] if len(parts) == 1 else np.sum(parts, axis=0, dtype=np.float32))


def _white_at(luma: FloatArray, lattice: Lattice) -> FloatArray:
    """``luma`` shrunk (area) and warped so that ``lattice`` becomes a 64x64 px tile, whitened there."""
    per_px = lattice / WORK_TILE  # image px per working px, as a 2x2 map
    shrink = max(1.0, float(np.sqrt(abs(np.linalg.det(per_px)))))
    height, width = luma.shape
    if shrink > 1.05:
        size = (max(1, round(width / shrink)), max(1, round(height / shrink)))
        luma = np.asarray(cv2.resize(luma, size, interpolation=cv2.INTER_AREA), dtype=np.float32)
        per_px = per_px * np.array([[size[0] / width], [size[1] / height]])
    if not near_identity(per_px, luma.shape):
        luma = warp(luma, per_px, cv2.BORDER_REPLICATE, tile=1)
    return whiten(luma, WORK_CELL)


def near_identity(per_px: Lattice, shape: tuple[int, ...]) -> bool:
    """Whether resampling by ``per_px`` would move no px of an image of ``shape`` by half a px."""
    return float(np.abs(per_px - np.eye(2)).max()) * max(shape) <= 0.5


def coarse_canvas(white: FloatArray) -> FloatArray:
    """A whitened canvas low-passed and sampled at every other px (what the coarse fold warps)."""
    return np.asarray(cv2.pyrDown(white), dtype=np.float32)


def coarse_spectra(coarse: FloatArray, per_px: Lattice, centre: int = 0) -> npt.NDArray[np.complex64]:
    """The band-limited spectra (stacked) of a fold at the working scale, from the coarse canvas
    (up to a constant factor, which no pilot z sees), as ``_COARSE_TILE`` x ``_COARSE_TILE``
    real spectra.

    ``per_px`` maps working px to the full canvas's px (as for ``warp``); the coarse canvas is
    warped at half that resolution (a 32 px tile) and folded. Its spectrum, less the Nyquist
    row and column, is the band of the 64x64 fold's: padded with zeros to that size it gives
    the pilot correlation at every 1 px shift, the band-limited interpolation of the full
    fold's (``coarse_syncs``). With ``centre``, where the coarse canvas is more than half as
    large again, also the spectrum of the fold of the warped canvas's central ``centre`` x
    ``centre`` px.
    """
    height, width = coarse.shape
    middle = bool(centre) and max(height, width) > 1.5 * centre
    stretched = per_px[0, 1] == 0.0 and per_px[1, 0] == 0.0 and not near_identity(per_px, coarse.shape)
    if stretched and _exact_sides(height, float(per_px[1, 1])) == (height, height):  # along x alone
        folds = _stretched_folds(coarse, float(per_px[0, 0]), 1, centre if middle else 0)
    elif stretched and _exact_sides(width, float(per_px[0, 0])) == (width, width):  # along y alone
        folds = _stretched_folds(coarse, float(per_px[1, 1]), 0, centre if middle else 0)
    else:
        if not near_identity(per_px, coarse.shape):
            coarse = warp(coarse, per_px, cv2.BORDER_CONSTANT, tile=_COARSE_TILE)
        folds = [fold_plain(coarse, _COARSE_TILE)]
        if middle:
            height, width = coarse.shape
            top, left = max(0, (height - centre) // 2), max(0, (width - centre) // 2)
            middle_px = np.ascontiguousarray(coarse[top : top + centre, left : left + centre])
            folds.append(fold_plain(middle_px, _COARSE_TILE))
    half = _COARSE_TILE // 2
    spectra = np.empty((len(folds), _COARSE_TILE, half + 1), dtype=np.complex64)
    for index, fold in enumerate(folds):  # OpenCV's DFT: several times faster than numpy's at this size
        full = np.asarray(cv2.dft(fold, flags=cv2.DFT_COMPLEX_OUTPUT), dtype=np.float32)
        spectra[index] = np.ascontiguousarray(full[:, : half + 1]).view(np.complex64)[..., 0]
    spectra[:, half] = 0  # the Nyquist row and column: outside the band the fold keeps
    spectra[:, :, half] = 0
    return spectra


def _stretched_folds(image: FloatArray, factor: float, axis: int, centre: int) -> list[FloatArray]:
    """``coarse_spectra``'s folds of ``image`` stretched along one axis alone (1: x, 0: y) as
    ``_stretch`` does it (``factor`` image px to one), the whole and, with ``centre``, its
    central ``centre`` px each way. The tiles are summed across that axis first: the resize
    treats each row (or column) alone, so it resamples an eighth of the px or fewer, for the
    same folds (to rounding)."""
    tile = _COARSE_TILE
    height, width = image.shape
    out_side, in_side = _exact_sides(image.shape[axis], factor)
    kept = image[:, :in_side] if axis == 1 else image[:in_side]
    if kept.shape[axis] < in_side:  # the input padded with zeros to its exact side
        padded = np.zeros((height, in_side) if axis == 1 else (in_side, width), dtype=np.float32)
        padded[:height, :width] = kept
        kept = padded
    other = 1 - axis
    start = max(0, (image.shape[other] - centre) // 2)  # the centre across the stretch: as it lies
    strips = [_fold_axis(kept, other)]
    if centre:
        strips.append(_fold_axis(kept[start : start + centre] if axis == 1 else kept[:, start : start + centre], other))
    size = (out_side, tile) if axis == 1 else (tile, out_side)
    folds = []
    for index, strip in enumerate(strips):
        if out_side != in_side:
            strip = np.asarray(cv2.resize(strip, size, interpolation=cv2.INTER_LINEAR), dtype=np.float32)
        if index == 1:  # the centre along the stretch: of the resized side
            along = max(0, (out_side - centre) // 2)
            strip = strip[:, along : along + centre] if axis == 1 else strip[along : along + centre]
        folds.append(_fold_axis(strip, axis))
    return folds


def _fold_axis(image: FloatArray, axis: int) -> FloatArray:
    """``image`` summed ``_COARSE_TILE`` px apart along ``axis`` alone (zeros past its end)."""
    tile = _COARSE_TILE
    height, width = image.shape
    count = -(-image.shape[axis] // tile)
    if image.shape[axis] != count * tile:
        padded = np.zeros((count * tile, width) if axis == 0 else (height, count * tile), dtype=np.float32)
        padded[:height, :width] = image
        image = padded
    if axis == 0:
        return np.ascontiguousarray(image.reshape(count, tile, width).sum(axis=0, dtype=np.float32))
    # einsum: about three times numpy's sum over a middle axis
    return np.ascontiguousarray(np.einsum("ikj->ij", image.reshape(height, count, tile)), dtype=np.float32)


# --- sync and decode ----------------------------------------------------------------------


def _band(spectrum: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """The coarse band of 64x33 real spectra (last two axes) as 32x17 ones, Nyquist row and column 0."""
    half = _COARSE_TILE // 2
    band = np.zeros((*spectrum.shape[:-2], _COARSE_TILE, half + 1), dtype=spectrum.dtype)
    band[..., :half, :half] = spectrum[..., :half, :half]
    band[..., half + 1 :, :half] = spectrum[..., WORK_TILE - half + 1 :, :half]
    return band


_COARSE_CELL_POWER = _band(_CELL_POWER)  # the cell-energy weights in the coarse band (32x17)


@lru_cache(maxsize=16)
def _coarse_pilots(keyring: Keyring) -> npt.NDArray[np.complex64]:
    """The keyring's pilot spectra in the coarse band (codebooks, 32, 17), made once a keyring."""
    return _band(keyring.pilots)


# The phases of the band's frequencies at every 1 px shift of the 64x64 grid, each way: rows
# -15..15 (stored as 0..15, 17..31), columns 0..15 counted twice but the first (as a real
# inverse transform counts them), over 64^2 (its normalisation).
def _phases(frequencies: npt.NDArray[np.float64], weights: npt.NDArray[np.float64]) -> npt.NDArray[np.complex64]:
    """exp(2 pi i k y / 64) times each frequency's weight, for every shift y (rows) and frequency k."""
    angles = (2 * np.pi / WORK_TILE) * np.outer(np.arange(WORK_TILE), frequencies)
    return ((np.cos(angles) + 1j * np.sin(angles)) * weights).astype(np.complex64)


_DOWN = _phases(np.fft.fftfreq(_COARSE_TILE, 1 / _COARSE_TILE).astype(np.float64), np.ones(_COARSE_TILE))
_ACROSS = _phases(
    np.arange(_COARSE_TILE // 2 + 1, dtype=np.float64),
    np.where(np.arange(_COARSE_TILE // 2 + 1) == 0, 1.0, 2.0) / WORK_TILE**2,
)
_STEPS = np.array([-1, 0, 1])
_REFINED = 16  # best even shifts per fold (over every codebook) refined to the 1 px grid


def coarse_syncs(spectra: npt.NDArray[np.complex64], keyring: Keyring) -> list[float]:
    """For each coarse fold spectrum (stacked, ``coarse_spectra``), the best pilot z over every
    1 px shift, orientation and key, normalised by the mean energy of all its cell sums
    (Parseval, from the spectrum) instead of the pilot cells' own at each shift: a screening
    statistic, far cheaper than ``Synced``.

    The correlation is transformed at the even shifts only (a 32x32 inverse transform: the band
    fits it without aliasing), and the 3x3 shifts around the best ``_REFINED`` even ones are
    summed directly: a pilot peak spans several px, so its best 1 px shift lies next to one of
    its best even ones. A quarter of the transform of every 1 px shift, for the same value
    wherever a peak stands out, and never a higher one (a maximum over fewer shifts): on 18 of
    the bench's images at 512 and 1024 px, unmarked and marked then turned 2 degrees, under the
    40 grid lattices, the same to 1e-4 wherever every shift's transform gave 4 or more (the
    gates are 4.5 and 6), and at most 0.07 lower below that.
    """
    pilots = _coarse_pilots(keyring)
    count, codebooks = len(spectra), len(pilots)
    energy = np.sum((spectra.real**2 + spectra.imag**2) * _COARSE_CELL_POWER, axis=(1, 2)) * (
        PILOT_CELLS / (GRID * GRID)
    )
    products = spectra[:, None] * pilots  # (folds, codebooks, 32, 17)
    even = np.fft.irfft2(products, s=(_COARSE_TILE, _COARSE_TILE)).reshape(count, codebooks, -1)
    top = np.argpartition(even.reshape(count, -1), -_REFINED, axis=1)[:, -_REFINED:]  # (folds, _REFINED)
    codebook, rest = np.divmod(top, _COARSE_TILE * _COARSE_TILE)
    rows, cols = np.divmod(rest, _COARSE_TILE)
    chosen = products[np.arange(count)[:, None], codebook]  # (folds, _REFINED, 32, 17)
    down = _DOWN[(2 * rows[..., None] + _STEPS) % WORK_TILE]  # (folds, _REFINED, 3, 32)
    across = _ACROSS[(2 * cols[..., None] + _STEPS) % WORK_TILE]  # (folds, _REFINED, 3, 17)
    values = np.matmul(np.matmul(down, chosen), np.swapaxes(across, -1, -2)).real  # the 1 px shifts near each
    best = values.reshape(count, -1).max(axis=1)
    return [float(peak) / math.sqrt(max(float(power), 1e-12)) for peak, power in zip(best, energy, strict=True)]


class Synced:
    """One fold's pilot sync: its cell sums, and its best shifts by pilot z over every
    orientation and key (the keyring's codebooks: one FFT of the fold serves all eight
    orientations)."""

    def __init__(self, spectrum: npt.NDArray[np.complex64], keyring: Keyring, lattice: Lattice) -> None:
        self.cell_sums = _floats(np.fft.irfft2(spectrum * _BOX_SPECTRUM, s=_SHAPE))
        squares = np.fft.rfft2(self.cell_sums * self.cell_sums)
        self.lattice = lattice
        self.keyring = keyring
        correlation = np.fft.irfft2(spectrum * keyring.pilots, s=_SHAPE)
        energy = np.fft.irfft2(squares * keyring.combs, s=_SHAPE)
        np.maximum(energy, 1e-12, out=energy)
        z = (correlation / np.sqrt(energy)).ravel()
        top = np.argpartition(z, -SHORTLIST)[-SHORTLIST:]
        self.shortlist = sorted(((float(z[flat]), int(flat)) for flat in top), reverse=True)
        self.sync = self.shortlist[0][0]

    @classmethod
    def of_fold(cls, folded: FloatArray, keyring: Keyring, lattice: Lattice) -> Synced:
        return cls(np.fft.rfft2(folded).astype(np.complex64, copy=False), keyring, lattice)

    def decode(self, chosen: Sequence[tuple[float, int]], threshold: float) -> WatermarkReading:
        best: WatermarkReading | None = None
        for sync, flat in chosen:
            which, rest = divmod(flat, WORK_TILE * WORK_TILE)
            reading = decode_at(
                self.cell_sums,
                self.keyring.codebooks[which],
                divmod(rest, WORK_TILE),
                self.lattice,
                sync=sync,
                orientation=which % self.keyring.orientations,
                key_index=which // self.keyring.orientations,
                threshold=threshold,
            )
            if best is None or rank(reading) > rank(best):
                best = reading
        assert best is not None
        return best

    def decide(self, threshold: float, *, shifts: int = SHORTLIST) -> WatermarkReading:
        """Decode the best ``shifts`` shortlisted shifts whose pilot z reaches ``DECODE_GATE``
        (the best one anyway, so that the reading reports its bits) and keep the best reading.
        Gating only removes detections, so the bound holds."""
        chosen = [entry for entry in self.shortlist[:shifts] if entry[0] >= DECODE_GATE] or self.shortlist[:1]
        return self.decode(chosen, threshold)


def rank(reading: WatermarkReading) -> tuple[bool, float]:
    return reading.serial is not None, reading.confidence


def read_as_lies(luma: FloatArray, key: str, threshold: float) -> WatermarkReading:
    """``luma`` read at scale 1 as it lies: one orientation, one key, the best pilot shift only
    (a whole read also tries every orientation and the next two shifts: this is the stricter
    test). The embedder's read-back, and the quick answer of ``watermark_confirms``."""
    return Synced.of_fold(fold_lumas([luma], IDENTITY), embed_keyring(key), IDENTITY).decide(threshold, shifts=1)


def decode_at(
    cell_sums: FloatArray,
    codebook: Codebook,
    shift: tuple[int, int],
    lattice: Lattice,
    *,
    sync: float,
    orientation: int,
    key_index: int,
    threshold: float,
) -> WatermarkReading:
    """Read the soft chips at one shift, Viterbi-decode, check the CRC, score all cells."""
    dy, dx = shift
    rows = (codebook.payload_cells[:, 0] * WORK_CELL + dy) % WORK_TILE
    cols = (codebook.payload_cells[:, 1] * WORK_CELL + dx) % WORK_TILE
    payload = cell_sums[rows, cols]
    soft = payload * codebook.scrambler
    bits = viterbi((soft / (np.sqrt(np.mean(soft**2)) + 1e-12)).astype(np.float32))
    word = bits_word(bits)
    serial, check = word >> CRC_BITS, word & ((1 << CRC_BITS) - 1)
    check_ok = crc16(serial.to_bytes(SERIAL_BITS // 8, "big")) == check
    # Score: every cell against the sign it should have if ``word`` is what was embedded.
    coded = conv_encode(bits).astype(np.float32)
    pilot = cell_sums[
        (codebook.pilot_cells[:, 0] * WORK_CELL + dy) % WORK_TILE,
        (codebook.pilot_cells[:, 1] * WORK_CELL + dx) % WORK_TILE,
    ]
    agreement = float(pilot @ codebook.pilot_signs + soft @ (1 - 2 * coded))
    energy = float(pilot @ pilot + payload @ payload)
    z = agreement / math.sqrt(max(energy, 1e-12))
    detected = check_ok and z >= threshold
    # The fold was turned by ``orientation % 4`` quarter turns (counter-clockwise as an array
    # is shown) to match: the image was turned the other way. The lattice's own angle, with
    # y pointing down, is clockwise as seen.
    turned = -90.0 * (orientation % 4) - math.degrees(math.atan2(lattice[1, 0], lattice[0, 0]))
    rotation = turned % 360.0
    rotation = rotation - 360.0 if rotation > 180.0 else rotation  # (-180, 180]
    step = TILE // WORK_TILE
    return WatermarkReading(
        serial=serial if detected else None,
        bits=format(word, f"0{PAYLOAD_BITS}b"),
        check_ok=check_ok,
        confidence=round(z, 3),
        sync=round(sync, 3),
        scale=round(lattice_scale(lattice), 4),
        rotation=round(rotation, 2) + 0.0,
        offset=((WORK_TILE - dx) % WORK_TILE * step, (WORK_TILE - dy) % WORK_TILE * step),
        mirrored=orientation >= 4,
        key_index=key_index if detected else None,
    )
