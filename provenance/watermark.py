"""Invisible watermark carrying an asset serial that survives crops, resizes and recompression,
mirrors, quarter turns, aspect changes and small rotations: the public face of its modules.

Design ("greenlight.tiled-ss.v2"), numpy and OpenCV only. Callers import from here; the work is
done by one module per job:

* ``provenance.watermark_coding``: what the tile holds. A 128x128 px tile of 16x16 cells
  (chips of 8x8 px), repeated over the image from its top-left corner. A keyed permutation makes
  70 cells *pilot* cells with keyed signs (the sync pattern); the other 186 carry the payload:
  the 40-bit serial, then a CRC-16 over its five bytes, under a K=7 rate-1/3 convolutional code,
  sign-scrambled with a keyed pseudo-noise sequence. ``watermark_payload`` (the value of the
  C2PA soft-binding assertion) is the 56-bit word, serial then CRC, as "0"/"1" text.
* ``provenance.watermark_embedding``: where and how strongly (a luma change along the luma
  weights, scaled by a perceptual mask, PSNR 38.8 dB for almost every image), informed
  embedding, and the read-backs that raise the strength for the rare image that needs it.
* ``provenance.watermark_detection``: one lattice hypothesis read. The luma is whitened,
  resampled so that a tile is 64x64 px and *folded* (all tiles summed into one); a crop is a
  cyclic shift of that tile, found by FFT correlation with the pilot over all 64x64 shifts, in
  the 8 orientations of the square (a mirror or a quarter turn of the image is one of the
  folded tile); the cell sums at the best shifts are Viterbi-decoded, CRC-checked and scored.
* ``provenance.watermark_geometry``: the lattices a read may fold under (scale 1, the usual
  resizes, lattices fitted to the autocorrelation by ``provenance.watermark_lattice``, a grid of
  small rotations and aspect changes, each searched one with two refinement neighbours), their
  count, the thresholds and the bound below.
* ``provenance.watermark_search``: the order and the cost. Scale 1 in full; every other lattice
  first as a *coarse* fold (a quarter of the resampling, the pilot z within a few percent of the
  full fold's), and in full only where its pilot shows. An unmarked image, which walks the whole
  list, reads in a few times less than when every lattice was folded in full.

Confidence and the false-positive bound. ``confidence`` is a z-score of all 256 cells of the
folded tile at the chosen hypothesis against the signs they would have if the decoded word were
embedded: ``z = sum_c s_c X_c / sqrt(sum_c X_c^2)``, where ``X_c`` is the cell's sum and ``s_c``
the pilot sign or the scrambled re-encoded bit (at most sqrt(256) = 16). A serial is reported
only when the CRC matches *and* z reaches the threshold of the hypothesis's tier. For an
unmarked image, i.e. one that does not depend on the key, take the key as random:

1. Fix one hypothesis (lattice, orientation, shift) and one CRC-valid word (2^40 of them, one
   per serial). The ``X_c`` are then fixed numbers and the ``s_c`` independent random signs
   (pilot signs, and code bits XORed with the random scrambler), so by Hoeffding
   ``P(z >= t) <= exp(-t^2 / 2)`` for any image: no assumption about image statistics.
2. The lattices a read can decide under are a list fixed by the image alone (the fixed ones,
   and those fitted to the autocorrelation, which does not know the key): ``PLAIN_GEOMETRIES``
   = 4 (scale 1 and the resizes 0.5, 2/3, 0.75) and ``SEARCH_GEOMETRIES`` = 129 (3
   autocorrelation lattices and 40 grid lattices, each with its two neighbours). The key,
   through the pilot and the decoded word, only decides which listed lattices are folded in
   full and decoded (and around which the neighbours, or after a near miss the lattices a grid
   step away, are tried): that removes detections, never adds a hypothesis.
   Each lattice is decided in 8 orientations with 64 x 64 = 4096 shifts: ``HYPOTHESES`` =
   133 x 32768 = 4,358,144. A video read folds all its frames into the same hypotheses.
3. The union bound, each tier at its own threshold (``Z_THRESHOLD`` = 11.1 under the plain
   lattices, where almost every copy reads; ``SEARCH_Z_THRESHOLD`` = 11.35 under the searched
   ones, which hold almost every hypothesis)::

       P(false positive) <= 32768 * 2^40 * (4 * exp(-11.1^2 / 2) + 129 * exp(-11.35^2 / 2))
                          = 3.60e16 * (7.04e-27 + 1.37e-26) = 7.5e-10   (<= 1e-9)

   A read with k keys (``keys=``) runs over k times the hypotheses and needs
   ``z_thresholds(k)`` (each threshold t raised to sqrt(t^2 + 2 ln k)), which keeps the bound.

``FALSE_POSITIVE_BOUND`` is that figure; the module refuses to import if the constants break
it. Unmarked images typically score 7-10 (the decoder picks the best-fitting word), marked ones
12-16. A wrong key sees noise, so it reads nothing rather than another serial. The embedder
reads its mark back at scale 1 to a confidence of 11.75 (0.4 over the searched tier's threshold,
the target marks have always been made to), so marks made before read as they did.
"""

from __future__ import annotations

from provenance.watermark_coding import (
    ALGORITHM,
    CELL,
    CODED_BITS,
    CRC_BITS,
    DEFAULT_KEY,
    GRID,
    ORIENTATIONS,
    PAYLOAD_BITS,
    PILOT_CELLS,
    SERIAL_BITS,
    SERIAL_MAX,
    TILE,
    WORK_CELL,
    WORK_TILE,
    watermark_payload,
)
from provenance.watermark_detection import MIN_SIDE, WatermarkReading
from provenance.watermark_embedding import (
    RgbArray,
    rgb_pixels,
    watermark_embed,
    watermark_embed_encoded,
    watermark_embed_pixels,
)
from provenance.watermark_geometry import (
    FALSE_POSITIVE_BOUND,
    HYPOTHESES,
    MAX_GEOMETRIES,
    MAX_KEYS,
    PLAIN_GEOMETRIES,
    SEARCH_GEOMETRIES,
    SEARCH_Z_THRESHOLD,
    Z_THRESHOLD,
    false_positive_bound,
    z_threshold,
    z_thresholds,
)
from provenance.watermark_search import watermark_confirms, watermark_read, watermark_read_frames

__all__ = [
    "ALGORITHM",
    "CELL",
    "CODED_BITS",
    "CRC_BITS",
    "DEFAULT_KEY",
    "FALSE_POSITIVE_BOUND",
    "GRID",
    "HYPOTHESES",
    "MAX_GEOMETRIES",
    "MAX_KEYS",
    "MIN_SIDE",
    "ORIENTATIONS",
    "PAYLOAD_BITS",
    "PILOT_CELLS",
    "PLAIN_GEOMETRIES",
    "SEARCH_GEOMETRIES",
    "SEARCH_Z_THRESHOLD",
    "SERIAL_BITS",
    "SERIAL_MAX",
    "TILE",
    "WORK_CELL",
    "WORK_TILE",
    "Z_THRESHOLD",
    "RgbArray",
    "WatermarkReading",
    "false_positive_bound",
    "rgb_pixels",
    "watermark_confirms",
    "watermark_embed",
    "watermark_embed_encoded",
    "watermark_embed_pixels",
    "watermark_payload",
    "watermark_read",
    "watermark_read_frames",
    "z_threshold",
    "z_thresholds",
]
