"""What the watermark's tile holds, and what its key decides: the payload word, its code, the codebooks.

The tile is 16x16 cells. A keyed permutation makes 70 of them *pilot* cells with keyed signs
(the sync pattern) and the other 186 carry the payload: the 40-bit serial, then a CRC-16
(CCITT-FALSE) over its five bytes, encoded with the K=7 rate-1/3 convolutional code
(generators 133, 171, 165 octal; 6 tail bits) and sign-scrambled with a keyed pseudo-noise
sequence. Everything the key decides is a ``Codebook``; a read with several keys in 8
orientations syncs with all their codebooks at once (``Keyring``).

Pure numpy: the embedder (``provenance.watermark_embedding``) and the detector
(``provenance.watermark_detection``) share it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np
import numpy.typing as npt

from provenance.errors import WatermarkError

ALGORITHM = "greenlight.tiled-ss.v2"  # name recorded in the C2PA soft-binding assertion
DEFAULT_KEY = ALGORITHM
SERIAL_BITS = 40
SERIAL_MAX = (1 << SERIAL_BITS) - 1
CRC_BITS = 16
PAYLOAD_BITS = SERIAL_BITS + CRC_BITS  # the information word: serial, then CRC-16

TILE = 128  # tile side at embedding scale, px
CELL = 8  # chip side at embedding scale, px
GRID = TILE // CELL  # 16x16 cells per tile
GENERATORS = (0o133, 0o171, 0o165)  # K=7, rate 1/3
MEMORY = 6  # K - 1: tail bits that bring the encoder back to state 0
CODED_BITS = (PAYLOAD_BITS + MEMORY) * len(GENERATORS)  # 186
PILOT_CELLS = GRID * GRID - CODED_BITS  # 70

WORK_TILE = 64  # tile side at the detector's working scale, px
WORK_CELL = WORK_TILE // GRID  # 4
# Each fold is decided in its 8 orientations (a mirror or a quarter turn of the image is one of
# the folded tile, up to a cyclic shift): the dihedral group of the square.
ORIENTATIONS = 8

FloatArray = npt.NDArray[np.float32]


def watermark_payload(serial: int) -> str:
    """The 56 information bits ("0"/"1" text: serial, then CRC-16) that mark ``serial``.

    Record it as the value of the C2PA soft-binding assertion; a detected
    ``watermark_read(image).bits`` equals it.
    """
    serial_check(serial)
    word = (serial << CRC_BITS) | crc16(serial.to_bytes(SERIAL_BITS // 8, "big"))
    return format(word, f"0{PAYLOAD_BITS}b")


def serial_check(serial: int) -> None:
    if isinstance(serial, bool) or not isinstance(serial, int):
        raise WatermarkError(f"Watermark serial must be an int, got {serial!r}")
    if not 0 <= serial <= SERIAL_MAX:
        raise WatermarkError(f"Watermark serial {serial} is out of range (0 to {SERIAL_MAX})")


# --- payload coding -----------------------------------------------------------------------


def crc16(data: bytes) -> int:
    """CRC-16/CCITT-FALSE: polynomial 0x1021, initial value 0xFFFF."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) & 0xFFFF if crc & 0x8000 else (crc << 1) & 0xFFFF
    return crc


def conv_encode(bits: Sequence[int] | npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """K=7 rate-1/3 convolutional code; six zero tail bits end it in state 0 (186 bits, 0/1)."""
    coded: npt.NDArray[np.int64] = (_ENCODER @ np.asarray(bits, dtype=np.int64)) & 1
    return coded


def _parity(value: int) -> int:
    return bin(value).count("1") & 1


def _encoder_matrix() -> npt.NDArray[np.int64]:
    """The code as a (186, 56) binary matrix: output bit j is the parity of row j times the input."""
    matrix = np.zeros((CODED_BITS, PAYLOAD_BITS), dtype=np.int64)
    for step in range(PAYLOAD_BITS + MEMORY):
        for branch, generator in enumerate(GENERATORS):
            for tap in range(MEMORY + 1):  # register bit ``tap`` holds the input from ``tap`` steps ago
                source = step - tap
                if generator >> tap & 1 and 0 <= source < PAYLOAD_BITS:
                    matrix[step * len(GENERATORS) + branch, source] = 1
    return matrix


def _trellis(block: int) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.float32]]:
    """The trellis ``block`` steps at a time: for each end state s (64) and each value h of the
    ``block`` state bits shifted out meanwhile (``2**block``), the predecessor state
    ``((h << 6) | s) >> block`` (shape (2**block, 64)), and the +-1 code outputs of that path,
    step by step (shape (3 * block, 2**block * 64)). Its input bits are the low ``block`` bits
    of s, oldest first; step j's register (7 bits) is ``((h << 6) | s) >> (block - 1 - j)``."""
    span = (np.arange(1 << block)[:, None] << MEMORY) | np.arange(1 << MEMORY)[None, :]
    preds = (span >> block).astype(np.intp)
    parity = np.array([_parity(value) for value in range(1 << (MEMORY + 1))])
    signs = np.empty((block * len(GENERATORS), span.size), dtype=np.float32)
    for step in range(block):
        register = (span >> (block - 1 - step)) & ((1 << (MEMORY + 1)) - 1)
        for branch, generator in enumerate(GENERATORS):
            signs[step * len(GENERATORS) + branch] = (1 - 2 * parity[register & generator]).ravel()
    return preds, signs


_ENCODER = _encoder_matrix()

# Four steps a block (16 paths into each state): 0.07 ms a decode against 0.18 ms one step at
# a time (numpy's cost is per call, and a block makes a quarter of the calls); the same bits.
_BLOCK = 4
_TRELLISES = {block: _trellis(block) for block in range(1, _BLOCK + 1)}
_STATES = np.arange(1 << MEMORY)


def viterbi(soft: FloatArray) -> npt.NDArray[np.int64]:
    """Soft-decision Viterbi: ``soft`` holds +1-ish for a coded 0, -1-ish for a 1; the 56 bits.

    The add-compare-select runs ``_BLOCK`` steps at a time (the first block takes what is left
    over): each state keeps the best of the ``2**_BLOCK`` paths into it, which is the best path
    a step at a time would keep (ties go to the lowest h, as they went to the lower predecessor)."""
    steps = len(soft) // len(GENERATORS)
    first = steps % _BLOCK
    path = np.full(1 << MEMORY, -np.inf, dtype=np.float32)
    path[0] = 0.0  # the encoder starts in state 0
    chosen: list[tuple[int, npt.NDArray[np.intp]]] = []
    width = len(GENERATORS)
    for block, part in ((first, soft[: first * width]), (_BLOCK, soft[first * width :])):
        if block == 0:
            continue
        preds, signs = _TRELLISES[block]
        count = len(part) // (block * width)
        metrics = (part.reshape(count, block * width) @ signs).reshape(count, *preds.shape)
        for index in range(count):
            candidates = path[preds]
            candidates += metrics[index]
            best = candidates.argmax(axis=0)
            path = candidates[best, _STATES]
            chosen.append((block, best))
    state, bits, position = 0, np.empty(steps, dtype=np.int64), steps  # the tail ends it in state 0
    for block, best in reversed(chosen):
        shifted = int(best[state])
        for step in range(block):
            position -= 1
            bits[position] = (state >> step) & 1
        state = ((shifted << MEMORY) | state) >> block
    return bits[:PAYLOAD_BITS]


_WEIGHTS = np.left_shift(1, np.arange(PAYLOAD_BITS - 1, -1, -1, dtype=np.int64))  # 2^55 ... 1


def bits_word(bits: npt.NDArray[np.int64]) -> int:
    """The integer whose 56 binary digits, most significant first, are ``bits``."""
    return int(bits @ _WEIGHTS)


# --- what the key decides -----------------------------------------------------------------


@dataclass(frozen=True)
class Codebook:
    """Everything the key decides: which cells are pilots, their signs, the payload scrambler."""

    pilot_cells: npt.NDArray[np.intp]  # (70, 2) row, column in the 16x16 grid
    pilot_signs: npt.NDArray[np.float32]
    payload_cells: npt.NDArray[np.intp]  # (186, 2), in coded-bit order
    scrambler: npt.NDArray[np.float32]  # +-1 per coded bit
    pilot_spectrum: npt.NDArray[np.complex64]  # conj real FFT of the pilot pattern at working scale
    comb_spectrum: npt.NDArray[np.complex64]  # conj real FFT of the pilot cells' corners


@lru_cache(maxsize=8)
def codebook(key: str) -> Codebook:
    seed = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big")
    rng = np.random.default_rng(seed)
    order = rng.permutation(GRID * GRID)
    cells = np.stack([order // GRID, order % GRID], axis=1)
    pilot_signs = rng.choice(np.array([-1.0, 1.0], dtype=np.float32), PILOT_CELLS)
    scrambler = rng.choice(np.array([-1.0, 1.0], dtype=np.float32), CODED_BITS)
    return _codebook_from(cells, pilot_signs, scrambler)


def _codebook_from(
    cells: npt.NDArray[np.intp], pilot_signs: npt.NDArray[np.float32], scrambler: npt.NDArray[np.float32]
) -> Codebook:
    pilot = np.zeros((WORK_TILE, WORK_TILE), dtype=np.float32)
    comb = np.zeros_like(pilot)
    for (row, col), sign in zip(cells[:PILOT_CELLS], pilot_signs, strict=True):
        pilot[row * WORK_CELL : (row + 1) * WORK_CELL, col * WORK_CELL : (col + 1) * WORK_CELL] = sign
        comb[row * WORK_CELL, col * WORK_CELL] = 1.0
    return Codebook(
        pilot_cells=cells[:PILOT_CELLS],
        pilot_signs=pilot_signs,
        payload_cells=cells[PILOT_CELLS:],
        scrambler=scrambler,
        pilot_spectrum=np.conj(np.fft.rfft2(pilot)).astype(np.complex64),
        comb_spectrum=np.conj(np.fft.rfft2(comb)).astype(np.complex64),
    )


def orient(folded: FloatArray, index: int) -> FloatArray:
    """Orientation ``index`` (0-7) of a folded tile: ``index % 4`` quarter turns, then a mirror from 4 on."""
    turned = np.rot90(folded, index % 4)
    return np.ascontiguousarray(turned[:, ::-1] if index >= 4 else turned)


@lru_cache(maxsize=8)
def _oriented(key: str) -> tuple[Codebook, ...]:
    """The key's codebook as seen in each of the 8 orientations of a fold (index as ``orient``).

    A quarter turn or a mirror of the 64x64 fold maps 4 px cells onto cells, so deciding
    ``orient(fold, o)`` with the codebook is deciding the fold itself with the codebook
    whose cells were moved back by that orientation (up to a cyclic shift, which the shift
    search covers): one FFT of the fold serves all eight.
    """
    base = codebook(key)
    order = np.concatenate([base.pilot_cells, base.payload_cells])  # canonical cell of each code position
    index = np.arange(GRID * GRID).reshape(GRID, GRID)
    codebooks = []
    for orientation in range(ORIENTATIONS):
        # The turned fold's cell (r, c) is the fold's cell ``source[r, c]``.
        source = orient(index.astype(np.float32), orientation).astype(np.intp).ravel()
        moved = np.stack(np.divmod(source[order[:, 0] * GRID + order[:, 1]], GRID), axis=1)
        codebooks.append(_codebook_from(moved, base.pilot_signs, base.scrambler))
    return tuple(codebooks)


@dataclass(frozen=True, eq=False)
class Keyring:
    """The codebooks one read syncs with (each key in each orientation, key-major), stacked.

    Compared and hashed by identity (``keyring`` and ``embed_keyring`` make each once), so that
    what is derived from one can be cached by it."""

    codebooks: tuple[Codebook, ...]
    orientations: int
    pilots: npt.NDArray[np.complex64]  # (codebooks, 64, 33)
    combs: npt.NDArray[np.complex64]

    @classmethod
    def of(cls, codebooks: Sequence[Codebook], orientations: int) -> Keyring:
        pilots = np.stack([one.pilot_spectrum for one in codebooks])
        combs = np.stack([one.comb_spectrum for one in codebooks])
        return cls(tuple(codebooks), orientations, pilots, combs)


@lru_cache(maxsize=8)
def keyring(keys: tuple[str, ...]) -> Keyring:
    """Every key of a read in all ``ORIENTATIONS`` orientations."""
    return Keyring.of([one for key in keys for one in _oriented(key)], ORIENTATIONS)


@lru_cache(maxsize=8)
def embed_keyring(key: str) -> Keyring:
    """The embedder's read-back: one key, as embedded (one orientation)."""
    return Keyring.of([codebook(key)], 1)


@lru_cache(maxsize=64)
def cell_signs(serial: int, key: str) -> FloatArray:
    """The 16x16 grid of +-1 cell signs for ``serial``: pilot cells and scrambled code bits."""
    book = codebook(key)
    coded = conv_encode([int(bit) for bit in watermark_payload(serial)]).astype(np.float32)
    grid = np.zeros((GRID, GRID), dtype=np.float32)
    grid[book.pilot_cells[:, 0], book.pilot_cells[:, 1]] = book.pilot_signs
    grid[book.payload_cells[:, 0], book.payload_cells[:, 1]] = (1 - 2 * coded) * book.scrambler
    grid.setflags(write=False)
    return grid


def tile_from_grid(grid: FloatArray, cell: int) -> FloatArray:
    """A tile of ``cell``-px chips with the grid's values, blurred cyclically (no hard edges).

    Repeated and wrapped by numpy and OpenCV rather than ``np.kron`` and ``np.pad``: the same
    floats in 0.04 ms against 0.08 ms (8 px chips), twice a marking attempt."""
    tile = np.repeat(np.repeat(grid, cell, axis=0), cell, axis=1)
    padded = cv2.copyMakeBorder(tile, cell, cell, cell, cell, cv2.BORDER_WRAP)
    blurred = cv2.GaussianBlur(padded, (0, 0), 1.5 * cell / CELL)[cell:-cell, cell:-cell]
    return np.ascontiguousarray(blurred, dtype=np.float32)
