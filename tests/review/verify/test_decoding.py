"""Reading an untrusted file within limits: size, format by magic numbers, and the pixel count
a header claims, each refused with its reason code before anything is decoded."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from review.errors import VerifyRefusedError
from review.verify import format_detect, size_check
from review.verify.decoding import image_load, image_open
from tests.fixture_types import SettingsWrapper


def encoded(fmt: str, size: tuple[int, int] = (8, 8)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (200, 40, 40)).save(buffer, fmt)
    return buffer.getvalue()


@pytest.mark.parametrize(("fmt", "name"), [("PNG", "png"), ("JPEG", "jpeg"), ("WEBP", "webp")])
def test_the_format_comes_from_the_bytes(fmt: str, name: str) -> None:
    assert format_detect(encoded(fmt), filename="photo.gif") == name


def test_an_mp4_is_known_by_its_brand_and_heif_is_not() -> None:
    assert format_detect(b"\x00\x00\x00\x18ftypisom" + b"\x00" * 8) == "mp4"
    with pytest.raises(VerifyRefusedError) as refused:
        format_detect(b"\x00\x00\x00\x18ftypheic" + b"\x00" * 8, filename="photo.heic")
    assert refused.value.reason == "not_supported" and str(refused.value).startswith("photo.heic: Not a PNG")


def test_an_empty_file_and_one_over_the_limit_are_refused_by_size(greenlight_settings: SettingsWrapper) -> None:
    greenlight_settings.GREENLIGHT_VERIFY_MAX_BYTES = 1000
    size_check(1000)
    with pytest.raises(VerifyRefusedError) as empty:
        size_check(0)
    with pytest.raises(VerifyRefusedError, match=r"The file is 2\.0 MB; verify takes files up to 0\.0 MB") as large:
        size_check(2 * 1024 * 1024)
    assert (empty.value.reason, large.value.reason) == ("empty", "too_large")


def test_a_header_claiming_too_many_pixels_is_refused_before_decoding(greenlight_settings: SettingsWrapper) -> None:
    greenlight_settings.GREENLIGHT_VERIFY_MAX_PIXELS = 10_000
    assert image_open(encoded("PNG", (100, 100)), "png", filename="").size == (100, 100)
    with pytest.raises(VerifyRefusedError, match=r"header says 101x100") as refused:
        image_open(encoded("PNG", (101, 100)), "png", filename="big.png")
    assert refused.value.reason == "too_many_pixels"


def test_truncated_pixel_data_is_refused_as_unreadable() -> None:
    data = encoded("PNG", (64, 64))
    image = image_open(data[: len(data) - 30], "png", filename="cut.png")
    with pytest.raises(VerifyRefusedError) as refused:
        image_load(image, "png", filename="cut.png")
    assert refused.value.reason == "unreadable"
