"""Each family's code path, end to end on tiny random pipelines: pin, load, set up, generate."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import pytest
import torch

from models.loading import pipeline_load, pipeline_setup
from models.manifest import ModelManifest
from models.pin import manifest_pin
from tests.models.conftest import TEMPLATES_DIR, TINY_FAMILIES

STEPS = 2
# Smallest sizes each tiny model accepts: 2x2 latent cells for FLUX's packing, 8x8 for the rest.
IMAGE_SIDE = {"sd": 16, "sdxl": 16, "flux": 8}


def _images(manifest: ModelManifest, prompts: list[str], seeds: list[int]) -> torch.Tensor:
    """One pipeline call for ``prompts``, one generator per prompt, as pipeline.generate does."""
    pipe = cast(Any, pipeline_load(manifest, device="cpu"))
    side = IMAGE_SIDE[manifest.name.removeprefix("tiny-")]
    out = pipe(
        prompt=prompts,
        num_inference_steps=STEPS,
        guidance_scale=manifest.defaults.guidance,
        width=side,
        height=side,
        generator=[torch.Generator().manual_seed(seed) for seed in seeds],
        output_type="pt",
        **manifest.call_options,
    )
    return cast(torch.Tensor, out.images)


@pytest.mark.parametrize("key", ["sd", "sdxl", "flux"])
def test_an_image_family_makes_one_image_per_prompt_independent_of_its_batch(
    tiny_manifests: dict[str, ModelManifest], key: str
) -> None:
    manifest = tiny_manifests[key]
    side = IMAGE_SIDE[key]
    batch = _images(manifest, ["a red mug on a wooden table", "a blue lamp"], [1, 2])
    assert batch.shape == (2, 3, side, side)
    assert torch.isfinite(batch).all()
    assert (batch[0] - batch[1]).abs().mean() > 0.01  # two prompts and seeds, two pictures
    alone = _images(manifest, ["a red mug on a wooden table"], [1])
    # The same prompt and seed give the same picture whatever else is in the batch.
    torch.testing.assert_close(alone[0], batch[0], atol=1e-5, rtol=0)


def test_the_video_family_makes_one_clip_per_prompt_with_the_frames_asked_for(
    tiny_manifests: dict[str, ModelManifest],
) -> None:
    manifest = tiny_manifests["wan"]
    assert manifest.is_video and (manifest.defaults.frames, manifest.defaults.fps) == (81, 16)
    pipe = cast(Any, pipeline_load(manifest, device="cpu"))
    frames = 9  # 4k + 1, like the template's 81
    out = pipe(
        prompt=["a red mug", "a blue lamp"],
        num_inference_steps=STEPS,
        guidance_scale=manifest.defaults.guidance,
        width=16,
        height=16,
        num_frames=frames,
        generator=[torch.Generator().manual_seed(seed) for seed in (1, 2)],
        output_type="pt",
        **manifest.call_options,
    )
    clips = cast(torch.Tensor, out.frames)
    assert clips.shape == (2, frames, 3, 16, 16)
    assert torch.isfinite(clips).all()
    assert (clips[0] - clips[1]).abs().mean() > 1e-3


@pytest.mark.parametrize(
    ("key", "processor"),
    [
        ("sd", "AttnProcessor2_0"),
        ("sdxl", "AttnProcessor2_0"),
        ("flux", "FluxAttnProcessor[native]"),
        ("wan", "WanAttnProcessor[native]"),
    ],
)
def test_loading_records_device_dtype_and_sdpa_attention(
    tiny_manifests: dict[str, ModelManifest], key: str, processor: str
) -> None:
    setup = pipeline_setup(tiny_manifests[key], device="cpu")
    assert (setup.plan.device, setup.plan.dtype) == ("cpu", "float32")
    assert setup.sdpa and processor in setup.attention
    pipe = cast(Any, pipeline_load(tiny_manifests[key], device="cpu"))
    assert all(p.dtype == torch.float32 for p in pipe.vae.parameters())


def test_vae_tiling_goes_on_by_itself_only_for_large_outputs_and_slicing_on_a_cpu(
    tiny_manifests: dict[str, ModelManifest], tiny_folders: dict[str, Path], tmp_path: Path
) -> None:
    turbo = pipeline_setup(tiny_manifests["sdxl"], device="cpu")  # 512x512 defaults
    assert not turbo.vae_tiling
    assert turbo.vae_slicing and turbo.batch_invariant  # per-image decoding: batch-invariant images
    base = manifest_pin(
        TEMPLATES_DIR / "sdxl-base.yaml", tiny_folders["sdxl"], name="tiny-sdxl-base", manifests_dir=tmp_path
    )
    setup = pipeline_setup(base, device="cpu")  # 1024x1024 defaults
    assert setup.vae_slicing and setup.vae_tiling
    assert cast(Any, pipeline_load(base, device="cpu")).vae.use_tiling
    wan = pipeline_setup(tiny_manifests["wan"], device="cpu")  # video: only when a manifest asks
    assert not wan.vae_slicing and not wan.vae_tiling


def test_family_load_options_reach_the_pipeline(tiny_manifests: dict[str, ModelManifest]) -> None:
    manifest = tiny_manifests["sdxl"]
    assert dict(manifest.load_options) == {"add_watermarker": False}
    assert cast(Any, pipeline_load(manifest, device="cpu")).watermark is None
    assert dict(tiny_manifests["flux"].call_options) == {"max_sequence_length": 256}


def test_every_family_has_a_template_and_a_tiny_pipeline() -> None:
    templates = {p.stem for p in TEMPLATES_DIR.glob("*.yaml")}
    assert {family.template for family in TINY_FAMILIES.values()} <= templates
