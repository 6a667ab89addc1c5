"""A fast, standard PNG writer for masters: numpy row filters and ISA-L deflate.

A master is a lossless PNG of 8-bit RGB (or grey, or RGBA) pixels. Pillow writes it through zlib,
whose cost was the largest single part of post-processing. Measured on this machine (one core,
median of five synthetic product shots, file size in brackets):

============================  =================  ==================
encoder                       512 x 512          1024 x 1024
============================  =================  ==================
Pillow, zlib level 6          42.2 ms (446 KB)   175.9 ms (1761 KB)
Pillow, zlib level 1          23.9 ms (504 KB)    97.5 ms (1996 KB)
ISA-L level 0, Up filter       1.9 ms (806 KB)     9.6 ms (3194 KB)
ISA-L level 1, Up filter       1.9 ms (462 KB)     7.8 ms (1810 KB)
ISA-L level 1, Sub filter      1.9 ms (463 KB)    12.8 ms (1818 KB)
ISA-L level 1, no filter       1.9 ms (633 KB)    12.3 ms (2451 KB)
ISA-L level 2, Up filter       2.3 ms (471 KB)    15.2 ms (1846 KB)
============================  =================  ==================

ISA-L level 1 with the Up filter on every row wins: about 20 times faster than zlib level 6 for a
file 3% larger, and the Up filter is one vectorised subtraction (Paeth, Pillow's adaptive choice,
costs more than the whole deflate). The result is an ordinary PNG (signature, IHDR, one IDAT, IEND,
CRCs), so Pillow, browsers and c2pa read and sign it as any other (tests/provenance/test_png.py
checks the pixels come back bit for bit, and that it signs and reads back Trusted).
"""

from __future__ import annotations

import struct

import numpy as np
import numpy.typing as npt
from isal import isal_zlib
from PIL import Image

from provenance.errors import MediaError

SIGNATURE = b"\x89PNG\r\n\x1a\n"
# PNG colour type by Pillow mode (8 bits a sample): grey, RGB, RGBA.
COLOUR_TYPES = {"L": 0, "RGB": 2, "RGBA": 6}
DEFLATE_LEVEL = 1  # ISA-L's levels are 0-3; 1 measured best above
_FILTER_UP = 2  # PNG filter type: each byte minus the byte above it


# Colour type by the number of samples a pixel of an array has (a 2-d array is grey).
_ARRAY_COLOUR_TYPES = {1: 0, 3: 2, 4: 6}


def png_encode(image: Image.Image | npt.NDArray[np.uint8]) -> bytes:
    """``image`` (mode L, RGB or RGBA; or its pixels as an array of bytes, height x width, or
    height x width x 3 or 4) as a standard 8-bit PNG, every row Up-filtered and the whole
    deflated by ISA-L at level 1; decodes to exactly the same pixels. An array is written as it
    is (a marked master's pixels: no copy of them through Pillow, 1 ms at 1024 px)."""
    if isinstance(image, Image.Image):
        colour_type = COLOUR_TYPES.get(image.mode)
        if colour_type is None:
            raise MediaError(
                f"png_encode takes an image of mode {', '.join(COLOUR_TYPES)}, not {image.mode!r}",
                field="mode",
                value=image.mode,
            )
        pixels = np.asarray(image, dtype=np.uint8)
    else:
        pixels = image
        samples = 1 if pixels.ndim == 2 else (pixels.shape[2] if pixels.ndim == 3 else 0)
        colour_type = _ARRAY_COLOUR_TYPES.get(samples, -1)
        if pixels.dtype != np.uint8 or colour_type < 0 or 0 in pixels.shape:
            raise MediaError(
                f"png_encode takes pixels as bytes, height x width (x 3 or 4), not {pixels.dtype} of shape "
                f"{pixels.shape}",
                field="pixels",
                value=str(pixels.shape),
            )
    height, width = pixels.shape[:2]
    rows = pixels.reshape(height, -1)
    filtered = np.empty((height, rows.shape[1] + 1), dtype=np.uint8)
    filtered[:, 0] = _FILTER_UP
    filtered[0, 1:] = rows[0]  # the row above the first is zeros
    np.subtract(rows[1:], rows[:-1], out=filtered[1:, 1:])  # modulo 256, as the filter is defined
    header = struct.pack(">IIBBBBB", width, height, 8, colour_type, 0, 0, 0)
    return b"".join(
        (
            SIGNATURE,
            _chunk(b"IHDR", header),
            _chunk(b"IDAT", isal_zlib.compress(filtered, DEFLATE_LEVEL)),
            _chunk(b"IEND", b""),
        )
    )


def _chunk(kind: bytes, data: bytes) -> bytes:
    """One PNG chunk: length, type, data, and the CRC-32 of type and data (ISA-L's CRC-32, the
    same polynomial as zlib's: 0.26 ms for a 1024 px master's IDAT against 0.89 ms)."""
    crc = isal_zlib.crc32(data, isal_zlib.crc32(kind))
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)
