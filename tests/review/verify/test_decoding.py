"""Reading an untrusted file within limits: size, format by magic numbers, and the pixel count
a header claims, each refused with its reason code before anything is decoded; a video decoded
only as far as its watermark frames, within a time budget; a large still read from its centre."""

from __future__ import annotations

import io

import pytest
from PIL import Image

import provenance.mp4_watermark
from provenance.media import WATERMARK_FRAMES
from provenance.mp4 import mp4_encode
from provenance.watermark import DEFAULT_KEY, watermark_embed, watermark_read_frames
from provenance.watermark_keys import WatermarkKey, WatermarkKeyRing
from review.errors import VerifyRefusedError
from review.verify import Deadline, decoding, format_detect, size_check, watermark_examine
from review.verify.decoding import image_load, image_open, video_luma, watermark_still
from tests.fixture_types import SettingsWrapper
from tests.provenance.samples import product_shot


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


# --- Video: a stream of only the frames the watermark needs, within a frame-size cap and a budget


class CountingClock:
    """A clock for `Deadline` that advances ``tick`` seconds each time it is read: the budget's
    checks are counted, and spent, without any real time passing."""

    def __init__(self, tick: float = 0.0) -> None:
        self.reads = 0
        self.tick = tick

    def __call__(self) -> float:
        self.reads += 1
        return self.reads * self.tick


@pytest.fixture(scope="module")
def long_clip() -> bytes:
    """Ten seconds (240 frames) of a marked 256x256 frame, slowly turning."""
    marked = watermark_embed(product_shot(4).resize((256, 256)), 4242)
    return mp4_encode([marked.rotate(i * 0.05, resample=Image.Resampling.BILINEAR) for i in range(240)], 24)


def test_a_video_whose_frames_are_over_the_cap_is_refused_by_its_header_before_decoding(
    long_clip: bytes, settings: SettingsWrapper
) -> None:
    settings.GREENLIGHT_VERIFY_MAX_VIDEO_PIXELS = 256 * 256 - 1
    clock = CountingClock()

    with pytest.raises(VerifyRefusedError, match=r"clip\.mp4: The video's frames are 256x256 \(0\.066 MP\)") as refused:
        video_luma(long_clip, filename="clip.mp4", deadline=Deadline(60, clock=clock))

    assert refused.value.reason == "too_many_pixels"
    assert clock.reads == 1  # the deadline was started, never checked: no packet was demuxed


def test_only_the_watermark_frames_of_a_long_clip_are_decoded(
    long_clip: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(provenance.mp4_watermark, "WATERMARK_READ_FRAMES", WATERMARK_FRAMES)  # of 240
    clock = CountingClock()

    clip = video_luma(long_clip, filename="clip.mp4", deadline=Deadline(60, clock=clock))

    assert clip is not None and clip.frames == WATERMARK_FRAMES and clip.size == (256, 256)
    packets = clock.reads - 1  # one check before each packet demuxed
    assert WATERMARK_FRAMES <= packets <= WATERMARK_FRAMES + 8
    assert watermark_read_frames(clip.images).serial == 4242


def test_a_spent_time_budget_stops_the_decoding_between_packets(long_clip: bytes) -> None:
    clock = CountingClock(tick=1.0)  # each check finds one more second spent

    with pytest.raises(VerifyRefusedError, match=r"stopped after 6\.0 s while decoding the video") as refused:
        video_luma(long_clip, filename="clip.mp4", deadline=Deadline(5, clock=clock))

    assert refused.value.reason == "timeout"
    assert clock.reads == 7  # started, then five packets within the budget, and the sixth refused


def test_a_still_larger_than_the_read_square_is_read_from_its_centre(monkeypatch: pytest.MonkeyPatch) -> None:
    marked = watermark_embed(product_shot(6).resize((640, 640)), 4242)
    monkeypatch.setattr(decoding, "STILL_READ_SIDE", 320)
    buffer = io.BytesIO()
    marked.save(buffer, "PNG")

    assert watermark_still(marked).size == (320, 320)
    assert watermark_still(marked.crop((0, 0, 640, 100))).size == (320, 100)
    small = marked.resize((300, 300))
    assert watermark_still(small) is small
    default = WatermarkKeyRing(current=WatermarkKey(key_id="wk-0123456789ab", secret=DEFAULT_KEY))  # as marked above
    assert watermark_examine(buffer.getvalue(), mime="image/png", keys=default).serial == 4242  # in the centre alone
