"""The watermark tile's lattice, found in the autocorrelation of a whitened image.

The mark repeats one tile, so the autocorrelation of the detector's whitened luma peaks at
every point of the tile lattice: ``n1 * a + n2 * b`` for the two basis vectors ``a`` and
``b`` (image px). An unedited image has ``a = (128, 0)``, ``b = (0, 128)``; a resize scales
both, a change of aspect ratio scales one axis, a rotation turns both. This module finds
that basis as a general 2x2 matrix, without assuming a square lattice:

1. The strongest local maxima of the autocorrelation in a ring of lags (the sizes the
   detector looks for), in one half-plane (the autocorrelation is symmetric).
2. Pairs of them that could span the lattice (60-120 degrees apart, lengths within 35% of
   each other), scored by the peaks at ``a``, ``b``, ``a + b`` and ``a - b``.
3. Each pair refined by least squares over every lattice point within reach, each located
   to a fraction of a pixel (parabola through the peak): far points pin the basis down to
   about a thousandth, which the fold needs (an error adds up over every tile folded).
4. Written as the one of its eight equivalent bases (swap, signs) nearest the unedited
   lattice: a rotation of up to 45 degrees; quarter turns and mirrors are left to the
   detector, which tries the eight orientations of the folded tile anyway.

Pure numpy on an autocorrelation: the prefilter and the FFT are the caller's.
"""

from __future__ import annotations

import math
from functools import lru_cache

import cv2
import numpy as np
import numpy.typing as npt

Lattice = npt.NDArray[np.float64]  # 2x2, basis vectors as columns (x; y), image px

_PEAKS = 8  # local maxima considered as basis vectors
_MIN_COS = 0.5  # basis vectors at least 60 degrees apart
_MAX_RATIO = 1.35  # and lengths within this factor of each other
_WINDOW = 2  # half-size of the window a lattice point is looked for in (px)
_REACH = 6  # largest lattice coordinate used in the fit


def lattice_candidates(auto: npt.NDArray[np.float64], *, low: float, high: float, count: int) -> list[Lattice]:
    """Up to ``count`` lattices (best first) whose basis vectors are ``low``-``high`` px long.

    ``auto`` is a normalised circular autocorrelation (lag (0, 0) at index [0, 0]).
    """
    height, width = auto.shape
    reach = math.floor(min(high * 1.15, min(height, width) / 2 - _WINDOW - 2))
    if reach <= low:
        return []
    peaks = _ring_peaks(auto, low, min(high, reach - 1), reach)
    pairs: list[tuple[float, Lattice]] = []
    for i, first in enumerate(peaks):
        for second in peaks[i + 1 :]:
            lengths = float(np.hypot(*first)), float(np.hypot(*second))
            cos = abs(float(first @ second)) / (lengths[0] * lengths[1])
            if cos > _MIN_COS or max(lengths) > _MAX_RATIO * min(lengths):
                continue
            basis = np.stack([first, second], axis=1).astype(np.float64)
            pairs.append((lattice_score(auto, basis), basis))
    pairs.sort(key=lambda pair: -pair[0])
    found: list[Lattice] = []
    limit = min(height, width) / 2 - _WINDOW - 1
    for _, basis in pairs[: 2 * count]:
        rough = _canonical(basis.astype(np.float64))
        if rough is not None and any(np.allclose(rough, other, rtol=0.03, atol=3.0) for other in found):
            continue  # the fit would land on a lattice already found
        fitted = _canonical(_fit(auto, basis, limit))
        if fitted is None or any(np.allclose(fitted, other, rtol=0.01, atol=1.0) for other in found):
            continue
        found.append(fitted)
        if len(found) == count:
            break
    return found


def _ring_peaks(auto: npt.NDArray[np.float64], low: float, high: float, reach: int) -> list[npt.NDArray[np.int64]]:
    """The strongest local maxima at lags ``low``-``high`` long, in the half-plane y > 0 (or y = 0, x > 0)."""
    width = auto.shape[1]
    rows = auto[: reach + 1]  # dy = 0 .. reach (the caller keeps reach under half the height: no wrap)
    window = np.concatenate([rows[:, width - reach :], rows[:, : reach + 1]], axis=1).astype(np.float32)
    above = np.concatenate([auto[-1:, width - reach :], auto[-1:, : reach + 1]], axis=1).astype(np.float32)  # dy = -1
    padded = np.concatenate([above, window], axis=0)
    neighbours = cv2.dilate(padded, np.ones((3, 3), np.uint8), borderType=cv2.BORDER_REPLICATE)[1:]
    dy, dx, ring = _ring(reach, low, high)
    peak = ring & (window > 0) & (window >= neighbours)
    found_rows, found_cols = np.nonzero(peak)
    order = np.argsort(-window[found_rows, found_cols])[:_PEAKS]
    return [np.array([int(dx[found_rows[k], found_cols[k]]), int(dy[found_rows[k], found_cols[k]])]) for k in order]


@lru_cache(maxsize=16)  # one per image size and scale range
def _ring(
    reach: int, low: float, high: float
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.bool_]]:
    """The lags (dy, dx) of ``_ring_peaks``'s window and which of them it looks at."""
    dy, dx = np.meshgrid(np.arange(0, reach + 1), np.arange(-reach, reach + 1), indexing="ij")
    radius = np.hypot(dx, dy)
    ring = (radius >= low) & (radius <= high) & ((dy > 0) | (dx > 0))
    for array in (dy, dx, ring):
        array.setflags(write=False)
    return dy, dx, ring


def _value(auto: npt.NDArray[np.float64], point: npt.NDArray[np.float64]) -> float:
    height, width = auto.shape
    return float(auto[round(float(point[1])) % height, round(float(point[0])) % width])


def lattice_score(auto: npt.NDArray[np.float64], basis: Lattice) -> float:
    """How strongly ``auto`` peaks on the lattice ``basis`` (px of ``auto``): at a, b, a + b and a - b."""
    first, second = basis[:, 0], basis[:, 1]
    sides = _value(auto, first) + _value(auto, second)
    diagonals = _value(auto, first + second) + _value(auto, first - second)
    return sides + 0.5 * diagonals


def _fit(auto: npt.NDArray[np.float64], basis: Lattice, limit: float) -> Lattice:
    """Least-squares basis through the lattice points seen within ``limit`` px, nearer ones first.

    Each point is the autocorrelation's peak within ``_WINDOW`` px of where the current basis
    puts it, to a fraction of a px (a parabola through the peak each way), weighted by its
    height; a point whose window has no peak inside is left out.
    """
    height, width = auto.shape
    offsets = np.arange(-_WINDOW, _WINDOW + 1)
    span = 2 * _WINDOW + 1
    n1, n2 = np.meshgrid(np.arange(-_REACH, _REACH + 1), np.arange(0, _REACH + 1))
    keep = (n2 > 0) | (n1 > 0)
    every = np.stack([n1[keep], n2[keep]], axis=1).astype(np.float64)
    for reach in (1, 2, 4, _REACH):
        indices = every[np.abs(every).max(axis=1) <= reach]
        predicted = indices @ basis.T
        indices = indices[np.hypot(predicted[:, 0], predicted[:, 1]) <= limit]
        predicted = indices @ basis.T
        if len(indices) < 2:
            break
        centre = np.rint(predicted).astype(np.int64)
        rows = (centre[:, 1, None, None] + offsets[None, :, None]) % height
        cols = (centre[:, 0, None, None] + offsets[None, None, :]) % width
        windows = auto[rows, cols]  # (points, span, span)
        flat = windows.reshape(len(indices), -1).argmax(axis=1)
        i, j = np.divmod(flat, span)
        inside = (i > 0) & (i < span - 1) & (j > 0) & (j < span - 1)
        i, j = np.clip(i, 1, span - 2), np.clip(j, 1, span - 2)
        points = np.arange(len(indices))
        peak = windows[points, i, j]
        dy = _parabolas(windows[points, i - 1, j], peak, windows[points, i + 1, j])
        dx = _parabolas(windows[points, i, j - 1], peak, windows[points, i, j + 1])
        seen = inside & (peak > 0)
        if int(seen.sum()) < 2:
            break
        located = np.stack([centre[:, 0] + offsets[j] + dx, centre[:, 1] + offsets[i] + dy], axis=1)[seen]
        root = np.sqrt(peak[seen])[:, None]
        solution, _, rank, _ = np.linalg.lstsq(indices[seen] * root, located * root, rcond=None)
        if rank < 2:
            break
        basis = solution.T  # located = indices @ basis.T
    return basis


def _parabolas(
    left: npt.NDArray[np.float64], centre: npt.NDArray[np.float64], right: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """The vertex offset of a parabola through three samples, element-wise, within +-0.5."""
    denominator = left - 2 * centre + right
    safe = np.where(denominator < 0, denominator, -1.0)
    return np.where(denominator < 0, np.clip(0.5 * (left - right) / safe, -0.5, 0.5), 0.0)


def _canonical(basis: Lattice) -> Lattice | None:
    """The basis among the eight equivalent ones (swap, signs) nearest a positive multiple of the identity."""
    if abs(float(np.linalg.det(basis))) < 1e-6:
        return None
    best: Lattice | None = None
    best_distance = math.inf
    for columns in (basis, basis[:, ::-1]):
        for sign_a in (1.0, -1.0):
            for sign_b in (1.0, -1.0):
                candidate = columns * np.array([sign_a, sign_b])
                size = math.sqrt(abs(float(np.linalg.det(candidate))))
                distance = float(np.sum((candidate / size - np.eye(2)) ** 2))
                if distance < best_distance:
                    best, best_distance = candidate, distance
    return best
