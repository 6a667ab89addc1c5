"""Batched generation with a loaded diffusers pipeline.

Each variant gets its own `torch.Generator` seeded with its seed, so its image does not depend
on which batch it was generated in.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from PIL import Image

from pipeline.errors import GenerationError
from prompt_library.specs import Variant


def batch_check(variants: Sequence[Variant]) -> None:
    """A batch must share model and parameters: they are one call to the pipeline."""
    if not variants:
        raise GenerationError("a batch needs at least one variant", variant_key=None)
    first = variants[0]
    for v in variants[1:]:
        if (v.model_manifest_hash, v.params, v.output) != (first.model_manifest_hash, first.params, first.output):
            raise GenerationError(
                f"variant {v.key[:12]} has other model or parameters than {first.key[:12]}; "
                "batch variants by model and parameters",
                variant_key=v.key,
            )


def images_generate(
    pipe: Any, variants: Sequence[Variant], *, call_options: Mapping[str, Any] | None = None
) -> list[Image.Image]:
    """Generate one image per variant in a single pipeline call, at the output spec's size.

    The model draws at its native size; the result is resampled to the output size (Lanczos).
    `call_options` are the model family's extra call arguments from its manifest (FLUX's
    ``max_sequence_length``, say).
    """
    batch_check(variants)
    first = variants[0]
    generators = [torch.Generator(device="cpu").manual_seed(v.seed) for v in variants]
    with torch.inference_mode():
        result = pipe(
            prompt=[v.prompt for v in variants],
            negative_prompt=[v.negative_prompt for v in variants] if first.params.guidance > 1 else None,
            num_inference_steps=first.params.steps,
            guidance_scale=first.params.guidance,
            width=first.params.width,
            height=first.params.height,
            generator=generators,
            output_type="pil",
            **dict(call_options or {}),
        )
    images: list[Image.Image] = list(result.images)
    if len(images) != len(variants):
        raise GenerationError(f"pipeline returned {len(images)} images for {len(variants)} variants", variant_key=None)
    size = (first.output.width, first.output.height)
    return [
        img.convert("RGB") if img.size == size else img.convert("RGB").resize(size, Image.Resampling.LANCZOS)
        for img in images
    ]
