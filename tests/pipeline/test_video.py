"""Video generation on real (tiny) diffusers video pipelines and the shipped embedded model,
H.264 MP4 in memory, and the watermark carried through a whole clip."""

from __future__ import annotations

import io
import itertools
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from PIL import Image

from models import MANIFESTS_DIR, ModelManifest, manifest_load
from models.loading import pipeline_load
from models.pin import manifest_pin
from pipeline.errors import GenerationInputError
from pipeline.generate import ImageRequest, engine_generate
from pipeline.video import (
    CLIP_MIN_SIDE,
    VideoProgress,
    VideoRequest,
    clip_frames,
    keyframe_video,
    video_generate,
    video_make,
)
from provenance.errors import MediaError
from provenance.mp4 import mp4_decode, mp4_encode
from provenance.watermark import watermark_embed, watermark_read_frames
from tests.models import tiny_pipelines

TEMPLATES_DIR = MANIFESTS_DIR / "templates"
# key: (template pinned against, builder, smallest side the tiny model draws: one token each way)
TINY_VIDEO: dict[str, tuple[str, Callable[[], Any], int]] = {
    "wan": ("wan2.1-t2v-1.3b", tiny_pipelines.wan_build, 16),
    "ltx": ("ltx-video", tiny_pipelines.ltx_build, 32),
}
PROMPT = "a red mug on a wooden table"
KEYFRAME_STEPS = 8


def _pixels(frame: Image.Image) -> np.ndarray[Any, np.dtype[np.float32]]:
    return np.asarray(frame, dtype=np.float32)


def _difference(a: Image.Image, b: Image.Image) -> float:
    return float(np.abs(_pixels(a) - _pixels(b)).mean())


def _clip_difference(a: list[Image.Image], b: list[Image.Image]) -> float:
    return float(np.mean([_difference(x, y) for x, y in zip(a, b, strict=True)]))


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_torch_thread: None) -> None:
    """Every test here runs on one torch thread (tests/conftest.py)."""


@pytest.fixture(scope="module")
def video_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, ModelManifest]:
    """The tiny Wan and LTX pipelines, saved and pinned against their shipped templates."""
    root = tmp_path_factory.mktemp("tiny-video-models")
    manifests = {}
    for key, (template, build, _) in TINY_VIDEO.items():
        folder = tiny_pipelines.pipeline_save(build(), root / key)
        manifests[key] = manifest_pin(
            TEMPLATES_DIR / f"{template}.yaml", folder, name=f"tiny-{key}", manifests_dir=root / "manifests"
        )
    return manifests


def _tiny_request(family: str, **changes: Any) -> VideoRequest:
    side = TINY_VIDEO[family][2]
    fields: dict[str, Any] = {
        "prompt": "a red mug",
        "seed": 1,
        "steps": 2,
        "guidance": 3.0,
        "width": side,
        "height": side,
        "frames": 9,  # 4k + 1 for Wan, 8k + 1 for LTX
        "fps": 8,
    }
    return VideoRequest(**(fields | changes))


@pytest.fixture(scope="module")
def keyframe_request(embedded: tuple[Any, ModelManifest]) -> VideoRequest:
    manifest = embedded[1]
    return VideoRequest(
        prompt=PROMPT,
        seed=7,
        steps=KEYFRAME_STEPS,
        guidance=manifest.defaults.guidance,
        width=manifest.defaults.width,
        height=manifest.defaults.height,
        frames=12,
        fps=12,
        keyframes=3,
        motion=0.5,
        output_width=256,
        output_height=256,
        key="clip-1",
    )


@pytest.fixture(scope="module")
def keyframe_clip(
    embedded: tuple[Any, ModelManifest], keyframe_request: VideoRequest
) -> tuple[list[Image.Image], list[VideoProgress]]:
    """One keyframe clip from the shipped model, with the progress it reported."""
    pipe, manifest = embedded
    reported: list[VideoProgress] = []
    return keyframe_video(pipe, manifest, keyframe_request, progress=reported.append), reported


# --- video models ----------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["wan", "ltx"])
def test_text_to_video_makes_the_frames_asked_for_and_the_seed_decides_them(
    video_models: dict[str, ModelManifest], key: str
) -> None:
    manifest = video_models[key]
    pipe = pipeline_load(manifest, device="cpu")
    request = _tiny_request(key)
    clip = video_generate(pipe, manifest, request)
    side = TINY_VIDEO[key][2]
    assert len(clip) == 9
    assert all(frame.size == (side, side) and frame.mode == "RGB" for frame in clip)
    again = video_generate(pipe, manifest, request)
    assert _clip_difference(clip, again) == 0  # same seed, same clip
    other = video_generate(pipe, manifest, replace(request, seed=2))
    assert _clip_difference(clip, other) > 0.5


def test_a_video_clip_is_resampled_to_the_output_size(video_models: dict[str, ModelManifest]) -> None:
    manifest = video_models["wan"]
    request = _tiny_request("wan", output_width=64, output_height=48)
    clip = video_generate(pipeline_load(manifest, device="cpu"), manifest, request)
    assert {frame.size for frame in clip} == {(64, 48)}


def test_the_ltx_registry_geometry_is_read_from_its_vae_as_diffusers_reads_it(
    video_models: dict[str, ModelManifest],
) -> None:
    manifest = video_models["ltx"]
    pipe: Any = pipeline_load(manifest, device="cpu")
    assert manifest.is_video and (manifest.defaults.frames, manifest.defaults.fps) == (121, 24)
    # 2x2 patches and three scaling stages: 16 px, not the 8 a four-level block list would suggest.
    assert manifest.size_multiple == pipe.vae_spatial_compression_ratio * pipe.transformer_spatial_patch_size == 16
    assert manifest.temporal_scale_factor == pipe.vae_temporal_compression_ratio == 8


def test_image_to_video_starts_from_the_init_image(video_models: dict[str, ModelManifest], tmp_path: Path) -> None:
    manifest = video_models["ltx"]
    pipe = pipeline_load(manifest, device="cpu")
    red = Image.new("RGB", (48, 40), (200, 30, 30))  # not the drawn size: fitted to it
    blue = tmp_path / "blue.png"
    Image.new("RGB", (32, 32), (20, 40, 220)).save(blue)
    from_red = video_generate(pipe, manifest, _tiny_request("ltx", init_image=red))
    assert len(from_red) == 9 and {frame.size for frame in from_red} == {(32, 32)}
    buffer = io.BytesIO()
    red.save(buffer, format="PNG")
    from_bytes = video_generate(pipe, manifest, _tiny_request("ltx", init_image=buffer.getvalue()))
    assert _clip_difference(from_red, from_bytes) == 0  # an image, its PNG bytes: the same clip
    from_blue = video_generate(pipe, manifest, _tiny_request("ltx", init_image=blue))
    assert _clip_difference(from_red, from_blue) > 0.5
    from_text = video_generate(pipe, manifest, _tiny_request("ltx"))
    assert _clip_difference(from_red, from_text) > 0.5


def test_image_to_video_refuses_a_bad_init_image_naming_it(
    video_models: dict[str, ModelManifest], tmp_path: Path
) -> None:
    manifest = video_models["ltx"]
    for bad in (b"not an image", tmp_path / "missing.png"):
        with pytest.raises(GenerationInputError) as err:
            video_make(None, manifest, _tiny_request("ltx", init_image=bad))
        assert err.value.field == "init_image"
        assert str(err.value).startswith("init_image = ")


def test_image_to_video_is_refused_for_a_family_without_it(video_models: dict[str, ModelManifest]) -> None:
    image = Image.new("RGB", (16, 16), (200, 30, 30))
    with pytest.raises(GenerationInputError) as err:
        video_make(None, video_models["wan"], _tiny_request("wan", init_image=image))
    assert err.value.field == "init_image"
    assert "wan family has no image-to-video" in str(err.value) and "ltx-video" in str(err.value)


def test_text_to_video_reports_each_denoising_step(video_models: dict[str, ModelManifest]) -> None:
    manifest = video_models["wan"]
    reported: list[VideoProgress] = []
    video_make(
        pipeline_load(manifest, device="cpu"), manifest, _tiny_request("wan", key="v1"), progress=reported.append
    )
    steps = [p.done for p in reported if p.stage == "denoise"]
    assert steps[0] == 0 and steps[-1] == 2 and 1 in steps
    assert {p.key for p in reported} == {"v1"}


# --- keyframe clips from an image model --------------------------------------------------------


def test_a_keyframe_clip_has_the_frames_and_size_asked_for(
    keyframe_clip: tuple[list[Image.Image], list[VideoProgress]],
) -> None:
    clip, _ = keyframe_clip
    assert len(clip) == 12
    assert all(frame.size == (256, 256) and frame.mode == "RGB" for frame in clip)


def test_a_keyframe_clip_changes_smoothly_from_frame_to_frame(
    keyframe_clip: tuple[list[Image.Image], list[VideoProgress]],
) -> None:
    clip, _ = keyframe_clip
    overall = _difference(clip[0], clip[-1])  # first and last keyframes
    steps = [_difference(a, b) for a, b in itertools.pairwise(clip)]
    assert overall > 2  # the clip moves...
    assert max(steps) < overall / 3  # ...in small steps, never a jump


def test_in_between_frames_are_interpolated_not_copies_of_keyframes(
    keyframe_clip: tuple[list[Image.Image], list[VideoProgress]],
) -> None:
    clip, _ = keyframe_clip
    # 3 keyframes over 12 frames: frame 0, position 5.5 (between frames 5 and 6) and frame 11.
    first, last = clip[0], clip[-1]
    for frame in (clip[2], clip[8]):
        assert min(_difference(frame, first), _difference(frame, last)) > 0.2
    assert _difference(clip[5], clip[6]) > 0  # around the middle keyframe: two different in-betweens


def test_the_first_keyframe_is_the_still_the_image_engine_makes_with_that_seed(
    embedded: tuple[Any, ModelManifest],
    keyframe_request: VideoRequest,
    keyframe_clip: tuple[list[Image.Image], list[VideoProgress]],
) -> None:
    pipe, manifest = embedded
    r = keyframe_request
    still = engine_generate(
        pipe,
        manifest,
        [
            ImageRequest(
                prompt=r.prompt, seed=r.seed, steps=r.steps, guidance=r.guidance, width=r.width, height=r.height
            )
        ],
    )[0]
    upscaled = still.resize((256, 256), Image.Resampling.LANCZOS)
    assert _difference(keyframe_clip[0][0], upscaled) < 0.5


def test_a_keyframe_clip_reports_its_stages(keyframe_clip: tuple[list[Image.Image], list[VideoProgress]]) -> None:
    _, reported = keyframe_clip
    stages = [p.stage for p in reported]
    assert stages.index("keyframes") < stages.index("denoise") < stages.index("upscale") < stages.index("interpolate")
    assert [p.done for p in reported if p.stage == "interpolate"] == [1, 2]
    assert {p.key for p in reported} == {"clip-1"}


def test_an_image_model_clip_defaults_to_a_size_that_survives_a_half_size_re_encode(
    embedded: tuple[Any, ModelManifest],
) -> None:
    pipe, manifest = embedded
    request = VideoRequest(
        prompt=PROMPT, seed=3, steps=2, guidance=1.0, width=64, height=64, frames=3, fps=6, keyframes=2
    )
    clip = video_make(pipe, manifest, request)
    # 512 px: halved by a sharing site, the clip still has the 256 px the watermark needs.
    assert len(clip) == 3 and {frame.size for frame in clip} == {(CLIP_MIN_SIDE, CLIP_MIN_SIDE)} == {(512, 512)}


# --- MP4 ---------------------------------------------------------------------------------------


def test_an_mp4_round_trip_keeps_frames_size_and_rate_in_h264(
    keyframe_clip: tuple[list[Image.Image], list[VideoProgress]],
) -> None:
    clip, _ = keyframe_clip
    data = mp4_encode(clip, 12)
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        assert stream.average_rate == 12
        assert (stream.width, stream.height) == (256, 256)
    assert data.find(b"moov") < data.find(b"mdat")  # fast start: playable while it downloads
    decoded = mp4_decode(data)
    assert len(decoded) == len(clip)
    assert {frame.size for frame in decoded} == {(256, 256)}
    assert _clip_difference(decoded, clip) < 3  # crf 18: close to the frames given


def test_mp4_encode_refuses_odd_sizes() -> None:
    frames = [Image.new("RGB", (255, 256), (100, 100, 100))] * 2
    with pytest.raises(MediaError, match="255x256"):
        mp4_encode(frames, 12)


def test_a_watermarked_clip_reads_back_its_serial_after_h264(
    keyframe_clip: tuple[list[Image.Image], list[VideoProgress]],
) -> None:
    clip, _ = keyframe_clip
    serial = 424242
    marked = [watermark_embed(frame, serial) for frame in clip]
    decoded = mp4_decode(mp4_encode(marked, 12, crf=23))
    assert watermark_read_frames(decoded).serial == serial
    assert watermark_read_frames(mp4_decode(mp4_encode(clip, 12, crf=23))).serial is None


# --- duration ----------------------------------------------------------------------------------


def test_clip_frames_is_fps_times_seconds_shaped_for_the_family() -> None:
    assert clip_frames(1, 12) == 12
    assert clip_frames(2.5, 24) == 60
    assert clip_frames(5, 16, temporal_scale=4) == 81  # Wan: 4k + 1
    assert clip_frames(5, 24, temporal_scale=8) == 121  # LTX: 8k + 1
    assert VideoRequest(PROMPT, 1, 2, 1.0, 64, 64, frames=36, fps=12).seconds == 3


# --- refusals ----------------------------------------------------------------------------------

EMBEDDED_BAD: list[tuple[str, Any]] = [
    ("prompt", ""),
    ("prompt", "   "),
    ("steps", 0),
    ("steps", 501),
    ("width", 0),
    ("width", 66),  # the embedded model draws multiples of 8
    ("height", -64),
    ("fps", 0),
    ("fps", 61),
    ("frames", 1),
    ("frames", 482),
    ("keyframes", 1),
    ("keyframes", 13),  # more keyframes than the 12 frames
    ("motion", 0),
    ("output_width", 257),
    ("guidance", -1.0),
    ("seed", -5),
    ("init_image", Image.new("RGB", (64, 64))),  # image models make keyframe clips from text only
]


@pytest.mark.parametrize(("field", "value"), EMBEDDED_BAD)
def test_a_bad_keyframe_request_is_refused_naming_field_and_value_before_any_model_work(field: str, value: Any) -> None:
    manifest = manifest_load("embedded")
    request = replace(
        VideoRequest(prompt=PROMPT, seed=1, steps=4, guidance=7.0, width=64, height=64, frames=12, fps=12),
        **{field: value},
    )
    with pytest.raises(GenerationInputError) as err:
        video_make(None, manifest, request)  # no pipeline: refused before one is needed
    assert err.value.field == field
    assert str(err.value).startswith(f"{field} = ")
    if isinstance(value, int | str) and not isinstance(value, bool):
        assert str(value) in str(err.value)


@pytest.mark.parametrize(
    ("field", "value", "problem"),
    [
        ("frames", 10, "4 * k + 1"),  # Wan needs 4k + 1 frames
        ("width", 24, "multiple of 16"),  # 8 px VAE x 2x2 patches
        ("init_image", b"\x89PNG broken", "image-to-video"),
        ("prompt", "a (red:1.3) mug", "weighting is not supported for the wan family"),
    ],
)
def test_a_bad_video_request_is_refused_naming_field_and_value_before_any_model_work(
    video_models: dict[str, ModelManifest], field: str, value: Any, problem: str
) -> None:
    with pytest.raises(GenerationInputError) as err:
        video_make(None, video_models["wan"], _tiny_request("wan", **{field: value}))
    assert err.value.field == field and problem in str(err.value)


def test_ltx_needs_8k_plus_1_frames(video_models: dict[str, ModelManifest]) -> None:
    with pytest.raises(GenerationInputError, match=r"frames = 13: .*8 \* k \+ 1 frames \(e\.g\. 9 or 17\)"):
        video_make(None, video_models["ltx"], _tiny_request("ltx", frames=13))
    with pytest.raises(GenerationInputError, match=r"\(e\.g\. 9\)"):
        video_make(None, video_models["ltx"], _tiny_request("ltx", frames=3))


def test_a_keyframe_clip_takes_a_weighted_prompt_as_its_stills_do(
    embedded: tuple[Any, ModelManifest], keyframe_request: VideoRequest
) -> None:
    pipe, manifest = embedded
    short = replace(keyframe_request, frames=4, keyframes=2, steps=KEYFRAME_STEPS)
    plain = keyframe_video(pipe, manifest, short)
    heavy = keyframe_video(pipe, manifest, replace(short, prompt="a (red:1.8) mug on a wooden table"))
    neutral = keyframe_video(pipe, manifest, replace(short, prompt="a (red:1.0) mug on a wooden table"))
    assert heavy[0].tobytes() != plain[0].tobytes()
    assert neutral[0].tobytes() == plain[0].tobytes()  # weight 1 is the plain prompt
