"""MP4 in memory: what `mp4_watermark_luma` reads of a clip nobody vouches for (only the frames
its watermark needs, within a frame and pixel budget, as a stream it stops early), averaged by
coding kind, and frames under the mark's minimum read on a canvas."""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np
import pytest
from PIL import Image

import provenance.mp4_watermark
from provenance.errors import MediaError
from provenance.media import WATERMARK_FRAMES, WATERMARK_MIN_SIDE
from provenance.mp4 import mp4_decode, mp4_encode, mp4_watermark_frames, mp4_watermark_luma, watermark_frame_count
from provenance.mp4_watermark import WATERMARK_PAD_MIN_SIDE
from provenance.watermark import watermark_embed, watermark_read_frames
from tests.provenance.samples import SERIAL, product_shot, unknown_codec

LONG_CLIP_FRAMES = 240  # ten seconds at 24 fps


@pytest.fixture(scope="module")
def marked_frame() -> Image.Image:
    return watermark_embed(product_shot(3).resize((256, 256)), SERIAL)


@pytest.fixture(scope="module")
def long_clip(marked_frame: Image.Image) -> bytes:
    """Ten seconds of a slowly moving marked 256x256 frame."""
    frames = [marked_frame.rotate(i * 0.05, resample=Image.Resampling.BILINEAR) for i in range(LONG_CLIP_FRAMES)]
    return mp4_encode(frames, 24)


def test_the_watermark_is_read_from_ten_seconds_of_small_frames_and_from_fewer_larger_ones() -> None:
    assert watermark_frame_count(256, 256) == 240
    assert watermark_frame_count(512, 512) == 240
    assert watermark_frame_count(1280, 720) == 96
    assert watermark_frame_count(1920, 1080) == 42  # 42 x 2.1 MP: within 96 x 0.92 MP
    assert watermark_frame_count(3840, 2160) == 10
    assert watermark_frame_count(4096, 4096) == 5
    assert watermark_frame_count(65536, 65536) == 1  # never none


def test_a_long_clip_is_decoded_only_as_far_as_its_watermark_frames(
    long_clip: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(provenance.mp4_watermark, "WATERMARK_READ_FRAMES", WATERMARK_FRAMES)
    packets: list[None] = []

    clip = mp4_watermark_luma(long_clip, step=lambda: packets.append(None))

    assert clip.frames == WATERMARK_FRAMES and clip.size == (256, 256)
    # The demuxer stopped with the 24th frame (a few packets of decoder delay), not at the 240th.
    assert WATERMARK_FRAMES <= len(packets) <= WATERMARK_FRAMES + 8
    assert watermark_read_frames(clip.images).serial == SERIAL


def test_the_frames_are_averaged_by_coding_kind(long_clip: bytes) -> None:
    clip = mp4_watermark_luma(long_clip)

    # x264 by default: one key frame, then predicted and bidirectional ones; one average each.
    assert clip.frames == LONG_CLIP_FRAMES and clip.kinds == ("intra", "predicted", "bidirectional")
    assert sum(clip.counts) == LONG_CLIP_FRAMES and clip.counts[0] >= 1
    assert [image.mode for image in clip.averages] == ["L"] * 3
    # Weighted by their counts, the averages are the mean luma of every decoded frame (to rounding).
    luma = [cv2.cvtColor(np.asarray(frame), cv2.COLOR_RGB2GRAY).astype(np.float64) for frame in mp4_decode(long_clip)]
    parts = zip(clip.counts, clip.averages, strict=True)
    averaged = sum(count * np.asarray(image, dtype=np.float64) for count, image in parts)
    assert np.abs(averaged / LONG_CLIP_FRAMES - np.mean(luma, axis=0)).max() <= 0.5
    # The first frame is kept as decoded, for the content check.
    assert np.array_equal(np.asarray(clip.first), luma[0].astype(np.uint8))
    # The reader is given intra twice, predicted once, bidirectional not at all.
    intra, predicted, _ = clip.averages
    assert clip.images == (intra, intra, predicted) and mp4_watermark_frames(long_clip) == list(clip.images)
    assert watermark_read_frames(clip.images).serial == SERIAL


def test_larger_frames_are_read_fewer_within_the_budget(long_clip: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(provenance.mp4_watermark, "WATERMARK_READ_PIXELS", 6 * 256 * 256)
    packets: list[None] = []

    clip = mp4_watermark_luma(long_clip, step=lambda: packets.append(None))

    assert clip.frames == 6 and len(packets) <= 6 + 8
    assert watermark_read_frames(clip.images).serial == SERIAL  # six marked frames still carry it


def test_frames_under_the_marks_minimum_are_read_on_a_canvas_down_to_half_of_it(marked_frame: Image.Image) -> None:
    cropped = marked_frame.crop((13, 13, 243, 243))  # 230 px: under 256
    clip = mp4_watermark_luma(mp4_encode([cropped] * 4, 12, crf=18))

    assert clip.size == (230, 230)
    assert {image.size for image in clip.averages} == {(WATERMARK_MIN_SIDE, WATERMARK_MIN_SIDE)}
    canvas = np.asarray(clip.averages[0], dtype=np.int16)
    assert np.abs(canvas[13:243, 13:243] - np.asarray(clip.first, dtype=np.int16)).max() <= 1  # centred
    assert np.ptp(canvas[:13]) == 0  # a flat margin
    assert watermark_read_frames(clip.images).serial == SERIAL  # a crop keeps the mark

    tiny = WATERMARK_PAD_MIN_SIDE - 2
    small = mp4_watermark_luma(mp4_encode([cropped.crop((0, 0, tiny, tiny))] * 2, 12))
    assert small.size == (tiny, tiny) and small.images == small.averages == () and small.first.size == (tiny, tiny)


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
