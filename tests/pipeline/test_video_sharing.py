"""Clips that survive being shared: keyframe clips are 512 px a side by default (twice the
watermark's minimum), and a 512 px clip's mark is still read from its frames after a sharing site
re-encodes it at half the size."""

from __future__ import annotations

from PIL import Image

from models import manifest_load
from pipeline.video import CLIP_MIN_SIDE, VideoRequest, output_size
from provenance.media import WATERMARK_MIN_SIDE
from provenance.mp4 import mp4_decode, mp4_encode, mp4_watermark_frames
from provenance.watermark import watermark_embed, watermark_read_frames
from tests.provenance.samples import photograph

KEY = "a1" * 32  # a secret-like key, as an installation's


def test_a_keyframe_clip_is_512_px_a_side_unless_its_size_is_asked_for() -> None:
    manifest = manifest_load("embedded")
    drawn = VideoRequest(prompt="p", seed=1, steps=1, guidance=1.0, width=256, height=256, frames=4, fps=4)

    assert CLIP_MIN_SIDE == 2 * WATERMARK_MIN_SIDE == 512
    assert output_size(manifest, drawn) == (512, 512)
    wide = VideoRequest(prompt="p", seed=1, steps=1, guidance=1.0, width=384, height=256, frames=4, fps=4)
    assert output_size(manifest, wide) == (768, 512)
    asked = VideoRequest(
        prompt="p",
        seed=1,
        steps=1,
        guidance=1.0,
        width=256,
        height=256,
        frames=4,
        fps=4,
        output_width=256,
        output_height=256,
    )
    assert output_size(manifest, asked) == (256, 256)


def test_a_512_px_clip_keeps_its_mark_after_a_half_size_re_encode() -> None:
    # A slow pan across a photograph, marked frame by frame, stored as the pipeline stores masters.
    scene = photograph("astronaut", 1024)
    frames = [scene.crop((4 * i, 4 * i, 4 * i + 512, 4 * i + 512)) for i in range(24)]
    master = mp4_encode([watermark_embed(frame, 777_001, key=KEY) for frame in frames], 12, crf=18)

    # Shared: decoded, halved to 256 px and encoded again at CRF 28.
    halved = [frame.resize((256, 256), Image.Resampling.BICUBIC) for frame in mp4_decode(master)]
    shared = mp4_encode(halved, 12, crf=28)

    assert watermark_read_frames(mp4_watermark_frames(shared), key=KEY).serial == 777_001
