"""The embedder's shortcuts give the very floats and bytes of the plain computations they replace."""

from __future__ import annotations

import math

import cv2
import numpy as np

from provenance import watermark_embedding as embedding
from provenance.watermark_coding import CELL, DEFAULT_KEY, TILE, cell_signs, tile_from_grid


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
