"""The embedder's shortcuts give the very floats and bytes of the plain computations they replace,
and a still marked for a lossy file is marked until that file reads back."""

from __future__ import annotations

import math
from typing import Any

import cv2
import numpy as np
import pytest
from PIL import Image

from provenance import watermark_embedding as embedding
from provenance.errors import WatermarkCapacityError, WatermarkError
from provenance.watermark import watermark_embed, watermark_embed_encoded, watermark_embed_pixels, watermark_read
from provenance.watermark_coding import CELL, DEFAULT_KEY, TILE, cell_signs, tile_from_grid
from tests.provenance.samples import decoded, encode, photograph, product_shot, psnr

SERIAL = 48_213


def png_bytes(image: Image.Image) -> bytes:
    return encode(image, "image/png")


def test_headroom_by_byte_ranks_is_the_least_float_room_of_every_colour() -> None:
    values = np.arange(256, dtype=np.uint8)
    red, green = (np.ascontiguousarray(one) for one in np.meshgrid(values, values, indexing="ij"))
    rooms = [
        cv2.min(c, 255 - c).astype(np.float32) * (1.0 / float(d))
        for c, d in zip((red, green), embedding._DIRECTION[:2], strict=True)
    ]
    blue_share = 1.0 / float(embedding._DIRECTION[2])
    for level in range(256):  # every (R, G, B): one plane of blue at a time
        blue = np.full_like(red, level)
        room_blue = cv2.min(blue, 255 - blue).astype(np.float32) * blue_share
        expected = cv2.min(cv2.min(rooms[0], rooms[1]), room_blue)
        assert np.array_equal(embedding._headroom(red, green, blue), expected)


def test_marking_band_by_band_gives_the_bytes_of_whole_image_passes() -> None:
    rng = np.random.default_rng(3)
    rgb = np.clip(rng.normal(150, 60, (301, 517, 3)), 0, 255).astype(np.uint8)  # partial tiles both ways
    host = embedding._host_prepare(rgb)
    signs = cell_signs(4095, DEFAULT_KEY)
    amplitude = embedding._amplitude(host, 38.8, spill=False)
    values = embedding._cell_values(host, embedding._unit_response(host, amplitude, signs), signs, cancel=0.7)
    # The plain computation: the whole tiling, the whole product, one channel at a time.
    height, width = rgb.shape[:2]
    full = cv2.resize(amplitude, (width, height), interpolation=cv2.INTER_LINEAR)
    tiling = np.tile(tile_from_grid(values, CELL), (-(-height // TILE), -(-width // TILE)))[:height, :width]
    delta = full * tiling
    mse = float(np.mean(delta**2)) * embedding._DIRECTION_POWER
    delta *= min(math.sqrt(255.0**2 / 10 ** (38.8 / 10) / mse), embedding._MAX_BOOST)
    channels = [
        cv2.add(c, delta * float(d), dtype=cv2.CV_8U) for c, d in zip(cv2.split(rgb), embedding._DIRECTION, strict=True)
    ]
    assert np.array_equal(embedding._embed_rgb(host, amplitude, values, psnr=38.8, spill=False), cv2.merge(channels))


def test_a_still_stored_losslessly_is_marked_as_watermark_embed_marks_it() -> None:
    image = product_shot(3)

    marked, data = watermark_embed_encoded(image, SERIAL, encode=png_bytes)

    assert np.array_equal(np.asarray(marked), np.asarray(watermark_embed(image, SERIAL)))
    assert data == png_bytes(marked)


def test_pixels_are_marked_as_their_image_is_and_only_rgb_bytes_are_taken() -> None:
    image = product_shot(4)
    pixels = np.asarray(image)

    marked = watermark_embed_pixels(pixels, SERIAL)

    assert marked.dtype == np.uint8 and marked.shape == pixels.shape
    assert np.array_equal(marked, np.asarray(watermark_embed(image, SERIAL)))
    assert np.array_equal(pixels, np.asarray(image)), "the pixels given are left as they were"
    mirrored = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    from_view = watermark_embed_pixels(pixels[:, ::-1], SERIAL)  # a strided view, as a mirror gives
    assert np.array_equal(from_view, np.asarray(watermark_embed(mirrored, SERIAL)))
    wrongs: list[Any] = [pixels[..., 0], pixels.astype(np.float32), np.dstack([pixels, pixels[..., :1]])]
    for wrong in wrongs:
        with pytest.raises(WatermarkError, match="RGB pixels"):
            watermark_embed_pixels(wrong, SERIAL)
    with pytest.raises(WatermarkError, match="at least"):
        watermark_embed_pixels(pixels[:40], SERIAL)


def test_a_file_that_weakens_the_mark_is_marked_more_strongly_until_the_file_reads_back() -> None:
    image = photograph("astronaut", 512)  # busy: its mark reads with little to spare
    unmarked = np.asarray(image, dtype=np.float32)

    def weakening(marked: Image.Image) -> bytes:  # a lossy encoder that keeps 60% of the mark
        kept = unmarked + 0.6 * (np.asarray(marked, dtype=np.float32) - unmarked)
        return png_bytes(Image.fromarray(np.clip(np.rint(kept), 0, 255).astype(np.uint8)))

    plain = watermark_embed(image, SERIAL)
    # Marked for its pixels, the file falls short of the read-backs: cropped, it no longer reads.
    seen = cv2.cvtColor(np.asarray(decoded(weakening(plain))), cv2.COLOR_RGB2GRAY).astype(np.float32)
    assert not embedding._survives_crop(seen, SERIAL, DEFAULT_KEY)

    marked, data = watermark_embed_encoded(image, SERIAL, encode=weakening)

    assert psnr(image, marked) < psnr(image, plain) - 0.5
    assert data == weakening(marked)
    reading = watermark_read(decoded(data))
    assert reading.serial == SERIAL and reading.confidence >= embedding._EMBED_TARGET


def test_a_file_that_loses_the_mark_is_refused_never_returned_as_marked() -> None:
    image = product_shot(3)
    watermark_embed(image, SERIAL)  # the pixels take it

    with pytest.raises(WatermarkCapacityError, match="cannot carry the watermark"):
        watermark_embed_encoded(image, SERIAL, encode=lambda _: png_bytes(image))  # an encoder that drops it
