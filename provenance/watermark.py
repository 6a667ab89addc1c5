"""Invisible watermark carrying an asset serial that survives crops, resizes and recompression.

Design ("greenlight.tiled-ss.v2"), numpy and OpenCV only:

* **What is embedded.** A 128x128 px tile of 16x16 cells (chips of 8x8 px), repeated over
  the image from its top-left corner. A keyed permutation makes 70 cells *pilot* cells with
  keyed signs (the sync pattern); the other 186 carry the payload: the 40-bit serial, then
  a CRC-16 (CCITT-FALSE) over its five bytes, encoded with the K=7 rate-1/3 convolutional
  code (generators 133, 171, 165 octal; 6 tail bits) and sign-scrambled with a keyed
  pseudo-noise sequence. The tile is blurred a little (sigma 1.5 px, cyclically): no edges.
* **Where and how strongly.** The mark is a luma change. R, G and B move along the luma
  weights (0.67, 1.31, 0.26 per unit of luma), the smallest squared change for that luma
  change: 1.27 dB of PSNR better than moving all three alike, at a faint shift of hue
  in the mark's own pattern that the eye, far less sharp for colour than for light, does
  not see. It is scaled by a perceptual mask: local mean |Laplacian| (texture takes more, flat
  areas a floor), capped, and limited by the headroom to 0 and 255 (a flat white or black
  image takes nothing). One gain per image sets the mean squared change to PSNR 38.8 dB.
* **Adaptive strength.** The result is read back at scale 1 (with a margin of
  ``_EMBED_MARGIN`` over the threshold), for images of 512 px and up with 5% cut off each
  side, and, where brightness x1.2 would clip at least 10% of the pixels (light
  backgrounds), brightened so (with the same margin): clipped highlights lose their part of
  the mark. An image that fails is marked again more strongly, down the ladder
  ``_PSNR_LEVELS`` (38, 37, 35.5, 34, 33, 32 dB): busy textures, saturated colours and 256 px
  renditions of the tiny model's output need it. From the second level on, the luma change a
  channel cannot take (it would pass 0 or 255) spills to the other channels, so saturated
  colours carry the mark at a small hue shift. Only an image that reads back at no level
  (flat white or black, say) is refused (``WatermarkError``), never returned unmarked.
* **Informed embedding.** At scale 1 the embedder sees what the detector will see of the
  unmarked image in each cell (its fold, below) and subtracts part of that interference
  (``_cell_values``, "improved spread spectrum"): in busy images this, not the raw mark
  strength, is what makes 512x512 images readable. It helps less once the image is
  resampled or cropped (hence the crop check above), so each strength is tried cancelling
  70% of it, then 40%: less cancelled reads a little worse as the image lies and often
  better after a crop, which keeps busy textures at the higher PSNR.
* **Reading.** Luma is prefiltered: local mean subtracted, divided by the local residual
  energy, clipped, and weighted by the amplitude the mask would have given that spot (a
  matched filter). The tiling makes the result periodic: its autocorrelation peaks on the
  tile lattice (a crop only moves the origin). For each lattice hypothesis the luma is
  resampled so that a tile is 64x64 px (half the embedding scale; 8 px chips lose nothing)
  and *folded*: all tiles, partial ones included, are summed into one. A crop becomes a
  cyclic shift of that tile, found by FFT circular cross-correlation with the pilot over all
  64x64 shifts. The 4x4 cell sums at the best shifts are the soft chips: descrambled,
  soft-Viterbi-decoded, CRC-checked.
* **Geometry.** A mirror image or a quarter turn of the image is a mirror or a quarter turn
  of the folded tile (up to a cyclic shift): every fold is decided in the 8 orientations of
  the square (``ORIENTATIONS``), which costs one FFT of the fold and one batched inverse FFT
  per key (the codebook's cells are moved, not the fold: ``_oriented``). A change of aspect
  ratio or a small rotation turns the square lattice into a general 2x2 one:
  ``provenance.watermark_lattice`` finds its two basis vectors in the autocorrelation (peaks
  in a ring of lags, pairs that could span the lattice, a least-squares fit through every
  lattice point in reach), and the luma is resampled onto the canonical lattice before
  folding. The search, stopping at the first detection: scale 1 (unedited copies, mirrors
  and quarter turns); the autocorrelation's lattices and the usual resizes 0.5, 2/3 and 0.75
  as they are (the autocorrelation of a busy photograph can miss them; below 640 px these
  go first), the best autocorrelation lattice refined by +-0.4% and +-0.2% in scale; then a
  grid at scale 1 of rotations (+-0.8 to +-4.8 degrees) and of one axis stretched or
  squeezed (+-1.5% to +-10.5%), ordered by how strongly the autocorrelation peaks on each
  (the pilot, a matched filter, finds a busy 512 px photograph's lattice where its
  autocorrelation cannot), the strongest grid fold refined by a third and a sixth of a step.
  Lattices near scale 1 are folded from one whitened half-size canvas, warped.

Confidence and the false-positive bound. ``confidence`` is a z-score of all 256 cells of
the folded tile at the chosen hypothesis against the signs they would have if the decoded
word were embedded: ``z = sum_c s_c X_c / sqrt(sum_c X_c^2)``, where ``X_c`` is the cell's
sum and ``s_c`` the pilot sign or the scrambled re-encoded bit (at most sqrt(256) = 16).
A serial is reported only when the CRC matches *and* ``z >= Z_THRESHOLD`` (11.25). For an
unmarked image, i.e. one that does not depend on the key, take the key as random:

1. Fix one hypothesis (lattice, orientation, shift) and one CRC-valid word (2^40 of them,
   one per serial: the CRC cuts the 2^56 possible decoder outputs to 2^40). The ``X_c`` are
   then fixed numbers and the ``s_c`` independent random signs (pilot signs, and code bits
   XORed with the random scrambler), so by Hoeffding ``P(z >= t) <= exp(-t^2 / 2)`` for
   any image: no assumption about image statistics.
2. A read can fold under at most ``MAX_GEOMETRIES`` = 55 lattices (scale 1, the 3 fixed
   scales, 3 from the autocorrelation, 2 + 2 scale refinements, 40 grid lattices, 2 + 2
   grid refinements), each in 8 orientations with 64 x 64 = 4096 shifts: ``HYPOTHESES`` =
   1,802,240. A video read folds all its frames into the same hypotheses. The union bound
   over hypotheses and valid words:

       P(false positive) <= HYPOTHESES * 2^40 * exp(-Z_THRESHOLD^2 / 2)
                          = 1802240 * 1.10e12 * exp(-63.28) = 6.5e-10   (<= 1e-9)

   A read with k keys (``keys=``) runs over k times the hypotheses and needs
   ``z_threshold(k)`` (11.3 for 2 keys, 11.5 for 16), which keeps the bound.

``FALSE_POSITIVE_BOUND`` is that figure; the module refuses to import if the constants
break it, and a read never folds under more than ``MAX_GEOMETRIES`` lattices (a test counts
them). Unmarked images typically score 7-10 (the decoder picks the best-fitting word),
marked ones 12-16. A wrong key sees noise, so it reads nothing rather than another serial.
The embedder reads its mark back at ``Z_THRESHOLD`` with a margin of 0.5; the threshold was
11.0 (31 lattices, one orientation) before mirrors, quarter turns, aspect changes and
rotations were searched, and marks made then read as they did.

``watermark_payload`` (the value of the C2PA soft-binding assertion) is the 56-bit word,
serial then CRC-16, as "0"/"1" text; a detected reading's ``bits`` equals it.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache

import cv2
import numpy as np
import numpy.typing as npt
from PIL import Image

from provenance.errors import WatermarkError
from provenance.media import WATERMARK_MIN_SIDE
from provenance.watermark_lattice import lattice_candidates, lattice_score

ALGORITHM = "greenlight.tiled-ss.v2"  # name recorded in the C2PA soft-binding assertion
SERIAL_BITS = 40
SERIAL_MAX = (1 << SERIAL_BITS) - 1
CRC_BITS = 16
PAYLOAD_BITS = SERIAL_BITS + CRC_BITS  # the information word: serial, then CRC-16
MIN_SIDE = WATERMARK_MIN_SIDE  # two tiles each way: enough to fold and to see the period

TILE = 128  # tile side at embedding scale, px
CELL = 8  # chip side at embedding scale, px
GRID = TILE // CELL  # 16x16 cells per tile
_GENERATORS = (0o133, 0o171, 0o165)  # K=7, rate 1/3
_MEMORY = 6  # K - 1: tail bits that bring the encoder back to state 0
CODED_BITS = (PAYLOAD_BITS + _MEMORY) * len(_GENERATORS)  # 186
PILOT_CELLS = GRID * GRID - CODED_BITS  # 70

WORK_TILE = 64  # tile side at the detector's working scale, px
WORK_CELL = WORK_TILE // GRID  # 4
_AUTO_CANDIDATES = 3  # lattices taken from the autocorrelation
# Scales tried as they are, before the autocorrelation: the usual resizes (halving, 1536 -> 1024,
# 1024 -> 768), which the autocorrelation of a busy photograph can miss.
_FIXED_SCALES = (0.5, 2 / 3, 0.75)
_REFINE_STEPS = (0.004, 0.002)  # relative scale steps tried around the best of them
# Rotations and aspect-ratio changes tried last, each as it is at scale 1 (the autocorrelation
# finds them in most images, but not in a busy 512 px photograph, whose own texture outweighs
# the mark's peaks; the pilot, a matched filter, still sees it). A fold reads within about 0.4
# degrees and 0.7% of its lattice, so the steps are 0.8 degrees (to 5.2) and 1.5% (to 11%);
# the grid fold whose pilot shows most is then refined by a third and a sixth of a step.
_GRID_ROTATION_STEP = 0.8  # degrees
_GRID_ASPECT_STEP = 0.015  # of one axis
_GRID_ROTATIONS = tuple(sign * _GRID_ROTATION_STEP * step for step in range(1, 7) for sign in (1, -1))
_GRID_ASPECTS = tuple(1 + sign * _GRID_ASPECT_STEP * step for step in range(1, 8) for sign in (1, -1))
_GRID_REFINE = (1 / 3, 1 / 6)
# A small image (``_COARSE_SIDE``) folds few tiles and reads about twice as far from its
# lattice: there the grid takes about twice the steps.
_COARSE_ROTATIONS = tuple(sign * _GRID_ROTATION_STEP * step for step in (1, 3, 5, 6.5) for sign in (1, -1))
_COARSE_ASPECTS = tuple(1 + sign * _GRID_ASPECT_STEP * step for step in (1, 3, 5, 7) for sign in (1, -1))
# Lattices a read can fold under: scale 1; the fixed scales; the autocorrelation's candidates;
# 2 lattices per refinement step of the best of those; the grid; 2 per refinement step of the
# grid's best.
MAX_GEOMETRIES = (
    1
    + len(_FIXED_SCALES)
    + _AUTO_CANDIDATES
    + 2 * len(_REFINE_STEPS)
    + len(_GRID_ROTATIONS)
    + 2 * len(_GRID_ASPECTS)
    + 2 * len(_GRID_REFINE)
)  # 55
# Each fold is decided in its 8 orientations (a mirror or a quarter turn of the image is one of
# the folded tile, up to a cyclic shift): the dihedral group of the square.
ORIENTATIONS = 8
HYPOTHESES = MAX_GEOMETRIES * ORIENTATIONS * WORK_TILE * WORK_TILE  # 1,802,240 (lattice, orientation, shift)
Z_THRESHOLD = 11.25  # z-score of all 256 cells against the decoded word needed to report a serial
FALSE_POSITIVE_BOUND = HYPOTHESES * 2.0**SERIAL_BITS * math.exp(-(Z_THRESHOLD**2) / 2)
if FALSE_POSITIVE_BOUND > 1e-9:  # pragma: no cover - guards edits to the constants
    raise RuntimeError(f"watermark false-positive bound {FALSE_POSITIVE_BOUND:.2e} exceeds 1e-9")
MAX_KEYS = 16  # keys one read may try at once (each multiplies the hypotheses: ``z_threshold``)

DEFAULT_KEY = ALGORITHM
# PSNR levels (dB) tried in turn until the mark reads back at scale 1 with ``_EMBED_MARGIN`` to
# spare: 38.8 for almost every image (the goal is >= 38; along the luma weights that is the luma
# change equal-RGB marking made at 37.5), more only for busy or small images whose own texture
# drowns the mark in the detector's cells.
_PSNR_LEVELS = (38.8, 38.0, 37.0, 35.5, 34.0, 33.0, 32.0)
_EMBED_MARGIN = 0.5  # over Z_THRESHOLD, for the read-backs at scale 1 and brightened
_CROP_CHECK = 0.10  # share of each side cut off for the crop check (``_survives_crop``)
_BRIGHTEN = 1.2  # brightness factor of the highlight check (``_survives_brightening``)
_BRIGHTEN_MIN_SHARE = 0.10  # share of pixels that must clip for that check to run (below it: z lost <= 0.07)
# Shares of the host's interference that embedding cancels, tried in turn at each strength: the
# full share reads best as the image lies; the smaller one leaves less to come back when a crop
# moves the tile boundaries (busy textures then often pass the crop check at the same PSNR).
_ISS_CANCEL = (0.7, 0.4)
_ISS_MIN_SIGNAL = 0.5  # least share of the tile's amplitude kept for the signs
_MAX_BOOST = 1.6  # the tile blur and the ISS values may lower the energy; lift it back at most this much
_FLOOR = 0.35  # mask value of a flat area, relative to a mean textured one
_MASK_CAP = 3.0  # the mask's ceiling, relative to its floor-free mean
_SCALE_RANGE = (0.4, 2.0)  # scales (image px per embedding px) the detector looks for
_PRE_SIDE = 512  # the autocorrelation runs on luma shrunk to about this short side
_SHORTLIST = 3  # best pilot shifts decoded per fold
_DECODE_GATE = 4.5  # pilot z a shift needs to be decoded (unmarked images: max about 4.5)
_REFINE_GATE = 4.0  # pilot z an autocorrelation lattice needs to be refined in scale
_SMALL_SIDE = 640  # up to this short side (px) the fixed scales are tried before the autocorrelation
_COARSE_SIDE = 384  # up to this short side (px) the grid has twice the steps (``_GRID_COARSE``)
_NEAR_ONE = (0.85, 1.2)  # lattice scales folded from the whitened half-size canvas (no new prefilter)
_EARLY_SYNC = 6.0  # pilot z at which a grid fold is decoded at once (unmarked: about 1 fold in 30,000)
_CLIP = 3.0  # whitened values are clipped to +-this
_ENERGY_CELLS = 2.25  # local energy window, in chips
_NORM_FLOOR = 0.5  # added to the local residual energy (grey levels)

_LUMA_WEIGHTS = np.array([0.299, 0.587, 0.114], dtype=np.float32)  # BT.601, as cv2 and PIL compute luma
# The change of R, G and B that moves luma by 1 with the least squared change (so the least
# PSNR cost): along the luma weights. Per channel it costs ``_DIRECTION_POWER`` = 0.75 of
# moving all three by 1, i.e. 1.27 dB of PSNR for the same mark in the luma the detector reads.
_DIRECTION = _LUMA_WEIGHTS / float(_LUMA_WEIGHTS @ _LUMA_WEIGHTS)
_DIRECTION_POWER = float(np.mean(_DIRECTION**2))

FloatArray = npt.NDArray[np.float32]
RgbArray = npt.NDArray[np.uint8]


@dataclass(frozen=True)
class WatermarkReading:
    """What ``watermark_read`` found.

    ``serial`` is None unless the mark was detected: ``check_ok`` and ``confidence >=
    Z_THRESHOLD`` (11.25; more with several keys). ``confidence`` is the z-score of all 256 cells against the decoded
    word (at most 16; unmarked images score about 7-9.5, marked ones 12-16; the module
    docstring derives the false-positive bound). ``sync`` is the pilot's own z-score at the
    chosen shift (at most sqrt(70), about 8.4). ``bits`` is the decoded 56-bit word (serial
    then CRC) at the best hypothesis, equal to ``watermark_payload(serial)`` when detected.
    ``scale`` is image px per embedding px (1.0 as embedded, 0.5 after halving; the mean
    of the two axes after a change of aspect ratio), ``rotation`` in degrees counter-clockwise
    as seen (PIL's ``rotate``), applied after a horizontal mirror where ``mirrored``;
    ``offset`` where the image's top-left corner sits in the tile (x, y), in embedding px on a
    2 px grid: a crop of 26 px from the left gives x = 26 (of the turned tile where the image
    was mirrored or turned). ``key_index`` is the index of the key that matched among the
    keys read with (0 with one key), None unless detected. ``frames`` is how many frames were
    combined.
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


def watermark_payload(serial: int) -> str:
    """The 56 information bits ("0"/"1" text: serial, then CRC-16) that mark ``serial``.

    Record it as the value of the C2PA soft-binding assertion; a detected
    ``watermark_read(image).bits`` equals it.
    """
    _serial_check(serial)
    word = (serial << CRC_BITS) | _crc16(serial.to_bytes(SERIAL_BITS // 8, "big"))
    return format(word, f"0{PAYLOAD_BITS}b")


def watermark_embed(image: Image.Image, serial: int, *, key: str = DEFAULT_KEY) -> Image.Image:
    """Return a copy of the RGB ``image`` carrying ``serial`` invisibly.

    The mark is read back before returning (at scale 1, cropped, and brightened where the
    highlights would clip); where it does not read back it is embedded again more strongly
    (PSNR down to 32 dB; see the module docstring). An image that cannot carry it even then
    (flat white or black) raises WatermarkError rather than going out unmarked under a
    manifest that says it is watermarked. ``key`` selects the pilot and scrambler (tests
    use another one).
    """
    _serial_check(serial)
    _size_check(image)
    if image.mode != "RGB":
        raise WatermarkError(f"Watermarking needs an RGB image, got mode {image.mode!r}")
    host = _host_prepare(np.asarray(image, dtype=np.uint8))
    signs, codebook = _cell_signs(serial, key), _codebook(key)
    fallback: RgbArray | None = None
    attempts = [(level, psnr, cancel) for level, psnr in enumerate(_PSNR_LEVELS) for cancel in _ISS_CANCEL]
    for level, psnr, cancel in attempts:  # stronger only where the mark does not read back
        spill = level > 0  # the first level keeps every hue; later ones may move saturated ones
        amplitude = _amplitude(host, psnr, spill=spill)
        values = _cell_values(host, amplitude, signs, cancel=cancel)
        marked = _embed_rgb(host, amplitude, values, psnr=psnr, spill=spill)
        luma = cv2.cvtColor(marked, cv2.COLOR_RGB2GRAY).astype(np.float32)
        reading = _embed_read(luma, codebook)
        if reading.serial == serial:
            if (
                reading.confidence >= Z_THRESHOLD + _EMBED_MARGIN
                and _survives_crop(luma, serial, codebook)
                and (not host.clips_brighter or _survives_brightening(marked, serial, codebook))
            ):
                return Image.fromarray(marked)
            if fallback is None:
                fallback = marked
    if fallback is not None:
        return Image.fromarray(fallback)
    raise WatermarkError(
        f"Image {image.width}x{image.height} cannot carry the watermark for serial {serial}: marked at PSNR "
        f"{_PSNR_LEVELS[-1]} dB, it reads back as "
        f"{'no serial' if reading.serial is None else f'serial {reading.serial}'} with confidence "
        f"{reading.confidence:.1f} (needs {Z_THRESHOLD} and a matching CRC): too flat or too "
        "saturated to take it"
    )


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
    _size_check(image)
    return watermark_read_frames([image], key=key, keys=keys)


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
    for frame in frames[:1]:
        _size_check(frame)
    chosen = _keys_check(key, keys)
    reading = _search([_luma(frame) for frame in frames], chosen)
    return reading if len(frames) == 1 else WatermarkReading(**{**reading.__dict__, "frames": len(frames)})


def z_threshold(keys: int = 1) -> float:
    """The confidence a read with ``keys`` keys needs: ``Z_THRESHOLD`` for one, more for several.

    With k keys the union bound runs over k times ``HYPOTHESES``; the threshold is raised (to
    the next 0.05) so that it stays at or under 1e-9.
    """
    if isinstance(keys, bool) or not isinstance(keys, int) or not 1 <= keys <= MAX_KEYS:
        raise WatermarkError(f"Watermark key count must be 1 to {MAX_KEYS}, got {keys!r}")
    needed = math.sqrt(2 * math.log(keys * HYPOTHESES * 2.0**SERIAL_BITS / 1e-9))
    return max(Z_THRESHOLD, math.ceil(needed * 20) / 20)


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


def _search(lumas: Sequence[FloatArray], keys: Sequence[str]) -> WatermarkReading:
    """Fold under each lattice hypothesis in turn, sync each fold in its 8 orientations for
    every key, decode the promising shifts, and stop at the first detection."""
    threshold = z_threshold(len(keys))
    keyring = _keyring(tuple(keys))
    canvases = [_work_canvas(luma) for luma in lumas]

    def fold(lattice: npt.NDArray[np.float64]) -> FloatArray:
        parts = []
        for luma, canvas in zip(lumas, canvases, strict=True):
            if lattice is _IDENTITY and bool(np.all(canvas[1] == 0.5)):  # even sides: _fold's own canvas
                parts.append(_fold_plain(canvas[0]))
            elif lattice is not _IDENTITY and _NEAR_ONE[0] <= _lattice_scale(lattice) <= _NEAR_ONE[1]:
                parts.append(_fold_canvas(canvas, lattice))
            else:
                parts.append(_fold(luma, lattice))
        return np.sum(parts, axis=0, dtype=np.float32)

    def read_at(lattice: npt.NDArray[np.float64]) -> tuple[WatermarkReading, npt.NDArray[np.float64]]:
        return _decide(fold(lattice), keyring, lattice, threshold=threshold), lattice

    def rank(pair: tuple[WatermarkReading, npt.NDArray[np.float64]]) -> tuple[bool, float]:
        return _rank(pair[0])

    # 1. Scale 1 first: cheap, and what unresized copies need (mirrors and quarter turns included).
    best = read_at(_IDENTITY)
    if best[0].serial is not None:
        return best[0]
    # 2. Lattices from the autocorrelation (resizes, aspect changes, rotations) and the usual
    # resizes as they are (the autocorrelation of a busy photograph can miss them), then the
    # best autocorrelation lattice refined in scale if its pilot shows. A small image tries the
    # fixed resizes first (there they cost less than the autocorrelation); a larger one the
    # autocorrelation's lattices, a fixed resize in the place of one near it, then the others.
    small = min(lumas[0].shape) <= _SMALL_SIDE
    for factor in _FIXED_SCALES if small else ():
        best = max([best, read_at(_IDENTITY * factor)], key=rank)
        if best[0].serial is not None:
            return best[0]
    auto = _autocorrelation(lumas)
    fixed = [] if small else [_IDENTITY * factor for factor in _FIXED_SCALES]
    tried: list[tuple[WatermarkReading, npt.NDArray[np.float64]]] = []
    for lattice in _lattice_candidates(auto, fixed):
        pair = read_at(lattice)
        if any(lattice is one for one in fixed):
            fixed = [one for one in fixed if one is not lattice]
            best = max([best, pair], key=rank)
        else:
            tried.append(pair)
        if pair[0].serial is not None:
            return pair[0]
    for lattice in fixed:
        best = max([best, read_at(lattice)], key=rank)
        if best[0].serial is not None:
            return best[0]
    if tried and max(pair[0].sync for pair in tried) >= _REFINE_GATE:
        found = max(tried, key=rank)
        for step in _REFINE_STEPS:
            centre = found[1]
            found = max([found, *(read_at(centre * factor) for factor in (1 - step, 1 + step))], key=rank)
            if found[0].serial is not None:
                return found[0]
        best = max([best, found], key=rank)
    # 3. Small rotations and aspect-ratio changes at scale 1, those the autocorrelation favours
    # first. A fold whose pilot stands out is decoded at once; of the others, the strongest
    # few are decoded at the end.
    grid = _GRID_COARSE if min(lumas[0].shape) <= _COARSE_SIDE else _GRID
    if auto is not None:
        grid = sorted(grid, key=lambda lattice: -lattice_score(auto[0], lattice / auto[1]))
    pending: list[_Synced] = []
    for lattice in grid:
        synced = _Synced(fold(lattice), keyring, lattice)
        if synced.sync < _EARLY_SYNC:
            pending.append(synced)
            continue
        reading = synced.decode([entry for entry in synced.shortlist if entry[0] >= _DECODE_GATE], threshold)
        best = max([best, (reading, lattice)], key=rank)
        if reading.serial is not None:
            return reading
    ranked = sorted(pending, key=lambda one: -one.sync)
    for synced in ranked[:_SHORTLIST]:
        if synced.sync < _DECODE_GATE:
            break
        best = max([best, (synced.decode(synced.shortlist[:1], threshold), synced.lattice)], key=rank)
        if best[0].serial is not None:
            return best[0]
    # 4. The grid fold whose pilot shows most, refined to a third and a sixth of a grid step.
    if ranked and ranked[0].sync >= _REFINE_GATE:
        found = (ranked[0].decode(ranked[0].shortlist[:1], threshold), ranked[0].lattice)
        for fraction in _GRID_REFINE:
            centre = found[1]
            found = max([found, *(read_at(lattice) for lattice in _grid_neighbours(centre, fraction))], key=rank)
            if found[0].serial is not None:
                return found[0]
        best = max([best, found], key=rank)
    return best[0]


def _grid_neighbours(lattice: npt.NDArray[np.float64], fraction: float) -> list[npt.NDArray[np.float64]]:
    """The two lattices ``fraction`` of a grid step either side of a grid lattice: turned by
    that share of ``_GRID_ROTATION_STEP``, or its stretched axis by that share of ``_GRID_ASPECT_STEP``."""
    if lattice[0, 1] != 0.0:  # a rotation
        turn = math.radians(_GRID_ROTATION_STEP * fraction)
        return [_rotation(math.atan2(lattice[0, 1], lattice[0, 0]) + sign * turn) for sign in (-1, 1)]
    axis = 0 if lattice[0, 0] != TILE else 1
    neighbours = []
    for sign in (-1, 1):
        moved = lattice.copy()
        moved[axis, axis] *= 1 + sign * _GRID_ASPECT_STEP * fraction
        neighbours.append(moved)
    return neighbours


def _rotation(radians: float) -> npt.NDArray[np.float64]:
    """The tile lattice of an image turned counter-clockwise (as seen; y points down) by ``radians``."""
    cos, sin = math.cos(radians), math.sin(radians)
    return TILE * np.array([[cos, sin], [-sin, cos]])


def _lattice_scale(lattice: npt.NDArray[np.float64]) -> float:
    return float(np.sqrt(abs(np.linalg.det(lattice)))) / TILE


def _grid_lattices(rotations: Sequence[float], aspects: Sequence[float]) -> list[npt.NDArray[np.float64]]:
    """The lattices of step 3: each rotation (degrees), then each aspect factor on either axis,
    interleaved (one rotation, two aspects) in the order given."""
    turned = [_rotation(math.radians(degrees)) for degrees in rotations]
    stretched = [TILE * np.diag(pair) for factor in aspects for pair in ((factor, 1.0), (1.0, factor))]
    merged: list[npt.NDArray[np.float64]] = []
    for index in range(max(len(turned), -(-len(stretched) // 2))):
        merged.extend(turned[index : index + 1])
        merged.extend(stretched[2 * index : 2 * index + 2])
    return merged


# --- checks -------------------------------------------------------------------------------


def _serial_check(serial: int) -> None:
    if isinstance(serial, bool) or not isinstance(serial, int):
        raise WatermarkError(f"Watermark serial must be an int, got {serial!r}")
    if not 0 <= serial <= SERIAL_MAX:
        raise WatermarkError(f"Watermark serial {serial} is out of range (0 to {SERIAL_MAX})")


def _size_check(image: Image.Image) -> None:
    if image.width < MIN_SIDE or image.height < MIN_SIDE:
        raise WatermarkError(
            f"Image is {image.width}x{image.height}; the watermark needs at least {MIN_SIDE}x{MIN_SIDE}"
        )


def _luma(image: Image.Image) -> FloatArray:
    """Luma as float32 (BT.601 weights, as cv2 and PIL compute it)."""
    rgb = np.asarray(image if image.mode == "RGB" else image.convert("RGB"), dtype=np.uint8)
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32)


# --- payload coding -----------------------------------------------------------------------


def _crc16(data: bytes) -> int:
    """CRC-16/CCITT-FALSE: polynomial 0x1021, initial value 0xFFFF."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) & 0xFFFF if crc & 0x8000 else (crc << 1) & 0xFFFF
    return crc


def _parity(value: int) -> int:
    return bin(value).count("1") & 1


def _conv_encode(bits: Sequence[int]) -> list[int]:
    """K=7 rate-1/3 convolutional code; six zero tail bits end it in state 0."""
    coded = (_ENCODER @ np.asarray(bits, dtype=np.int64)) & 1
    return [int(bit) for bit in coded]


def _encoder_matrix() -> npt.NDArray[np.int64]:
    """The code as a (186, 56) binary matrix: output bit j is the parity of row j times the input."""
    matrix = np.zeros((CODED_BITS, PAYLOAD_BITS), dtype=np.int64)
    for step in range(PAYLOAD_BITS + _MEMORY):
        for branch, generator in enumerate(_GENERATORS):
            for tap in range(_MEMORY + 1):  # register bit ``tap`` holds the input from ``tap`` steps ago
                source = step - tap
                if generator >> tap & 1 and 0 <= source < PAYLOAD_BITS:
                    matrix[step * len(_GENERATORS) + branch, source] = 1
    return matrix


def _trellis() -> tuple[npt.NDArray[np.intp], npt.NDArray[np.float32]]:
    """Predecessors of each state (2x64) and the +-1 outputs of each branch (2, 64, 3)."""
    states = np.arange(64)
    preds = np.stack([states >> 1, (states >> 1) | 32])
    signs = np.empty((2, 64, len(_GENERATORS)), dtype=np.float32)
    for which in range(2):
        for state in range(64):
            register = (int(preds[which, state]) << 1) | (state & 1)
            signs[which, state] = [1 - 2 * _parity(register & g) for g in _GENERATORS]
    return preds, signs


_PREDS, _BRANCH_SIGNS = _trellis()
_ENCODER = _encoder_matrix()


def _viterbi(soft: npt.NDArray[np.float32]) -> list[int]:
    """Soft-decision Viterbi: ``soft`` holds +1-ish for a coded 0, -1-ish for a 1."""
    steps = soft.reshape(-1, len(_GENERATORS))
    metrics = np.einsum("tk,wsk->tws", steps, _BRANCH_SIGNS)  # (steps, 2, 64)
    path = np.full(64, -np.inf, dtype=np.float32)
    path[0] = 0.0
    choices = np.empty((len(steps), 64), dtype=bool)
    for t in range(len(steps)):
        via0 = path[_PREDS[0]] + metrics[t, 0]
        via1 = path[_PREDS[1]] + metrics[t, 1]
        choices[t] = via1 > via0
        path = np.maximum(via0, via1)
    state, bits = 0, []
    for t in range(len(steps) - 1, -1, -1):
        bits.append(state & 1)
        state = int(_PREDS[int(choices[t, state]), state])
    return bits[::-1][:PAYLOAD_BITS]


@dataclass(frozen=True)
class _Codebook:
    """Everything the key decides: which cells are pilots, their signs, the payload scrambler."""

    pilot_cells: npt.NDArray[np.intp]  # (70, 2) row, column in the 16x16 grid
    pilot_signs: npt.NDArray[np.float32]
    payload_cells: npt.NDArray[np.intp]  # (186, 2), in coded-bit order
    scrambler: npt.NDArray[np.float32]  # +-1 per coded bit
    pilot_spectrum: npt.NDArray[np.complex64]  # conj real FFT of the pilot pattern at working scale
    comb_spectrum: npt.NDArray[np.complex64]  # conj real FFT of the pilot cells' corners
    box_spectrum: npt.NDArray[np.complex64]  # conj real FFT of one working-scale cell


@lru_cache(maxsize=8)
def _codebook(key: str) -> _Codebook:
    seed = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big")
    rng = np.random.default_rng(seed)
    order = rng.permutation(GRID * GRID)
    cells = np.stack([order // GRID, order % GRID], axis=1)
    pilot_signs = rng.choice(np.array([-1.0, 1.0], dtype=np.float32), PILOT_CELLS)
    scrambler = rng.choice(np.array([-1.0, 1.0], dtype=np.float32), CODED_BITS)
    return _codebook_from(cells, pilot_signs, scrambler)


def _codebook_from(
    cells: npt.NDArray[np.intp], pilot_signs: npt.NDArray[np.float32], scrambler: npt.NDArray[np.float32]
) -> _Codebook:
    pilot = np.zeros((WORK_TILE, WORK_TILE), dtype=np.float32)
    comb = np.zeros_like(pilot)
    for (row, col), sign in zip(cells[:PILOT_CELLS], pilot_signs, strict=True):
        pilot[row * WORK_CELL : (row + 1) * WORK_CELL, col * WORK_CELL : (col + 1) * WORK_CELL] = sign
        comb[row * WORK_CELL, col * WORK_CELL] = 1.0
    box = np.zeros_like(pilot)
    box[:WORK_CELL, :WORK_CELL] = 1.0
    return _Codebook(
        pilot_cells=cells[:PILOT_CELLS],
        pilot_signs=pilot_signs,
        payload_cells=cells[PILOT_CELLS:],
        scrambler=scrambler,
        pilot_spectrum=np.conj(np.fft.rfft2(pilot)).astype(np.complex64),
        comb_spectrum=np.conj(np.fft.rfft2(comb)).astype(np.complex64),
        box_spectrum=np.conj(np.fft.rfft2(box)).astype(np.complex64),
    )


@lru_cache(maxsize=8)
def _oriented(key: str) -> tuple[_Codebook, ...]:
    """The key's codebook as seen in each of the 8 orientations of a fold (index as ``_orient``).

    A quarter turn or a mirror of the 64x64 fold maps 4 px cells onto cells, so deciding
    ``_orient(fold, o)`` with the codebook is deciding the fold itself with the codebook
    whose cells were moved back by that orientation (up to a cyclic shift, which the shift
    search covers): one FFT of the fold serves all eight.
    """
    base = _codebook(key)
    order = np.concatenate([base.pilot_cells, base.payload_cells])  # canonical cell of each code position
    index = np.arange(GRID * GRID).reshape(GRID, GRID)
    codebooks = []
    for orientation in range(ORIENTATIONS):
        # The turned fold's cell (r, c) is the fold's cell ``source[r, c]``.
        source = _orient(index.astype(np.float32), orientation).astype(np.intp).ravel()
        moved = np.stack(np.divmod(source[order[:, 0] * GRID + order[:, 1]], GRID), axis=1)
        codebooks.append(_codebook_from(moved, base.pilot_signs, base.scrambler))
    return tuple(codebooks)


@dataclass(frozen=True)
class _Keyring:
    """The codebooks one read syncs with (each key in each orientation, key-major), stacked."""

    codebooks: tuple[_Codebook, ...]
    orientations: int
    pilots: npt.NDArray[np.complex64]  # (codebooks, 64, 33)
    combs: npt.NDArray[np.complex64]

    @classmethod
    def of(cls, codebooks: Sequence[_Codebook], orientations: int) -> _Keyring:
        pilots = np.stack([codebook.pilot_spectrum for codebook in codebooks])
        combs = np.stack([codebook.comb_spectrum for codebook in codebooks])
        return cls(tuple(codebooks), orientations, pilots, combs)


@lru_cache(maxsize=8)
def _keyring(keys: tuple[str, ...]) -> _Keyring:
    """Every key of a read in all ``ORIENTATIONS`` orientations."""
    return _Keyring.of([codebook for key in keys for codebook in _oriented(key)], ORIENTATIONS)


@lru_cache(maxsize=64)
def _cell_signs(serial: int, key: str) -> FloatArray:
    """The 16x16 grid of +-1 cell signs for ``serial``: pilot cells and scrambled code bits."""
    codebook = _codebook(key)
    coded = np.array(_conv_encode([int(bit) for bit in watermark_payload(serial)]), dtype=np.float32)
    grid = np.zeros((GRID, GRID), dtype=np.float32)
    grid[codebook.pilot_cells[:, 0], codebook.pilot_cells[:, 1]] = codebook.pilot_signs
    grid[codebook.payload_cells[:, 0], codebook.payload_cells[:, 1]] = (1 - 2 * coded) * codebook.scrambler
    grid.setflags(write=False)
    return grid


def _tile_from_grid(grid: FloatArray, cell: int) -> FloatArray:
    """A tile of ``cell``-px chips with the grid's values, blurred cyclically (no hard edges)."""
    tile = np.kron(grid, np.ones((cell, cell), dtype=np.float32))
    padded = np.pad(tile, cell, mode="wrap")
    blurred = cv2.GaussianBlur(padded, (0, 0), 1.5 * cell / CELL)[cell:-cell, cell:-cell]
    return np.ascontiguousarray(blurred, dtype=np.float32)


# --- embedding ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Host:
    """What embedding needs to know about the unmarked image, computed once for every level."""

    rgb: RgbArray
    relative: FloatArray  # perceptual mask on a quarter-resolution grid, relative to its mean
    limit: FloatArray  # headroom to 0 and 255 on the same grid, of a luma change along ``_DIRECTION``
    luma_limit: FloatArray  # headroom of the luma alone, any channel moving (saturated colours)
    work: FloatArray  # luma at the detector's working scale (scale 1: half size)
    residual: FloatArray  # the detector's prefilter of ``work``
    norm: FloatArray
    clips_brighter: bool  # whether brightness x1.2 would clip a noticeable share of the pixels


def _survives_crop(luma: FloatArray, serial: int, codebook: _Codebook) -> bool:
    """Whether the marked image still reads with 5% cut off each side (images of 512 px and up).

    Informed embedding cancels the host's interference for the tiles as they lie; a crop
    moves every tile boundary and brings it back, so a busy image can read whole and not cropped.
    """
    height, width = luma.shape
    if min(height, width) < 2 * MIN_SIDE:
        return True
    dy, dx = round(height * _CROP_CHECK / 2), round(width * _CROP_CHECK / 2)
    cropped = np.ascontiguousarray(luma[dy : height - dy, dx : width - dx])
    return _embed_read(cropped, codebook).serial == serial


def _survives_brightening(marked: RgbArray, serial: int, codebook: _Codebook) -> bool:
    """Whether the marked image still reads, with ``_EMBED_MARGIN``, after brightness x1.2.

    Run only where that clips a noticeable share of the pixels (``_Host.clips_brighter``):
    clipped highlights lose their part of the mark, and informed embedding cancelled the
    interference of the image as it was, so a bright image (a light background) can fall
    short where a uniformly scaled one would not.
    """
    brighter = cv2.convertScaleAbs(marked, alpha=_BRIGHTEN)  # x1.2, rounded, saturated at 255
    luma = cv2.cvtColor(brighter, cv2.COLOR_RGB2GRAY).astype(np.float32)
    reading = _embed_read(luma, codebook)
    return reading.serial == serial and reading.confidence >= Z_THRESHOLD + _EMBED_MARGIN


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
    red, green, blue = cv2.split(rgb)
    brightest = cv2.max(cv2.max(red, green), blue)
    clips_brighter = float(np.mean(brightest > 255 / _BRIGHTEN)) >= _BRIGHTEN_MIN_SHARE
    # A luma change of 1 moves the channels by ``_DIRECTION``: green most, blue least.
    rooms = [
        cv2.min(c, 255 - c).astype(np.float32) * (1.0 / float(d))
        for c, d in zip((red, green, blue), _DIRECTION, strict=True)
    ]
    headroom = cv2.min(cv2.min(rooms[0], rooms[1]), rooms[2])
    headroom = cv2.erode(cv2.resize(headroom, small, interpolation=cv2.INTER_AREA), np.ones((3, 3), np.uint8))
    # Luma can move by up to sum(w_i * c_i) down and sum(w_i * (255 - c_i)) up: that is its own
    # value, and 255 minus it. Pure red, say, has none of the first headroom and plenty of this one.
    luma_room = cv2.min(luma, 255 - luma)
    luma_room = cv2.erode(cv2.resize(luma_room, small, interpolation=cv2.INTER_AREA), np.ones((3, 3), np.uint8))
    relative = np.minimum(_FLOOR + texture / (float(np.mean(texture)) + 1e-6), _MASK_CAP).astype(np.float32)
    work_size = (max(1, round(width * WORK_TILE / TILE)), max(1, round(height * WORK_TILE / TILE)))
    work = cv2.resize(luma, work_size, interpolation=cv2.INTER_AREA).astype(np.float32)
    residual, norm = _residual_and_norm(work)
    limit, luma_limit = headroom.astype(np.float32), luma_room.astype(np.float32) * 0.5
    return _Host(rgb, relative, limit, luma_limit, work, residual, norm, clips_brighter)


def _amplitude(host: _Host, psnr: float, *, spill: bool) -> FloatArray:
    """The mask times one gain for PSNR ``psnr``, within the headroom (quarter resolution);
    with ``spill``, the luma's own headroom (channels may move by different amounts)."""
    target_mse = 255.0**2 / 10 ** (psnr / 10) / _DIRECTION_POWER  # of the luma change
    limit = host.luma_limit if spill else host.limit
    amplitude: FloatArray = np.minimum(host.relative * _gain_for(host.relative, limit, target_mse), limit)
    return amplitude


def _embed_rgb(host: _Host, amplitude: FloatArray, values: FloatArray, *, psnr: float, spill: bool) -> RgbArray:
    """Add ``amplitude * tile(values)`` to R, G and B alike, scaled to PSNR ``psnr``.

    With ``spill``, the luma change a channel cannot take (it would pass 0 or 255) goes to
    the channels that can: the hue of saturated colours shifts a little, the mark stays.
    """
    height, width = host.rgb.shape[:2]
    target_mse = 255.0**2 / 10 ** (psnr / 10)
    full_amplitude = cv2.resize(amplitude, (width, height), interpolation=cv2.INTER_LINEAR)
    reps = (-(-height // TILE), -(-width // TILE))
    delta = full_amplitude * np.tile(_tile_from_grid(values, CELL), reps)[:height, :width]
    mse = float(np.mean(delta**2)) * _DIRECTION_POWER  # per channel, as PSNR counts it
    delta *= min(math.sqrt(target_mse / max(mse, 1e-12)), _MAX_BOOST)
    if not spill:  # rounded and saturated by OpenCV (4-5x faster than numpy here)
        marked = cv2.add(host.rgb, cv2.merge([delta * float(d) for d in _DIRECTION]), dtype=cv2.CV_8U)
        return np.asarray(marked, dtype=np.uint8)
    original = host.rgb.astype(np.float32)
    moved = np.clip(original + delta[:, :, None] * _DIRECTION, 0, 255)
    shortfall = delta - (moved - original) @ _LUMA_WEIGHTS
    room = np.where(shortfall[:, :, None] > 0, moved < 255, moved > 0)
    share = (room * _LUMA_WEIGHTS).sum(axis=2)
    moved += room * (shortfall / np.maximum(share, 0.1))[:, :, None]
    return np.clip(np.rint(moved), 0, 255).astype(np.uint8)


def _cell_values(host: _Host, amplitude: FloatArray, signs: FloatArray, *, cancel: float) -> FloatArray:
    """Per-cell tile values: the signs, minus part of the host's own projection (ISS).

    The detector sums each cell over all tiles; at scale 1 the unmarked image's sum there
    is known here. Subtracting ``cancel`` of it, in units of what a unit mark adds to
    that sum (linearised detector: the host's normaliser, no clipping), removes much of the
    image's interference at the cost of some of the energy; values are scaled to mean square
    1, keeping at least ``_ISS_MIN_SIGNAL`` of it for the signs. (Cancelling more than that
    looks better in the linear model but not to the real, clipping detector.)
    """
    weight = _detector_weight(host.norm)
    host_cells = _cell_sums(np.clip(host.residual / host.norm, -_CLIP, _CLIP) * weight)
    mean_size = _mean_size(WORK_CELL)
    shape = host.work.shape
    small = cv2.resize(amplitude, (shape[1], shape[0]))
    reps = (-(-shape[0] // WORK_TILE), -(-shape[1] // WORK_TILE))
    mark = small * np.tile(_tile_from_grid(signs, WORK_CELL), reps)[: shape[0], : shape[1]]
    response = _cell_sums((mark - cv2.blur(mark, (mean_size, mean_size))) / host.norm * weight) * signs
    unit = max(float(np.median(response)), 1e-9)
    interference = host_cells / unit
    spread = float(np.mean(interference**2))
    share = min(cancel, math.sqrt((1 - _ISS_MIN_SIGNAL**2) / max(spread, 1e-12)))
    along = float(np.mean(signs * interference))
    signal = share * along + math.sqrt(max(share**2 * along**2 - share**2 * spread + 1.0, 0.0))
    values: FloatArray = (signal * signs - share * interference).astype(np.float32)
    return values


def _mean_size(cell: float) -> int:
    return max(3, round(cell * 1.75) | 1)


def _residual_and_norm(luma: FloatArray, cell: float = WORK_CELL) -> tuple[FloatArray, FloatArray]:
    """The detector's prefilter: luma minus its local mean, and the local residual energy."""
    size = _mean_size(cell)
    residual: FloatArray = luma - cv2.blur(luma, (size, size))
    energy_size = max(5, round(cell * _ENERGY_CELLS) | 1)
    energy = cv2.blur(residual * residual, (energy_size, energy_size))
    norm: FloatArray = (np.sqrt(np.maximum(energy, 0.0)) + _NORM_FLOOR).astype(np.float32)
    return residual, norm


def _cell_sums(image: FloatArray) -> FloatArray:
    """The 16x16 cell sums of ``image`` folded at the working scale, at shift 0."""
    return _fold_plain(image).reshape(GRID, WORK_CELL, GRID, WORK_CELL).sum(axis=(1, 3))


def _gain_for(relative: FloatArray, limit: FloatArray, target_mse: float) -> float:
    """The gain g with mean(min(g * relative, limit)^2) = target_mse (bisection)."""
    low, high = 0.0, 64.0
    for _ in range(24):
        middle = (low + high) / 2
        if float(np.mean(np.minimum(relative * middle, limit) ** 2)) < target_mse:
            low = middle
        else:
            high = middle
    return low


# --- reading ------------------------------------------------------------------------------

_IDENTITY = np.array([[float(TILE), 0.0], [0.0, float(TILE)]])  # lattice vectors as columns (x; y)


def _whiten(luma: FloatArray, cell: float) -> FloatArray:
    """The detector's prefilter: a matched weighting of the high-passed luma.

    Subtract the local mean, divide by the local residual energy (clipped, so edges do not
    dominate), then weight by the amplitude the embedder's mask would have given this
    spot relative to its noise: busy texture is noisy but capped, flat areas quiet but
    floored. ``cell`` is the chip size in px at this image's scale; windows scale with it.
    """
    residual, norm = _residual_and_norm(luma, cell)
    return np.clip(residual / norm, -_CLIP, _CLIP) * _detector_weight(norm)


def _detector_weight(norm: FloatArray) -> FloatArray:
    level = float(np.mean(norm))
    weight: FloatArray = np.minimum(_FLOOR * level + norm, _MASK_CAP * level) / (norm * level)
    return weight


def _fold(luma: FloatArray, lattice: npt.NDArray[np.float64]) -> FloatArray:
    """Resample ``luma`` so that ``lattice`` becomes a 64x64 px tile, whiten, sum all tiles."""
    per_px = lattice / WORK_TILE  # image px per working px, as a 2x2 map
    shrink = max(1.0, float(np.sqrt(abs(np.linalg.det(per_px)))))
    height, width = luma.shape
    if shrink > 1.05:
        size = (max(1, round(width / shrink)), max(1, round(height / shrink)))
        luma = np.asarray(cv2.resize(luma, size, interpolation=cv2.INTER_AREA), dtype=np.float32)
        per_px = per_px * np.array([[size[0] / width], [size[1] / height]])
    canvas = luma if np.allclose(per_px, np.eye(2), atol=2e-4) else _warp(luma, per_px, cv2.BORDER_REPLICATE)
    return _fold_plain(_whiten(canvas, WORK_CELL))


def _work_canvas(luma: FloatArray) -> tuple[FloatArray, npt.NDArray[np.float64]]:
    """Luma halved and whitened (what an unresized image is folded from), with the map from
    image px to its px."""
    height, width = luma.shape
    size = (max(1, round(width / 2)), max(1, round(height / 2)))
    small = np.asarray(cv2.resize(luma, size, interpolation=cv2.INTER_AREA), dtype=np.float32)
    return _whiten(small, WORK_CELL), np.array([[size[0] / width], [size[1] / height]])


def _fold_canvas(canvas: tuple[FloatArray, npt.NDArray[np.float64]], lattice: npt.NDArray[np.float64]) -> FloatArray:
    """Fold a whitened ``_work_canvas`` under a lattice near scale 1 (a rotation or an aspect
    change): resampled, not whitened again; outside the image counts as 0."""
    white, to_canvas = canvas
    return _fold_plain(_warp(white, lattice / WORK_TILE * to_canvas, cv2.BORDER_CONSTANT))


def _warp(image: FloatArray, per_px: npt.NDArray[np.float64], border: int) -> FloatArray:
    """``image`` resampled so that ``per_px`` (image px per output px, 2x2) becomes the identity."""
    height, width = image.shape
    inverse = np.linalg.inv(per_px)
    corners = inverse @ np.array([[0, width, 0, width], [0, 0, height, height]], dtype=np.float64)
    low = corners.min(axis=1)
    extent = np.ceil(corners.max(axis=1) - low).astype(int)
    matrix = np.hstack([per_px, (per_px @ low)[:, None]])
    warped = cv2.warpAffine(
        image,
        matrix,
        (int(extent[0]), int(extent[1])),
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=border,
    )
    return np.asarray(warped, dtype=np.float32)


def _fold_plain(image: FloatArray) -> FloatArray:
    """Sum all 64x64 tiles of ``image`` into one; partial tiles at the edges count too."""
    rows, cols = -(-image.shape[0] // WORK_TILE), -(-image.shape[1] // WORK_TILE)
    padded = np.zeros((rows * WORK_TILE, cols * WORK_TILE), dtype=np.float32)
    padded[: image.shape[0], : image.shape[1]] = image
    folded: FloatArray = padded.reshape(rows, WORK_TILE, cols, WORK_TILE).sum(axis=(0, 2), dtype=np.float32)
    return folded


def _embed_read(luma: FloatArray, codebook: _Codebook) -> WatermarkReading:
    """The embedder's read-back: scale 1, as embedded (one orientation), at its own threshold."""
    return _decide(_fold(luma, _IDENTITY), _Keyring.of([codebook], 1), _IDENTITY, threshold=Z_THRESHOLD)


def _orient(folded: FloatArray, index: int) -> FloatArray:
    """Orientation ``index`` (0-7) of a folded tile: ``index % 4`` quarter turns, then a mirror from 4 on."""
    turned = np.rot90(folded, index % 4)
    return np.ascontiguousarray(turned[:, ::-1] if index >= 4 else turned)


def _decide(
    folded: FloatArray, keyring: _Keyring, lattice: npt.NDArray[np.float64], *, threshold: float
) -> WatermarkReading:
    """Sync on the pilot over all 4096 shifts of one fold in each orientation and for each
    key, decode the best few, keep the best.

    Only shifts whose pilot z reaches ``_DECODE_GATE`` are decoded (a mark that can reach
    the threshold has a pilot z well above it); if none does, the best shift is decoded
    anyway so that the reading reports its bits. Gating only removes detections, so the
    bound holds.
    """
    synced = _Synced(folded, keyring, lattice)
    chosen = [entry for entry in synced.shortlist if entry[0] >= _DECODE_GATE] or synced.shortlist[:1]
    return synced.decode(chosen, threshold)


class _Synced:
    """One fold's pilot sync: its cell sums, and its best shifts by pilot z over every
    orientation and key (``_oriented``: one FFT of the fold serves all eight orientations)."""

    def __init__(self, folded: FloatArray, keyring: _Keyring, lattice: npt.NDArray[np.float64]) -> None:
        shape = (WORK_TILE, WORK_TILE)
        spectrum = np.fft.rfft2(folded)
        self.cell_sums = np.fft.irfft2(spectrum * keyring.codebooks[0].box_spectrum, s=shape).astype(np.float32)
        squares = np.fft.rfft2(self.cell_sums**2)
        self.lattice = lattice
        self.keyring = keyring
        correlation = np.fft.irfft2(spectrum * keyring.pilots, s=shape)
        energy = np.fft.irfft2(squares * keyring.combs, s=shape)
        z = (correlation / np.sqrt(np.maximum(energy, 1e-12))).reshape(-1, WORK_TILE)
        # The best few of all shifts: they lie in the rows with the highest maxima.
        rows = np.argpartition(z.max(axis=1), -_SHORTLIST)[-_SHORTLIST:]
        within = z[rows].ravel()
        top = np.argpartition(within, -_SHORTLIST)[-_SHORTLIST:]
        flats = rows[top // WORK_TILE] * WORK_TILE + top % WORK_TILE
        self.shortlist = sorted(((float(within[t]), int(f)) for t, f in zip(top, flats, strict=True)), reverse=True)
        self.sync = self.shortlist[0][0]

    def decode(self, chosen: Sequence[tuple[float, int]], threshold: float) -> WatermarkReading:
        best: WatermarkReading | None = None
        for sync, flat in chosen:
            which, rest = divmod(flat, WORK_TILE * WORK_TILE)
            reading = _decode_at(
                self.cell_sums,
                self.keyring.codebooks[which],
                divmod(rest, WORK_TILE),
                self.lattice,
                sync=sync,
                orientation=which % self.keyring.orientations,
                key_index=which // self.keyring.orientations,
                threshold=threshold,
            )
            if best is None or _rank(reading) > _rank(best):
                best = reading
        assert best is not None
        return best


def _rank(reading: WatermarkReading) -> tuple[bool, float]:
    return reading.serial is not None, reading.confidence


def _decode_at(
    cell_sums: FloatArray,
    codebook: _Codebook,
    shift: tuple[int, int],
    lattice: npt.NDArray[np.float64],
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
    bits = _viterbi((soft / (np.sqrt(np.mean(soft**2)) + 1e-12)).astype(np.float32))
    word = int("".join(map(str, bits)), 2)
    serial, check = word >> CRC_BITS, word & ((1 << CRC_BITS) - 1)
    check_ok = _crc16(serial.to_bytes(SERIAL_BITS // 8, "big")) == check
    # Score: every cell against the sign it should have if ``word`` is what was embedded.
    coded = np.array(_conv_encode(bits), dtype=np.float32)
    pilot = cell_sums[
        (codebook.pilot_cells[:, 0] * WORK_CELL + dy) % WORK_TILE,
        (codebook.pilot_cells[:, 1] * WORK_CELL + dx) % WORK_TILE,
    ]
    agreement = float(pilot @ codebook.pilot_signs + soft @ (1 - 2 * coded))
    energy = float(pilot @ pilot + payload @ payload)
    z = agreement / math.sqrt(max(energy, 1e-12))
    detected = check_ok and z >= threshold
    scale = _lattice_scale(lattice)
    # The fold was turned by ``orientation % 4`` quarter turns (counter-clockwise as an array
    # is shown) to match: the image was turned the other way. The lattice's own angle, with
    # y pointing down, is clockwise as seen.
    mirrored = orientation >= 4
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
        scale=round(scale, 4),
        rotation=round(rotation, 2) + 0.0,
        offset=((WORK_TILE - dx) % WORK_TILE * step, (WORK_TILE - dy) % WORK_TILE * step),
        mirrored=mirrored,
        key_index=key_index if detected else None,
    )


def _autocorrelation(lumas: Sequence[FloatArray]) -> tuple[npt.NDArray[np.float64], float] | None:
    """The whitened luma's autocorrelation (summed over frames, normalised), on luma shrunk to
    about ``_PRE_SIDE`` px, with that shrink factor; None for a flat image."""
    height, width = lumas[0].shape
    shrink = max(1.0, min(height, width) / _PRE_SIDE)
    size = (round(width / shrink), round(height / shrink))
    power: npt.NDArray[np.float64] | None = None
    for luma in lumas:
        small: FloatArray = np.asarray(
            cv2.resize(luma, size, interpolation=cv2.INTER_AREA) if shrink > 1.0 else luma, dtype=np.float32
        )
        white = _whiten(small, CELL / shrink)
        spectrum = np.fft.rfft2(white)
        frame_power = spectrum.real**2 + spectrum.imag**2
        power = frame_power if power is None else power + frame_power
    assert power is not None
    auto: npt.NDArray[np.float64] = np.fft.irfft2(power, s=(size[1], size[0]))
    if auto[0, 0] <= 0:  # a flat image: nothing periodic to find
        return None
    return auto / auto[0, 0], shrink


def _lattice_candidates(
    found: tuple[npt.NDArray[np.float64], float] | None, fixed: Sequence[npt.NDArray[np.float64]]
) -> list[npt.NDArray[np.float64]]:
    """Up to three tile lattices (2x2, image px) from the autocorrelation
    (``provenance.watermark_lattice``), other than scale 1, best first; one within 1% of a
    ``fixed`` lattice is given as that very lattice (and does not count)."""
    if found is None:
        return []
    auto, shrink = found
    low, high = TILE * _SCALE_RANGE[0] / shrink, TILE * _SCALE_RANGE[1] / shrink
    candidates: list[npt.NDArray[np.float64]] = []
    own = 0
    for lattice in lattice_candidates(auto, low=low, high=high, count=_AUTO_CANDIDATES + 1 + len(fixed)):
        scaled = lattice * shrink
        if np.allclose(scaled, _IDENTITY, rtol=0.004, atol=0.5):
            continue
        near = [one for one in fixed if np.allclose(scaled, one, rtol=0.01, atol=1.0)]
        if near:
            if not any(near[0] is other for other in candidates):
                candidates.append(near[0])
        elif own < _AUTO_CANDIDATES:
            candidates.append(scaled)
            own += 1
    return candidates


_GRID = _grid_lattices(_GRID_ROTATIONS, _GRID_ASPECTS)
_GRID_COARSE = _grid_lattices(_COARSE_ROTATIONS, _COARSE_ASPECTS)
