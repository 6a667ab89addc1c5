"""A content check beside the watermark: a small perceptual descriptor of a picture.

A watermark says "marked by this installation with this id"; it does not say "this picture".
Whoever holds the key (or a published copy of another asset) could put an asset's mark on any
picture. So `verify` names an asset by its watermark only when the file's pixels also look like
the asset's master: each asset stores this descriptor at hand-over (``Asset.fingerprint``).

The descriptor ("dct-cos.v1") is the low-frequency DCT of the luma, taken over the whole
picture, over a centred crop of 90% of each side, over the four 90% crops at the corners and
over a centred 80% crop, each made the same way: the region shrunk to 64x64 (area averaging),
its 2-D DCT, the 10x10 lowest frequencies without the DC term (99 coefficients), scaled to
+-127 and kept as signed bytes. Low frequencies survive JPEG, resizing, blur and small
rotations; scaling them away makes brightness and contrast changes vanish; the crops let a file
cut by about 10% (centred or from a side) meet the master's matching crop; the file is compared
in each of its 8 orientations (quarter turns, mirrored or not), as the watermark reads it.

Two pictures match when the largest cosine similarity between any of the file's vectors
(whole and 90% centred crop, in each orientation) and any of the master's is at least
``MATCH_SIMILARITY``. Unrelated pictures score near 0 (``bench/fingerprint.py`` measures both
error rates over the watermark's attacks).

What it does not survive, like the watermark: a crop of much more than 10%, a large rotation,
heavy retouching, a picture re-photographed or re-drawn. A false reject then leaves the file
reported as carrying the mark without the asset's record, never as that asset.
"""

from __future__ import annotations

import base64

import cv2
import numpy as np
import numpy.typing as npt
from PIL import Image, ImageOps

VERSION = "dct-cos.v1"
SIDE = 64  # the region is shrunk to SIDE x SIDE before its DCT
LOW = 10  # the LOW x LOW lowest frequencies are kept, less the DC term
COEFFICIENTS = LOW * LOW - 1  # 99 per region
CROP = 0.9  # share of each side kept by the master's 90% crops (centred, and at each corner)
FILE_CROPS = (1.0, 0.9)  # the file's own regions (whole, centred crop), each in 8 orientations
MATCH_SIMILARITY = 0.8  # least cosine similarity for a match

Vector = npt.NDArray[np.float32]
# Each coefficient times its frequency: a picture's DCT amplitudes fall about as 1/frequency, so
# unweighted, the two or three lowest would decide alone (and every smooth gradient or centred
# product shot would look alike).
_FREQUENCY = np.hypot(*np.meshgrid(np.arange(LOW), np.arange(LOW), indexing="ij")).ravel()[1:]
_WEIGHTS = _FREQUENCY.astype(np.float32)


def image_fingerprint(image: Image.Image) -> str:
    """The master's descriptor, as stored on its asset: ``dct-cos.v1:<base64>``."""
    luma = _luma(image)
    height, width = luma.shape
    keep_h, keep_w = round(height * CROP), round(width * CROP)
    corners = [
        luma[top : top + keep_h, left : left + keep_w] for top in (0, height - keep_h) for left in (0, width - keep_w)
    ]
    regions = [luma, _crop(luma, CROP), *corners, _crop(luma, 0.8)]
    packed = np.concatenate([_quantised(_vector(region)) for region in regions])
    return VERSION + ":" + base64.b64encode(packed.tobytes()).decode("ascii")


def fingerprint_similarity(image: Image.Image, fingerprint: str) -> float | None:
    """The largest cosine similarity between ``image`` (whole and cropped, in each of the 8
    orientations: quarter turns, mirrored or not) and a stored descriptor; None when
    ``fingerprint`` is empty or not one this module wrote."""
    return probes_similarity(image_probes(image), fingerprint)


def image_probes(image: Image.Image) -> Vector:
    """The file's side of the comparison, one unit vector per row (compute once, compare with many)."""
    luma = _luma(image)
    views = [np.rot90(view, turns) for view in (luma, luma[:, ::-1]) for turns in range(4)]
    return np.stack(
        [_unit(_vector(_crop(np.ascontiguousarray(view), share))) for view in views for share in FILE_CROPS]
    )


def probes_similarity(probes: Vector, fingerprint: str) -> float | None:
    """``fingerprint_similarity`` for probes made by ``image_probes``."""
    stored = _parse(fingerprint)
    if stored is None:
        return None
    return float(np.max(probes @ stored.T))


def fingerprint_matches(image: Image.Image, fingerprint: str) -> bool | None:
    """Whether ``image`` looks like the picture ``fingerprint`` describes (None: nothing stored)."""
    similarity = fingerprint_similarity(image, fingerprint)
    return None if similarity is None else similarity >= MATCH_SIMILARITY


# --- Helpers -----------------------------------------------------------------


def _luma(image: Image.Image) -> npt.NDArray[np.float32]:
    grey = image if image.mode == "L" else ImageOps.grayscale(image.convert("RGB"))
    return np.asarray(grey, dtype=np.float32)


def _crop(luma: npt.NDArray[np.float32], share: float) -> npt.NDArray[np.float32]:
    if share >= 1.0:
        return luma
    height, width = luma.shape
    keep_h, keep_w = max(1, round(height * share)), max(1, round(width * share))
    top, left = (height - keep_h) // 2, (width - keep_w) // 2
    return luma[top : top + keep_h, left : left + keep_w]


def _vector(region: npt.NDArray[np.float32]) -> Vector:
    small = cv2.resize(region, (SIDE, SIDE), interpolation=cv2.INTER_AREA)
    transformed = cv2.dct(np.ascontiguousarray(small, dtype=np.float32))
    coefficients: Vector = np.asarray(transformed[:LOW, :LOW], dtype=np.float32).ravel()[1:]
    return coefficients * _WEIGHTS


def _quantised(vector: Vector) -> npt.NDArray[np.int8]:
    peak = float(np.max(np.abs(vector)))
    if peak == 0.0:  # a flat region: nothing to compare
        return np.zeros(COEFFICIENTS, dtype=np.int8)
    return np.round(vector / peak * 127).astype(np.int8)


def _unit(vector: Vector) -> Vector:
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm > 0 else vector


def _parse(fingerprint: str) -> Vector | None:
    """The stored unit vectors, one row per region; None for anything this module did not write."""
    version, _, body = fingerprint.partition(":")
    if version != VERSION or not body:
        return None
    try:
        raw = np.frombuffer(base64.b64decode(body, validate=True), dtype=np.int8)
    except ValueError:
        return None
    if raw.size == 0 or raw.size % COEFFICIENTS:
        return None
    rows = raw.reshape(-1, COEFFICIENTS).astype(np.float32)
    return np.stack([_unit(row) for row in rows])
