"""The lattice hypotheses a read may fold under, how many there are, and the threshold that bounds
the false positives over all of them.

A resize scales the tile lattice, a change of aspect ratio scales one axis, a rotation turns
it; a mirror or a quarter turn is one of the folded tile's 8 orientations (no new lattice).
A read folds under, at most:

* scale 1 (unedited copies, mirrors, quarter turns);
* the usual resizes 0.5, 2/3 and 0.75 (halving, 1536 -> 1024, 1024 -> 768), which the
  autocorrelation of a busy photograph can miss;
* up to 3 lattices from the autocorrelation of the whitened luma
  (``provenance.watermark_lattice``): resizes, aspect changes, rotations, and their mixtures;
* a grid at scale 1: rotations of +-0.8 to +-4.8 degrees in 0.8 degree steps and one axis
  stretched or squeezed by +-1.5% to +-10.5% in 1.5% steps (a fold reads within about 0.4
  degrees and 0.7% of its lattice). The autocorrelation finds these in most images, but not
  in a busy photograph, whose own texture outweighs the mark's peaks; the pilot, a matched
  filter, still sees it.

Every lattice on that list depends on the image alone, never on the key (the autocorrelation
does not know it): which is what lets the union bound of ``provenance.watermark`` count them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import cv2
import numpy as np
import numpy.typing as npt

from provenance.errors import WatermarkError
from provenance.watermark_coding import CELL, ORIENTATIONS, SERIAL_BITS, TILE, WORK_TILE, FloatArray
from provenance.watermark_detection import IDENTITY, Lattice, whiten
from provenance.watermark_lattice import lattice_candidates

AUTO_CANDIDATES = 3  # lattices taken from the autocorrelation
FIXED_SCALES = (0.5, 2 / 3, 0.75)  # scales tried as they are (the usual resizes)
SCALE_RANGE = (0.4, 2.0)  # scales (image px per embedding px) the detector looks for
GRID_ROTATION_STEP = 0.8  # degrees
GRID_ASPECT_STEP = 0.015  # of one axis
_GRID_ROTATIONS = tuple(sign * GRID_ROTATION_STEP * step for step in range(1, 7) for sign in (1, -1))
_GRID_ASPECTS = tuple(1 + sign * GRID_ASPECT_STEP * step for step in range(1, 8) for sign in (1, -1))
# A small image (``COARSE_SIDE``) folds few tiles and reads about twice as far from its
# lattice: there the grid takes about twice the steps.
COARSE_SIDE = 384
_COARSE_ROTATIONS = tuple(sign * GRID_ROTATION_STEP * step for step in (1, 3, 5, 6.5) for sign in (1, -1))
_COARSE_ASPECTS = tuple(1 + sign * GRID_ASPECT_STEP * step for step in (1, 3, 5, 7) for sign in (1, -1))
_PRE_SIDE = 512  # the autocorrelation runs on luma shrunk to about this short side
_AUTO_REFINE = 0.004  # an autocorrelation lattice's neighbours, relative scale

Refinable = tuple[Lattice, tuple[Lattice, Lattice]]  # a lattice and the two tried around it

# Lattices a read can fold under, in two tiers. Plain: scale 1 and the fixed scales. Searched:
# the autocorrelation's candidates and the grid, each with its two refinement neighbours.
PLAIN_GEOMETRIES = 1 + len(FIXED_SCALES)  # 4
SEARCH_GEOMETRIES = 3 * (AUTO_CANDIDATES + len(_GRID_ROTATIONS) + 2 * len(_GRID_ASPECTS))  # 129
MAX_GEOMETRIES = PLAIN_GEOMETRIES + SEARCH_GEOMETRIES  # 133
HYPOTHESES = MAX_GEOMETRIES * ORIENTATIONS * WORK_TILE * WORK_TILE  # 4,358,144 (lattice, orientation, shift)
# z-score of all 256 cells against the decoded word needed to report a serial: under a plain
# lattice, and under a searched one. The union bound lets each tier have its own threshold;
# the plain tier is where almost every copy reads, the searched one holds almost every hypothesis.
Z_THRESHOLD = 11.1
SEARCH_Z_THRESHOLD = 11.35
MAX_KEYS = 16  # keys one read may try at once (each multiplies the hypotheses: ``z_thresholds``)


def false_positive_bound(plain: float = Z_THRESHOLD, searched: float = SEARCH_Z_THRESHOLD, keys: int = 1) -> float:
    """The union bound on a false detection in one read of an unmarked image (``provenance.watermark``):
    every hypothesis of each tier, times 2^40 serials, times exp(-t^2 / 2) at that tier's threshold."""
    shifts = ORIENTATIONS * WORK_TILE * WORK_TILE * 2.0**SERIAL_BITS * keys
    return shifts * (PLAIN_GEOMETRIES * math.exp(-(plain**2) / 2) + SEARCH_GEOMETRIES * math.exp(-(searched**2) / 2))


FALSE_POSITIVE_BOUND = false_positive_bound()
if FALSE_POSITIVE_BOUND > 1e-9:  # pragma: no cover - guards edits to the constants
    raise RuntimeError(f"watermark false-positive bound {FALSE_POSITIVE_BOUND:.2e} exceeds 1e-9")


def z_thresholds(keys: int = 1) -> tuple[float, float]:
    """The confidence a read with ``keys`` keys needs under a plain and under a searched lattice.

    With k keys the union bound runs over k times the hypotheses; each threshold t becomes
    sqrt(t^2 + 2 ln k) (which multiplies its term by 1 / k), rounded up to the next 0.05.
    """
    if isinstance(keys, bool) or not isinstance(keys, int) or not 1 <= keys <= MAX_KEYS:
        raise WatermarkError(f"Watermark key count must be 1 to {MAX_KEYS}, got {keys!r}")
    if keys == 1:
        return Z_THRESHOLD, SEARCH_Z_THRESHOLD
    plain, searched = (
        math.ceil(math.sqrt(t**2 + 2 * math.log(keys)) * 20) / 20 for t in (Z_THRESHOLD, SEARCH_Z_THRESHOLD)
    )
    return plain, searched


def z_threshold(keys: int = 1) -> float:
    """The confidence a read with ``keys`` keys needs under scale 1 (unedited copies, mirrors,
    quarter turns) and the fixed scales; searched lattices need ``z_thresholds(keys)[1]``."""
    return z_thresholds(keys)[0]


def rotation(radians: float) -> Lattice:
    """The tile lattice of an image turned counter-clockwise (as seen; y points down) by ``radians``."""
    cos, sin = math.cos(radians), math.sin(radians)
    return TILE * np.array([[cos, sin], [-sin, cos]])


def _grid_lattices(rotations: Sequence[float], aspects: Sequence[float], refine: float) -> tuple[Refinable, ...]:
    """Each rotation (degrees), then each aspect factor on either axis, interleaved (one
    rotation, two aspects) in the order given; each with its two neighbours ``refine`` grid
    steps either side (the refinement)."""
    step = GRID_ROTATION_STEP * refine
    turned: list[Refinable] = [
        (
            rotation(math.radians(degrees)),
            (rotation(math.radians(degrees - step)), rotation(math.radians(degrees + step))),
        )
        for degrees in rotations
    ]
    stretched: list[Refinable] = []
    for factor in aspects:
        for axis in (0, 1):
            lattice, neighbours = TILE * np.eye(2), []
            lattice[axis, axis] *= factor
            for sign in (-1, 1):
                neighbour = lattice.copy()
                neighbour[axis, axis] *= 1 + sign * GRID_ASPECT_STEP * refine
                neighbours.append(neighbour)
            stretched.append((lattice, (neighbours[0], neighbours[1])))
    merged: list[Refinable] = []
    for index in range(max(len(turned), -(-len(stretched) // 2))):
        merged.extend(turned[index : index + 1])
        merged.extend(stretched[2 * index : 2 * index + 2])
    return tuple(merged)


def scale_neighbours(lattice: Lattice) -> tuple[Lattice, Lattice]:
    """An autocorrelation lattice's refinement: scaled by ``_AUTO_REFINE`` either way."""
    return lattice * (1 - _AUTO_REFINE), lattice * (1 + _AUTO_REFINE)


GRID_LATTICES = _grid_lattices(_GRID_ROTATIONS, _GRID_ASPECTS, 1 / 3)
COARSE_GRID_LATTICES = _grid_lattices(_COARSE_ROTATIONS, _COARSE_ASPECTS, 2 / 3)  # twice the step
FIXED_LATTICES = tuple(IDENTITY * factor for factor in FIXED_SCALES)


def grid_for(short_side: int) -> tuple[Refinable, ...]:
    """The grid a read of an image with this short side (px) walks."""
    return COARSE_GRID_LATTICES if short_side <= COARSE_SIDE else GRID_LATTICES


def grid_reach(short_side: int) -> float:
    """One step of that grid, as the largest change (px) of a lattice entry, and a little more:
    how far from a lattice its grid neighbours lie."""
    step = max(math.radians(GRID_ROTATION_STEP), GRID_ASPECT_STEP) * (2 if short_side <= COARSE_SIDE else 1)
    return 1.05 * TILE * step


Autocorrelation = tuple[npt.NDArray[np.float64], float]  # normalised, and the shrink factor it was made at


def autocorrelation_shape(shape: tuple[int, ...]) -> tuple[tuple[int, int], float]:
    """The (width, height) the autocorrelation of an image of ``shape`` runs at, and the shrink."""
    height, width = shape
    shrink = max(1.0, min(height, width) / _PRE_SIDE)
    return (round(width / shrink), round(height / shrink)), shrink


def autocorrelation_white(luma: FloatArray) -> FloatArray:
    """One frame's whitened luma as the autocorrelation sees it: shrunk to about ``_PRE_SIDE``."""
    size, shrink = autocorrelation_shape(luma.shape)
    small = cv2.resize(luma, size, interpolation=cv2.INTER_AREA) if shrink > 1.0 else luma
    return whiten(np.asarray(small, dtype=np.float32), CELL / shrink)


def autocorrelation(whites: Sequence[FloatArray], shrink: float) -> Autocorrelation | None:
    """The autocorrelation of whitened frames (their power spectra summed, normalised); None
    for a flat image. OpenCV's transforms (packed real spectra): several times faster than
    numpy's at this size on one core."""
    power = np.zeros(whites[0].shape, dtype=np.float32)  # packed (CCS) real spectra, summed
    for white in whites:
        spectrum = cv2.dft(np.ascontiguousarray(white, dtype=np.float32))
        power += np.asarray(cv2.mulSpectrums(spectrum, spectrum, 0, conjB=True), dtype=np.float32)
    auto = np.asarray(cv2.idft(power, flags=cv2.DFT_REAL_OUTPUT | cv2.DFT_SCALE), dtype=np.float64)
    if auto[0, 0] <= 0:  # a flat image: nothing periodic to find
        return None
    return auto / auto[0, 0], shrink


def auto_lattices(found: Autocorrelation | None, fixed: Sequence[Lattice]) -> list[Lattice]:
    """Up to three tile lattices (2x2, image px) from the autocorrelation, other than scale 1,
    best first; one within 1% of a ``fixed`` lattice is given as that very lattice (and does
    not count)."""
    if found is None:
        return []
    auto, shrink = found
    low, high = TILE * SCALE_RANGE[0] / shrink, TILE * SCALE_RANGE[1] / shrink
    candidates: list[Lattice] = []
    own = 0
    for lattice in lattice_candidates(auto, low=low, high=high, count=AUTO_CANDIDATES + 1 + len(fixed)):
        scaled = lattice * shrink
        if np.allclose(scaled, IDENTITY, rtol=0.004, atol=0.5):
            continue
        near = [one for one in fixed if np.allclose(scaled, one, rtol=0.01, atol=1.0)]
        if near:
            if not any(near[0] is other for other in candidates):
                candidates.append(near[0])
        elif own < AUTO_CANDIDATES:
            candidates.append(scaled)
            own += 1
    return candidates
