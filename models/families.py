"""The model families Greenlight knows: the pipelines each loads, its geometry, its options.

A manifest names one family (``family: flux``); what the family table says decides which pipeline
classes the manifest may name, how sizes and frame counts are checked when a model's own config
cannot be read, which dtype CUDA runs by default, and which extra options the manifest may set.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType


@dataclass(frozen=True)
class FamilyOption:
    """A family-specific manifest option: ``load`` goes to ``from_pretrained``, ``call`` to each
    pipeline call, ``component-dtype`` sets one component's dtype on CUDA."""

    kind: str
    kind_of_value: type
    low: int | None = None
    high: int | None = None


@dataclass(frozen=True)
class Family:
    """What Greenlight knows about a model family: the pipelines it loads, its geometry, and the
    options a manifest of that family may set."""

    pipelines: tuple[str, ...]
    vae_scale: int  # pixels per latent cell, when the model's VAE config cannot be read
    patch: int  # latent cells per side of one transformer token: FLUX packs 2x2, Wan patches 2x2
    temporal_scale: int | None  # frames per latent frame (video families), when unreadable
    prefers_bf16: bool  # float16 overflows in these models' activations
    vae_savers_auto: bool  # switch VAE slicing and tiling on by themselves for large outputs
    options: Mapping[str, FamilyOption]
    # What the pipeline class itself demands of a size, whatever the VAE: diffusers' Stable
    # Diffusion pipelines refuse any side that is not a multiple of 8.
    pipeline_multiple: int = 1


FAMILIES: Mapping[str, Family] = MappingProxyType(
    {
        "stable-diffusion": Family(
            pipelines=("StableDiffusionPipeline",),
            vae_scale=8,
            patch=1,
            temporal_scale=None,
            prefers_bf16=False,
            vae_savers_auto=True,
            pipeline_multiple=8,
            options=MappingProxyType({}),
        ),
        "stable-diffusion-xl": Family(
            pipelines=("StableDiffusionXLPipeline",),
            vae_scale=8,
            patch=1,
            temporal_scale=None,
            prefers_bf16=False,
            vae_savers_auto=True,
            # Greenlight marks images itself; SDXL's own invisible watermark would be a second one.
            pipeline_multiple=8,
            options=MappingProxyType({"add_watermarker": FamilyOption("load", bool)}),
        ),
        "flux": Family(
            pipelines=("FluxPipeline",),
            vae_scale=8,
            patch=2,
            temporal_scale=None,
            prefers_bf16=True,
            vae_savers_auto=True,
            options=MappingProxyType({"max_sequence_length": FamilyOption("call", int, 1, 512)}),
        ),
        "wan": Family(
            pipelines=("WanPipeline",),
            vae_scale=8,
            patch=2,
            temporal_scale=4,
            prefers_bf16=True,
            vae_savers_auto=False,
            options=MappingProxyType(
                {
                    "max_sequence_length": FamilyOption("call", int, 1, 512),
                    "vae_dtype": FamilyOption("component-dtype", str),
                }
            ),
        ),
        # LTX-Video: one checkpoint makes text-to-video (LTXPipeline) and image-to-video
        # (LTXImageToVideoPipeline.from_pipe, the same components: IMAGE_TO_VIDEO_PIPELINES). Its
        # VAE packs 4x4 pixels per channel group and downsamples three times: 32 px and 8 frames
        # per latent cell.
        "ltx-video": Family(
            pipelines=("LTXPipeline",),
            vae_scale=32,
            patch=1,
            temporal_scale=8,
            prefers_bf16=True,
            vae_savers_auto=False,
            options=MappingProxyType(
                {
                    "max_sequence_length": FamilyOption("call", int, 1, 512),
                    # 0.9.1+ VAEs decode at a small timestep with a little noise (timestep_conditioning).
                    "decode_timestep": FamilyOption("call", float, 0, 1),
                    "decode_noise_scale": FamilyOption("call", float, 0, 1),
                }
            ),
        ),
    }
)


# The families that draw from a source image too (image-to-image, inpainting: diffusers' AutoPipelines
# for them build on the loaded components) and take weighted prompts (compel).
SOURCE_FAMILIES = ("stable-diffusion", "stable-diffusion-xl")

# The video families that animate a source photo (image-to-video), each with the diffusers class
# it builds from its loaded text-to-video components (``from_pipe``: no second copy of the weights).
IMAGE_TO_VIDEO_PIPELINES: Mapping[str, str] = MappingProxyType({"ltx-video": "LTXImageToVideoPipeline"})
IMAGE_TO_VIDEO = "image-to-video"

# The families whose text encoders take textual inversions: CLIP encoders behind diffusers'
# TextualInversionLoaderMixin (SDXL's embeddings carry one set of vectors per encoder, clip_l and
# clip_g). FLUX reads its prompt mostly through T5 and the video families through T5 alone.
TEXTUAL_INVERSION_FAMILIES = ("stable-diffusion", "stable-diffusion-xl")


def source_mode_refusal(family: str, mode: str) -> str:
    """Why a model of ``family`` cannot draw from a source image in ``mode`` ("" when it can):
    image-to-video needs a family in ``IMAGE_TO_VIDEO_PIPELINES``; every other use of a source
    (image-to-image, inpainting, a ControlNet's structure) one in ``SOURCE_FAMILIES``."""
    if mode == IMAGE_TO_VIDEO:
        if family in IMAGE_TO_VIDEO_PIPELINES:
            return ""
        return f"has no image-to-video (families with it: {', '.join(IMAGE_TO_VIDEO_PIPELINES)})"
    if family in SOURCE_FAMILIES:
        return ""
    return f"makes text-to-image only (image-to-image and inpainting: {', '.join(SOURCE_FAMILIES)})"
