"""The invisible watermark: round trips, false detections and refusals."""

from __future__ import annotations

import io
from collections.abc import Callable

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter

from pipeline.errors import WatermarkError
from pipeline.watermark import (
    PAYLOAD_BITS,
    SERIAL_MAX,
    WatermarkReading,
    watermark_embed,
    watermark_payload,
    watermark_read,
)

SIZE = 512


def gradient(rng: np.random.Generator, size: tuple[int, int] = (SIZE, SIZE)) -> Image.Image:
    """A smooth two-colour gradient at a random angle."""
    width, height = size
    y, x = np.mgrid[0:height, 0:width] / max(size)
    angle = rng.uniform(0, np.pi)
    t = (np.cos(angle) * x + np.sin(angle) * y)[..., None]
    t = (t - t.min()) / (t.max() - t.min())
    start, end = rng.uniform(20, 235, 3), rng.uniform(20, 235, 3)
    return Image.fromarray((start * (1 - t) + end * t).astype(np.uint8))


def noise(rng: np.random.Generator, size: tuple[int, int] = (SIZE, SIZE)) -> Image.Image:
    """Uniform RGB noise: the most textured content there is."""
    return Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))


def upscaled_noise(rng: np.random.Generator, size: tuple[int, int] = (SIZE, SIZE)) -> Image.Image:
    """64x64 noise upscaled with LANCZOS: blotchy, with ringing."""
    small = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    return Image.fromarray(small).resize(size, Image.Resampling.LANCZOS)


def shapes(rng: np.random.Generator, size: tuple[int, int] = (SIZE, SIZE)) -> Image.Image:
    """Soft-edged ellipses and boxes on a coloured background, like a simple product shot."""
    image = Image.new("RGB", size, tuple(int(c) for c in rng.integers(30, 225, 3)))
    draw = ImageDraw.Draw(image)
    for _ in range(int(rng.integers(3, 9))):
        x0, y0 = (int(v) for v in rng.integers(0, min(size) - 64, 2))
        x1, y1 = x0 + int(rng.integers(32, 256)), y0 + int(rng.integers(32, 256))
        fill = tuple(int(c) for c in rng.integers(0, 256, 3))
        if rng.random() < 0.5:
            draw.ellipse((x0, y0, x1, y1), fill=fill)
        else:
            draw.rectangle((x0, y0, x1, y1), fill=fill)
    return image.filter(ImageFilter.GaussianBlur(float(rng.uniform(0.5, 3.0))))


KINDS: dict[str, Callable[[np.random.Generator], Image.Image]] = {
    "gradient": gradient,
    "noise": noise,
    "upscaled_noise": upscaled_noise,
    "shapes": shapes,
}


def png_round_trip(image: Image.Image) -> Image.Image:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return Image.open(io.BytesIO(buffer.getvalue()))


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_round_trip_after_png_gives_the_serial(kind: str) -> None:
    rng = np.random.default_rng(sorted(KINDS).index(kind))
    serial = int(rng.integers(0, SERIAL_MAX + 1))

    marked = watermark_embed(KINDS[kind](rng), serial)
    reading = watermark_read(png_round_trip(marked))

    assert reading == WatermarkReading(serial=serial, bits=watermark_payload(serial), check_ok=True)
    assert marked.mode == "RGB" and marked.size == (SIZE, SIZE)


@pytest.mark.parametrize("serial", [0, 1, SERIAL_MAX])
def test_round_trip_at_the_ends_of_the_serial_range(serial: int) -> None:
    image = shapes(np.random.default_rng(7))

    assert watermark_read(png_round_trip(watermark_embed(image, serial))).serial == serial


def test_round_trip_on_a_size_that_is_not_a_multiple_of_four() -> None:
    image = upscaled_noise(np.random.default_rng(8), size=(517, 389))

    marked = watermark_embed(image, 123_456_789)

    assert marked.size == (517, 389)
    assert watermark_read(png_round_trip(marked)).serial == 123_456_789


@pytest.mark.parametrize("kind", ["noise", "upscaled_noise", "shapes"])
def test_mark_changes_pixels_only_slightly(kind: str) -> None:
    # imwatermark 0.2.0's own encoder swaps two wavelet bands and changed
    # noise images by up to 255 levels (mean 18); the mark must stay invisible.
    original = KINDS[kind](np.random.default_rng(11))

    marked = watermark_embed(original, 42)

    difference = np.abs(np.asarray(marked, dtype=int) - np.asarray(original, dtype=int))
    assert difference.max() <= 16
    assert difference.mean() <= 2.0


def test_unmarked_images_rarely_read_as_a_serial() -> None:
    # Unmarked images decode to arbitrary bits, so the CRC-8 passes about 1 in
    # 256 by chance: expect 0.2 of 50. Fixed seeds make the count repeatable.
    kinds = sorted(KINDS)
    readings = [
        watermark_read(KINDS[kinds[seed % len(kinds)]](np.random.default_rng(1000 + seed))) for seed in range(50)
    ]

    false_detections = [reading for reading in readings if reading.check_ok]
    assert len(false_detections) <= 2
    assert all(reading.serial is None for reading in readings if not reading.check_ok)
    assert all(len(reading.bits) == PAYLOAD_BITS for reading in readings)


@pytest.mark.parametrize("colour", [(0, 0, 0), (128, 128, 128), (255, 255, 255), (0, 0, 255), (255, 255, 0)])
def test_flat_images_do_not_read_as_a_serial(colour: tuple[int, int, int]) -> None:
    # A flat image decodes to a constant bit pattern; without the payload mask
    # all zeros would read as serial 0 with a valid CRC.
    reading = watermark_read(Image.new("RGB", (SIZE, SIZE), colour))

    assert reading.serial is None
    assert not reading.check_ok


@pytest.mark.parametrize("size", [(255, 512), (512, 200), (64, 64)])
def test_too_small_image_is_refused_naming_its_size(size: tuple[int, int]) -> None:
    image = gradient(np.random.default_rng(3), size=size)
    expected = f"{size[0]}x{size[1]}"

    with pytest.raises(WatermarkError, match=expected):
        watermark_embed(image, 1)
    with pytest.raises(WatermarkError, match=expected):
        watermark_read(image)


@pytest.mark.parametrize("serial", [-1, SERIAL_MAX + 1, 2**64])
def test_serial_out_of_range_is_refused(serial: int) -> None:
    image = shapes(np.random.default_rng(4))

    with pytest.raises(WatermarkError, match=f"serial {serial} is out of range"):
        watermark_embed(image, serial)


def test_non_rgb_image_is_refused() -> None:
    image = shapes(np.random.default_rng(5)).convert("RGBA")

    with pytest.raises(WatermarkError, match="'RGBA'"):
        watermark_embed(image, 1)


def test_image_that_cannot_carry_the_mark_is_refused() -> None:
    # Pure white clips every change to the U channel: refuse rather than ship
    # an unmarked image under a manifest that says "watermarked".
    with pytest.raises(WatermarkError, match="cannot carry the watermark"):
        watermark_embed(Image.new("RGB", (SIZE, SIZE), (255, 255, 255)), 99)
