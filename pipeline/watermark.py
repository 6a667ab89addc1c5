"""Invisible watermark carrying an asset serial, built on imwatermark's dwtDctSvd.

Payload: 48 bits, most significant first: the 40-bit serial, then a CRC-8
(polynomial 0x07) over the serial's five big-endian bytes. The word is XORed
with a fixed mask before embedding, because flat or saturated images decode
to constant bit patterns (all zeros, all ones) and without the mask those
would read as serial 0 with a valid check.

Embedding uses imwatermark's block coder (``EmbedDwtDctSvd.encode_frame``:
U channel, Haar DWT, 4x4 blocks, DCT, SVD, scale 36) on a U channel computed
here in floating point, and changes only U in the output (B and G move, R,
Y and V stay). imwatermark 0.2.0's own ``encode`` passes the detail bands to
``idwt2`` as (vertical, horizontal) instead of (horizontal, vertical) and
stores the result through a uint8 cast: on textured images it changed pixels
by up to 255 levels (mean 18 on noise), where this module changes them by at
most about 14 (mean about 1.1). U uses cv2's uint8 offset of 128 (cv2's float
conversion uses 127.5, which moved every block almost half way to the decision
threshold and lost the mark on some flat backgrounds). Reading uses imwatermark's
decoder unchanged, so any dwtDctSvd reader told 48 bits sees the same bits.

Survival (measured): PNG copies keep the mark; JPEG mostly keeps it with 4:4:4
chroma (``subsampling=0``); Pillow's default 4:2:0 halves the U channel and
often erases it on colourful, textured content. Check before claiming it.

imwatermark imports torch when first loaded; it is imported on first use so
that importing this module (for ``ALGORITHM``, say) stays cheap.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from PIL import Image

from pipeline.errors import WatermarkError

SERIAL_BITS = 40
PAYLOAD_BITS = 48  # 40-bit serial + 8-bit CRC-8 check
ALGORITHM = "greenlight.dwtDctSvd.v1"  # name recorded in the C2PA soft-binding assertion
SERIAL_MAX = (1 << SERIAL_BITS) - 1
MIN_SIDE = 256  # imwatermark refuses smaller images; too few blocks per bit below this

_PAYLOAD_MASK = 0x20BDD8FCAE4F  # first six bytes of sha256(ALGORITHM)
_SCALE = 36  # imwatermark's default strength for dwtDctSvd on the U channel
_BLOCK = 4
_U_SCALE = 0.492  # U = 0.492 * (B - Y) + 128 in cv2's BGR<->YUV

RgbArray = npt.NDArray[np.uint8]


@dataclass(frozen=True)
class WatermarkReading:
    """What ``watermark_read`` found: ``serial`` is None unless the CRC matched."""

    serial: int | None
    bits: str  # the 48 bits as read from the image, "0"/"1", before unmasking
    check_ok: bool


def watermark_payload(serial: int) -> str:
    """The 48 bits ("0"/"1" text) that ``watermark_embed`` writes for ``serial``.

    ``watermark_read(image).bits`` equals this for a marked image; record it as
    the value of the C2PA soft-binding assertion.
    """
    _serial_check(serial)
    word = (serial << 8) | _crc8(serial.to_bytes(SERIAL_BITS // 8, "big"))
    return format(word ^ _PAYLOAD_MASK, f"0{PAYLOAD_BITS}b")


def watermark_embed(image: Image.Image, serial: int) -> Image.Image:
    """Return a copy of the RGB ``image`` carrying ``serial`` invisibly.

    The mark is read back before returning; an image that cannot carry it
    (flat white, fully saturated colour) raises WatermarkError rather than
    going out unmarked under a manifest that says it is watermarked.
    """
    bits = watermark_payload(serial)
    _size_check(image)
    if image.mode != "RGB":
        raise WatermarkError(f"Watermarking needs an RGB image, got mode {image.mode!r}")
    marked = _embed_rgb(np.asarray(image, dtype=np.uint8), bits)
    read_back = _decode_bits(marked)
    if read_back != bits:
        wrong = sum(a != b for a, b in zip(read_back, bits, strict=True))
        raise WatermarkError(
            f"Image {image.width}x{image.height} cannot carry the watermark for serial "
            f"{serial}: {wrong} of {PAYLOAD_BITS} bits read back wrong "
            "(too flat, too bright or too saturated)"
        )
    return Image.fromarray(marked)


def watermark_read(image: Image.Image) -> WatermarkReading:
    """Decode the 48 payload bits from ``image`` and check their CRC."""
    _size_check(image)
    rgb = np.asarray(image if image.mode == "RGB" else image.convert("RGB"), dtype=np.uint8)
    bits = _decode_bits(rgb)
    word = int(bits, 2) ^ _PAYLOAD_MASK
    serial, check = word >> 8, word & 0xFF
    check_ok = _crc8(serial.to_bytes(SERIAL_BITS // 8, "big")) == check
    return WatermarkReading(serial=serial if check_ok else None, bits=bits, check_ok=check_ok)


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


def _crc8(data: bytes) -> int:
    """CRC-8, polynomial 0x07, initial value 0 (CRC-8/SMBUS)."""
    crc = 0
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = ((crc << 1) ^ 0x07) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
    return crc


def _embed_rgb(rgb: RgbArray, bits: str) -> RgbArray:
    """Embed ``bits`` into the U channel of an RGB uint8 array, in float.

    U is computed as cv2's uint8 BGR->YUV does (offset 128, which its float
    path does not use), so the decoder sees the values the coder aimed for.
    Only U changes: Y and V fixed means R stays, B moves by dU/0.492 and G
    by -0.114/0.587 of that, which is cv2's YUV->BGR for a change in U alone.
    """
    import pywt
    from imwatermark.dwtDctSvd import EmbedDwtDctSvd

    pixels = rgb.astype(np.float64)
    red, green, blue = pixels[:, :, 0], pixels[:, :, 1], pixels[:, :, 2]
    luma = 0.299 * red + 0.587 * green + 0.114 * blue
    rows, cols = (rgb.shape[0] // 4) * 4, (rgb.shape[1] // 4) * 4
    u = (_U_SCALE * (blue - luma) + 128.0)[:rows, :cols]

    approx, (horizontal, vertical, diagonal) = pywt.dwt2(u, "haar")
    coder = EmbedDwtDctSvd([int(bit) for bit in bits], wmLen=PAYLOAD_BITS, block=_BLOCK)
    coder.encode_frame(approx, _SCALE)  # modifies approx in place
    delta_u = pywt.idwt2((approx, (horizontal, vertical, diagonal)), "haar") - u

    delta_blue = delta_u / _U_SCALE
    pixels[:rows, :cols, 2] += delta_blue
    pixels[:rows, :cols, 1] -= delta_blue * (0.114 / 0.587)
    marked: RgbArray = np.clip(np.rint(pixels), 0, 255).astype(np.uint8)
    return marked


def _decode_bits(rgb: RgbArray) -> str:
    """Read the payload bits with imwatermark's own dwtDctSvd decoder."""
    from imwatermark.dwtDctSvd import EmbedDwtDctSvd

    coder = EmbedDwtDctSvd(watermarks=[], wmLen=PAYLOAD_BITS, scales=[0, _SCALE, 0], block=_BLOCK)
    votes = coder.decode(np.ascontiguousarray(rgb[:, :, ::-1]))
    return "".join("1" if bit else "0" for bit in votes)
