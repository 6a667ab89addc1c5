"""The master's PNG writer: a standard PNG that decodes to exactly the pixels it was given, that
Pillow reads, and that c2pa signs and reads back trusted with the pixels unchanged."""

from __future__ import annotations

import io
import struct
import zlib
from typing import Any

import numpy as np
import pytest
from PIL import Image

from provenance.credentials import c2pa_read, c2pa_sign
from provenance.errors import MediaError
from provenance.png import SIGNATURE, png_encode
from provenance.renditions import image_encode
from tests.provenance.samples import manifest_for, product_shot


def _noise(mode: str, width: int, height: int, seed: int = 0) -> Image.Image:
    channels = {"L": 1, "RGB": 3, "RGBA": 4}[mode]
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, channels), dtype=np.uint8)
    return Image.fromarray(pixels[..., 0] if channels == 1 else pixels, mode)


def _chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    """(type, data) of every chunk, checking each CRC on the way."""
    assert data[:8] == SIGNATURE
    chunks, at = [], 8
    while at < len(data):
        (length,) = struct.unpack(">I", data[at : at + 4])
        kind, body = data[at + 4 : at + 8], data[at + 8 : at + 8 + length]
        (crc,) = struct.unpack(">I", data[at + 8 + length : at + 12 + length])
        assert crc == zlib.crc32(body, zlib.crc32(kind)), f"bad CRC in {kind!r}"
        chunks.append((kind, body))
        at += 12 + length
    return chunks


@pytest.mark.parametrize("mode", ["RGB", "L", "RGBA"])
@pytest.mark.parametrize(("width", "height"), [(1, 1), (7, 3), (256, 129), (513, 512)])
def test_the_pixels_come_back_bit_for_bit(mode: str, width: int, height: int) -> None:
    image = _noise(mode, width, height, seed=width * height)

    decoded = Image.open(io.BytesIO(png_encode(image)))

    assert decoded.format == "PNG" and decoded.mode == mode and decoded.size == (width, height)
    assert np.array_equal(np.asarray(decoded), np.asarray(image))


@pytest.mark.parametrize("mode", ["RGB", "L", "RGBA"])
def test_an_array_of_pixels_is_written_as_its_image_is(mode: str) -> None:
    image = _noise(mode, 129, 64, seed=5)
    pixels = np.asarray(image)

    data = png_encode(pixels)

    assert data == png_encode(image)
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(data))), pixels)
    assert png_encode(pixels[:, ::-1]) == png_encode(image.transpose(Image.Transpose.FLIP_LEFT_RIGHT))  # a view


@pytest.mark.parametrize(
    "pixels",
    [
        np.zeros((4, 4, 2), np.uint8),
        np.zeros((4, 4, 3), np.uint16),
        np.zeros((0, 4, 3), np.uint8),
        np.zeros(4, np.uint8),
    ],
)
def test_an_array_it_cannot_write_is_refused_naming_its_shape(pixels: np.ndarray) -> None:
    with pytest.raises(MediaError, match=r"shape") as refused:
        png_encode(pixels)
    assert refused.value.field == "pixels"


def test_the_file_is_a_standard_png_with_up_filtered_rows() -> None:
    image = product_shot(3)

    data = png_encode(image)

    chunks = _chunks(data)
    assert [kind for kind, _ in chunks] == [b"IHDR", b"IDAT", b"IEND"]
    width, height, depth, colour, compression, filtering, interlace = struct.unpack(">IIBBBBB", chunks[0][1])
    assert (width, height, depth, colour, compression, filtering, interlace) == (512, 512, 8, 2, 0, 0, 0)
    rows = np.frombuffer(zlib.decompress(chunks[1][1]), dtype=np.uint8).reshape(height, 1 + width * 3)
    assert set(rows[:, 0].tolist()) == {2}  # every row: the Up filter
    Image.open(io.BytesIO(data)).verify()  # Pillow's own structure and CRC checks


def test_image_encode_writes_masters_with_it_and_the_file_stays_small() -> None:
    image = product_shot(4)

    data = image_encode(image, "png")

    assert data == png_encode(image)
    pillow = io.BytesIO()
    image.save(pillow, "PNG", compress_level=6)
    assert len(data) < 1.25 * len(pillow.getvalue())


def test_c2pa_signs_it_and_reads_it_back_trusted_with_identical_pixels(signer: Any, context: Any) -> None:
    image = product_shot(5)
    data = png_encode(image)

    signed = c2pa_sign(data, mime="image/png", manifest=manifest_for(), signer=signer, context=context)

    report = c2pa_read(signed, mime="image/png", context=context)
    assert report.state == "trusted", report.validation_codes
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(signed))), np.asarray(image))


@pytest.mark.parametrize("mode", ["P", "I;16", "CMYK", "1"])
def test_a_mode_it_does_not_write_is_refused_naming_it(mode: str) -> None:
    image = Image.new(mode, (8, 8))

    with pytest.raises(MediaError, match=repr(mode)) as raised:
        png_encode(image)

    assert raised.value.field == "mode" and raised.value.value == mode


def test_image_encode_keeps_pillow_for_other_modes() -> None:
    image = _noise("RGB", 16, 16).convert("P")

    decoded = Image.open(io.BytesIO(image_encode(image, "png")))

    assert decoded.mode == "P"
    assert np.array_equal(np.asarray(decoded.convert("RGB")), np.asarray(image.convert("RGB")))
