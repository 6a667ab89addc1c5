"""MP4 in memory: what `mp4_watermark_frames` reads of a clip nobody vouches for (only the frames
its watermark needs, within a pixel budget, as a stream it stops early), and that luma frames
read exactly as RGB ones."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from PIL import Image

import provenance.mp4
from provenance.errors import MediaError
from provenance.media import WATERMARK_FRAMES
from provenance.mp4 import mp4_decode, mp4_encode, mp4_watermark_frames, watermark_frame_count
from provenance.watermark import watermark_embed, watermark_read_frames
from tests.provenance.samples import SERIAL, product_shot, unknown_codec

LONG_CLIP_FRAMES = 240  # ten seconds at 24 fps: ten times what the watermark is read from


@pytest.fixture(scope="module")
def marked_frame() -> Image.Image:
    return watermark_embed(product_shot(3).resize((256, 256)), SERIAL)


@pytest.fixture(scope="module")
def long_clip(marked_frame: Image.Image) -> bytes:
    """Ten seconds of a slowly moving marked 256x256 frame."""
    frames = [marked_frame.rotate(i * 0.05, resample=Image.Resampling.BILINEAR) for i in range(LONG_CLIP_FRAMES)]
    return mp4_encode(frames, 24)


def test_the_watermark_is_read_from_24_frames_up_to_720p_and_from_fewer_larger_ones() -> None:
    assert watermark_frame_count(256, 256) == WATERMARK_FRAMES
    assert watermark_frame_count(1280, 720) == WATERMARK_FRAMES
    assert watermark_frame_count(1920, 1080) == 10  # 10 x 2.1 MP: within 24 x 0.92 MP
    assert watermark_frame_count(3840, 2160) == 2
    assert watermark_frame_count(4096, 4096) == 1  # never none


def test_a_long_clip_is_decoded_only_as_far_as_its_watermark_frames(long_clip: bytes) -> None:
    packets: list[None] = []

    frames = mp4_watermark_frames(long_clip, step=lambda: packets.append(None))

    assert len(frames) == WATERMARK_FRAMES and {f.mode for f in frames} == {"L"}
    # The demuxer stopped with the 24th frame (a few packets of decoder delay), not at the 240th.
    assert WATERMARK_FRAMES <= len(packets) <= WATERMARK_FRAMES + 8
    assert watermark_read_frames(frames).serial == SERIAL


def test_luma_frames_read_exactly_as_the_rgb_frames_they_come_from(long_clip: bytes) -> None:
    luma = watermark_read_frames(mp4_watermark_frames(long_clip))
    rgb = watermark_read_frames(mp4_decode(long_clip, limit=WATERMARK_FRAMES))

    assert (luma.serial, luma.confidence, luma.frames) == (rgb.serial, rgb.confidence, rgb.frames)
    assert (rgb.serial, rgb.frames) == (SERIAL, WATERMARK_FRAMES)


def test_larger_frames_are_read_fewer_within_the_budget(long_clip: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(provenance.mp4, "WATERMARK_READ_PIXELS", 6 * 256 * 256)
    packets: list[None] = []

    frames = mp4_watermark_frames(long_clip, step=lambda: packets.append(None))

    assert len(frames) == 6 and len(packets) <= 6 + 8
    assert watermark_read_frames(frames).serial == SERIAL  # six marked frames still carry it


def test_the_frame_size_is_checked_from_the_header_before_any_packet(long_clip: bytes) -> None:
    seen: list[tuple[int, int]] = []
    packets: list[None] = []

    def size_check(width: int, height: int) -> None:
        seen.append((width, height))
        raise OverflowError(f"{width}x{height}")

    with pytest.raises(OverflowError, match="256x256"):
        mp4_watermark_frames(long_clip, size_check=size_check, step=lambda: packets.append(None))
    assert seen == [(256, 256)] and packets == []


def test_a_step_that_raises_stops_the_decoding_where_it_is(long_clip: bytes) -> None:
    packets: list[None] = []

    def step() -> None:
        packets.append(None)
        if len(packets) > 5:
            raise TimeoutError("budget spent")

    with pytest.raises(TimeoutError):
        mp4_watermark_frames(long_clip, step=step)
    assert len(packets) == 6


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda clip: b"\x00\x00\x00\x18ftypisom" + b"\x00" * 64, id="empty-mp4"),
        pytest.param(lambda clip: b"not a video at all", id="text"),
        pytest.param(unknown_codec, id="unknown-codec"),
        pytest.param(lambda clip: clip[:300], id="cut-in-its-header"),
    ],
)
def test_a_file_that_is_no_decodable_video_is_a_media_error(long_clip: bytes, make: Callable[[bytes], bytes]) -> None:
    with pytest.raises(MediaError):
        mp4_watermark_frames(make(long_clip))
