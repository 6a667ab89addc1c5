"""The geometry search of a read: which lattice hypotheses are folded, in which order, at what cost.

An unmarked image walks the whole list, so its read is the slowest; the search is built so that
walking it costs little. Full folds resample the whitened canvas at the working scale and sync
on every 1 px shift; *coarse* folds (``provenance.watermark_detection.coarse_spectra``) resample
a low-passed canvas at half that resolution (a quarter of the pixels) and are screened by
``coarse_syncs``, which gives the pilot z within a few percent of the full fold's; screens are
synced in batches (the grid ``_SCREEN_BATCH`` lattices at a time, neighbours together), which
keeps the transforms' data in cache. On the bench's images an unmarked image's coarse pilot
reached ``_COARSE_GATE`` under about one lattice in 80, a marked image's under its lattice all
but never fell short of it.

1. Scale 1, folded in full from the whitened half-size canvas: unedited copies, mirrors and
   quarter turns read here, for the price of one fold.
2. The fixed resizes whose coarse pilot is plainly a mark's (``_EARLY_SYNC``), in full. Then the
   autocorrelation's lattices and the remaining fixed resizes: a small image's fixed resizes in
   full (its coarse fold holds few tiles, and a full fold costs little there), every other
   lattice coarsely and, where its pilot shows, in full. An autocorrelation lattice whose full
   pilot still shows (``_REFINE_GATE``) has its two neighbours tried the same way.
3. The grid, coarsely, in the order the autocorrelation favours; a large canvas's centre
   (``_SCREEN_SIDE``) is also folded from the same resampling, since a fold reads within a
   lattice error inversely proportional to its extent: half a grid step from its lattice a
   1024 px image's whole fold can miss a weak mark its centre still shows. A lattice whose
   coarse pilot is plainly a mark's is tried as soon as its batch is screened; then, strongest
   first, those whose coarse pilot shows; then the neighbours of the strongest by either fold
   (``_SCREENED``). Trying a lattice: fold it in full and, where its full pilot still shows,
   its neighbours as in step 2.
4. Near misses: where a searched lattice's word passed the CRC short of the threshold, the grid
   and autocorrelation lattices and neighbours within a grid step of it, strongest coarse pilot
   first, in full (``_NEAR_FOLDS`` at most). At 512 px a lattice's z moves by a few tenths with
   its exact angle and with how its tiles fall on the working grid, so a rotated copy that read
   just short under one lattice can read under the next.

The search stops at the first detection, and folds in full at most ``_MAX_FULL_FOLDS`` lattices
besides scale 1 (an image whose own structure lifts many coarse pilots, such as a smooth
gradient, would otherwise fold dozens), and ``_NEAR_FOLDS`` more around near misses. Which
lattices are *on the list* depends on the image only; the pilot and the decoded word (hence the
key) only decide which of them are folded in full and decoded, which removes detections and
never adds a hypothesis: the union bound counts the whole list.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
import numpy.typing as npt
from PIL import Image

from provenance.errors import WatermarkError
from provenance.watermark_coding import DEFAULT_KEY, WORK_CELL, WORK_TILE, FloatArray, keyring
from provenance.watermark_detection import (
    IDENTITY,
    Lattice,
    Synced,
    WatermarkReading,
    coarse_canvas,
    coarse_spectra,
    coarse_syncs,
    fold_lumas,
    fold_plain,
    lattice_scale,
    luma,
    near_identity,
    rank,
    read_as_lies,
    size_check,
    warp,
    whiten,
)
from provenance.watermark_geometry import (
    FIXED_LATTICES,
    MAX_KEYS,
    Z_THRESHOLD,
    Autocorrelation,
    auto_lattices,
    autocorrelation,
    autocorrelation_shape,
    autocorrelation_white,
    grid_for,
    grid_reach,
    scale_neighbours,
    z_thresholds,
)
from provenance.watermark_lattice import lattice_score

_SMALL_SIDE = 640  # up to this short side (px) the fixed resizes are folded in full without a screen
_NEAR_ONE = (0.85, 1.2)  # lattice scales folded from the whitened half-size canvas (no new prefilter)
_COARSE_GATE = 4.5  # coarse pilot z a lattice needs to be folded in full (unmarked: about 1 in 80)
_REFINE_GATE = 4.0  # full pilot z a searched lattice needs for its neighbours to be tried
_SCREEN_SIDE = 256  # a large canvas's centre is also folded coarsely for the grid, this many px each way
_EARLY_SYNC = 6.0  # coarse pilot z at which a lattice is tried at once (unmarked: none on the bench reached 5)
_MAX_FULL_FOLDS = 10  # lattices one read folds in full at most, besides scale 1
_SCREENED = 3  # grid lattices whose neighbours are tried after the grid, strongest coarse pilot first
_SCREEN_GATE = 3.5  # coarse pilot z a grid lattice needs for that
_SCREEN_BATCH = 8  # grid lattices screened in one batch
_NEAR_FOLDS = 6  # lattices folded in full around near misses (step 4), besides ``_MAX_FULL_FOLDS``


def watermark_read(
    image: Image.Image, *, key: str | None = None, keys: Sequence[str] | None = None
) -> WatermarkReading:
    """Find the mark in ``image`` (any mode): any crop, scale 0.4-2x, mirror images, quarter
    turns, aspect-ratio changes of +-10% and rotations of up to 5 degrees (further where the
    autocorrelation sees the lattice).

    ``key`` (default ``DEFAULT_KEY``) selects the pilot and scrambler; ``keys`` tries several
    at once (at most ``MAX_KEYS``) with one geometry search, and ``key_index`` in the reading
    says which one matched. Each key multiplies the hypotheses, so a read with several keys
    needs ``z_threshold(len(keys))``.
    """
    size_check(image)
    return watermark_read_frames([image], key=key, keys=keys)


def watermark_confirms(image: Image.Image, serial: int, *, key: str) -> bool:
    """Whether ``watermark_read(image, key=key)`` finds ``serial``, answered cheaply where it can.

    A copy at the size it was marked at reads at scale 1 as it lies: that read, in one orientation
    at its best shift (what the embedder checks), costs about half of the whole read even there
    (a 256 px JPEG, decode included: 1.5 against 2.8 ms). What it detects, the whole read detects
    too: it decides scale 1 first, from the same fold, in every orientation, at the same
    threshold, and a marked copy's own shift heads its shortlist. Only where that read falls short
    does the whole search run, so the answer is the whole read's. A copy resized since it was
    marked (a thumbnail keeping its master's mark, ``provenance.renditions``) falls through: the
    quick read then adds about 1.3 ms to a 16 ms search (a 512 px photograph's mark halved)."""
    size_check(image)
    lumas = [luma(image)]
    return (
        read_as_lies(lumas[0], key, Z_THRESHOLD).serial == serial
        or _search(lumas, _keys_check(key, None)).serial == serial
    )


def watermark_read_frames(
    frames: Sequence[Image.Image], *, key: str | None = None, keys: Sequence[str] | None = None
) -> WatermarkReading:
    """Read one mark from video frames of one size by summing their folded soft chips.

    Every frame is folded under the same lattice hypotheses (estimated from the sum of
    the frames' power spectra), the folds are added and decoded once: frames each too
    weakly marked to read alone still decode together. The false-positive bound is the
    same as for one image (same hypotheses). ``key`` and ``keys`` as for ``watermark_read``.
    """
    if not frames:
        raise WatermarkError("No frames to read a watermark from")
    sizes = {frame.size for frame in frames}
    if len(sizes) > 1:
        raise WatermarkError(f"Video frames must share one size, got {sorted(sizes)}")
    size_check(frames[0])
    chosen = _keys_check(key, keys)
    lumas: dict[int, FloatArray] = {}  # a frame given several times (a weighted average) is converted once
    reading = _search([lumas.setdefault(id(frame), luma(frame)) for frame in frames], chosen)
    return reading if len(frames) == 1 else WatermarkReading(**{**reading.__dict__, "frames": len(frames)})


def _keys_check(key: str | None, keys: Sequence[str] | None) -> list[str]:
    if key is not None and keys is not None:
        raise WatermarkError("Give the watermark either key or keys, not both")
    if keys is None:
        return [DEFAULT_KEY if key is None else key]
    chosen = list(keys)
    if not 1 <= len(chosen) <= MAX_KEYS:
        raise WatermarkError(f"Watermark keys: give 1 to {MAX_KEYS}, got {len(chosen)}")
    for index, one in enumerate(chosen):
        if not isinstance(one, str) or not one:
            raise WatermarkError(f"Watermark keys[{index}] must be a non-empty string, got {type(one).__name__}")
    return chosen


class _Canvas:
    """A read's frames whitened at half size (the working scale of scale-1 lattices) and
    summed, with what is folded from them: scale 1 as it lies, lattices near scale 1 warped,
    coarse folds from its low-passed half."""

    def __init__(self, lumas: Sequence[FloatArray]) -> None:
        self.lumas = lumas
        height, width = lumas[0].shape
        size = (max(1, round(width / 2)), max(1, round(height / 2)))
        whites: dict[int, FloatArray] = {}  # whitened once per distinct frame
        self.whites = [
            whites.setdefault(
                id(one),
                whiten(np.asarray(cv2.resize(one, size, interpolation=cv2.INTER_AREA), dtype=np.float32), WORK_CELL),
            )
            for one in lumas
        ]
        self.white: FloatArray = self.whites[0] if len(lumas) == 1 else np.add.reduce(self.whites, dtype=np.float32)
        self.to_canvas = np.array([[size[0] / width], [size[1] / height]])
        self._coarse: FloatArray | None = None

    def fold(self, lattice: Lattice) -> FloatArray:
        per_px = lattice / WORK_TILE * self.to_canvas  # canvas px per working px
        if lattice is IDENTITY and near_identity(per_px, self.white.shape):
            return fold_plain(self.white)
        if _NEAR_ONE[0] <= lattice_scale(lattice) <= _NEAR_ONE[1]:
            return fold_plain(warp(self.white, per_px, cv2.BORDER_CONSTANT))
        return fold_lumas(self.lumas, lattice)

    def coarse(self, lattice: Lattice, *, centre: bool = False) -> npt.NDArray[np.complex64]:
        """The coarse fold's spectrum: from the canvas low-passed and halved for lattices from
        near scale 1 up, from the canvas itself for smaller ones (where it holds 2-3 px cells).
        With ``centre``, also that of the fold of the canvas's centre (``_SCREEN_SIDE`` px each
        way) where the canvas is larger: a fold reads within a lattice error inversely
        proportional to its extent, so a large image's centre still sees the mark half a grid
        step from its lattice, where the whole fold no longer does."""
        per_px = lattice / WORK_TILE * self.to_canvas
        if lattice_scale(lattice) < _NEAR_ONE[0]:
            return coarse_spectra(self.white, 2 * per_px)
        if self._coarse is None:
            self._coarse = coarse_canvas(self.white)
        return coarse_spectra(self._coarse, per_px, _SCREEN_SIDE // 2 if centre else 0)

    def autocorrelation(self) -> Autocorrelation | None:
        size, shrink = autocorrelation_shape(self.lumas[0].shape)
        if shrink == 2.0 and size == self.white.shape[::-1]:  # the canvas is what it would whiten
            return autocorrelation(self.whites, shrink)
        return autocorrelation([autocorrelation_white(one) for one in self.lumas], shrink)


def _search(lumas: Sequence[FloatArray], keys: Sequence[str]) -> WatermarkReading:
    """Walk the hypotheses (module docstring), stopping at the first detection."""
    plain, searched = z_thresholds(len(keys))
    ring = keyring(tuple(keys))
    canvas = _Canvas(lumas)
    # 1. Scale 1, in full.
    best = Synced.of_fold(canvas.fold(IDENTITY), ring, IDENTITY).decide(plain)
    if best.serial is not None:
        return best
    folded: dict[int, float] = {}  # id of each lattice folded in full: its pilot z
    budgets = {"search": _MAX_FULL_FOLDS, "near": _NEAR_FOLDS}
    near: list[tuple[float, Lattice]] = []  # lattices whose word passed the CRC short of the threshold

    def full(lattice: Lattice, threshold: float, budget: str = "search") -> float:
        """Fold ``lattice`` in full and decide it (once, within the budget); its pilot z."""
        nonlocal best
        if id(lattice) not in folded and budgets[budget] > 0:
            budgets[budget] -= 1
            synced = Synced.of_fold(canvas.fold(lattice), ring, lattice)
            reading = synced.decide(threshold)
            best = max(best, reading, key=rank)
            folded[id(lattice)] = synced.sync
            if reading.check_ok and reading.serial is None:
                near.append((reading.confidence, lattice))
        return folded.get(id(lattice), 0.0)

    screens: dict[int, float] = {}  # id of each lattice folded coarsely: its pilot z

    def screen(lattices: Sequence[Lattice]) -> None:
        """Fold coarsely those of ``lattices`` not yet screened, and sync them in one batch."""
        fresh = {id(one): one for one in lattices if id(one) not in screens}
        if fresh:
            syncs = coarse_syncs(np.concatenate([canvas.coarse(one) for one in fresh.values()]), ring)
            screens.update(zip(fresh, syncs, strict=True))

    def coarse(lattice: Lattice) -> float:
        """The coarse pilot z of ``lattice`` (once)."""
        screen([lattice])
        return screens[id(lattice)]

    def gated(lattices: Sequence[Lattice]) -> bool:
        """Fold in full each of ``lattices`` whose coarse pilot shows; whether one was detected."""
        screen([one for one in lattices if id(one) not in folded])
        for lattice in lattices:
            if id(lattice) not in folded and coarse(lattice) >= _COARSE_GATE:
                full(lattice, searched)
                if best.serial is not None:
                    return True
        return False

    # 2. The autocorrelation's lattices, then the fixed scales it did not name. A small image's
    # fixed scales are folded in full (there that costs little); every other lattice coarsely
    # and, where its pilot shows, in full. An autocorrelation lattice whose full pilot still
    # shows has its two neighbours tried in the same way.
    short = min(lumas[0].shape)
    small = short <= _SMALL_SIDE
    screen(FIXED_LATTICES)
    for lattice in FIXED_LATTICES:  # a plainly resized copy first: no autocorrelation needed
        if coarse(lattice) >= _EARLY_SYNC:
            full(lattice, plain)
            if best.serial is not None:
                return best
    auto = canvas.autocorrelation()
    found = auto_lattices(auto, FIXED_LATTICES)
    # The neighbours of the autocorrelation's own lattices (not of the fixed ones it named), made
    # once: folds are remembered by identity.
    refined = {
        id(lattice): scale_neighbours(lattice) for lattice in found if not any(lattice is one for one in FIXED_LATTICES)
    }
    screen(found)
    for lattice in [*found, *(one for one in FIXED_LATTICES if not any(one is other for other in found))]:
        is_fixed = any(lattice is one for one in FIXED_LATTICES)
        if not (small and is_fixed) and coarse(lattice) < _COARSE_GATE:
            continue
        sync = full(lattice, plain if is_fixed else searched)
        if best.serial is not None:
            return best
        if not is_fixed and sync >= _REFINE_GATE and gated(refined[id(lattice)]):
            return best
    # 3. The grid, screened coarsely (whole, and a large canvas's centre), those the
    # autocorrelation favours first, in batches. A lattice whose coarse pilot is plainly a mark's
    # is tried once its batch is screened; then the strongest of those whose coarse pilot shows,
    # then the neighbours of the strongest by either screen. Trying a lattice: fold it in full
    # and, where its full pilot still shows, its two neighbours too. Full folds are capped (an
    # image whose own structure makes many coarse pilots show, such as a smooth gradient, would
    # otherwise fold dozens): the cap only ever removes a hypothesis, never adds one.
    grid = list(grid_for(short))
    if auto is not None:
        table, shrink = auto
        grid.sort(key=lambda entry: -lattice_score(table, entry[0] / shrink))

    def tried(index: int) -> bool:
        """Try grid lattice ``index``: in full, then its neighbours; whether the mark was found."""
        lattice, neighbours = grid[index]
        if full(lattice, searched) >= _REFINE_GATE:
            return gated(neighbours)
        return best.serial is not None

    screened: list[tuple[float, float, int]] = []
    for start in range(0, len(grid), _SCREEN_BATCH):
        indices = range(start, min(start + _SCREEN_BATCH, len(grid)))
        spectra = [canvas.coarse(grid[index][0], centre=True) for index in indices]
        syncs = coarse_syncs(np.concatenate(spectra), ring)
        for index, spectrum in zip(indices, spectra, strict=True):
            mine, syncs = syncs[: len(spectrum)], syncs[len(spectrum) :]
            if mine[0] >= _EARLY_SYNC and tried(index):
                return best
            screened.append((mine[0], max(mine), index))
    for whole, _, index in sorted(screened, reverse=True):
        if whole < _COARSE_GATE:
            break
        if whole < _EARLY_SYNC and tried(index):
            return best
    for _, either, index in sorted(screened, key=lambda entry: -entry[1])[:_SCREENED]:
        if either >= _SCREEN_GATE and gated(grid[index][1]):
            return best
    # 4. Near misses: a word that passed the CRC under a lattice but fell short of the threshold
    # (an unmarked image's does once in 65,536) says the mark is close. Every grid or
    # autocorrelation lattice and neighbour within a grid step of it (all on the list the bound
    # counts) is folded in full, strongest coarse pilot first, within a budget of its own: a
    # lattice's z varies by a few tenths with its exact angle or stretch and how its tiles fall
    # on the working grid, so a copy the first lattices read just short can read under one
    # next to them.
    members = [one for lattice, neighbours in grid for one in (lattice, *neighbours)]
    members += [one for lattice in found if id(lattice) in refined for one in (lattice, *refined[id(lattice)])]
    reach = grid_reach(short)
    while near and budgets["near"] > 0:
        missed = max(near, key=lambda entry: entry[0])
        near.remove(missed)
        close = [one for one in members if id(one) not in folded and np.abs(one - missed[1]).max() <= reach]
        screen(close)
        for lattice in sorted(close, key=lambda one: -coarse(one)):
            full(lattice, searched, "near")
            if best.serial is not None:
                return best
    return best
