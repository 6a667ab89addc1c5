"""A super-resolution model as a step of the output spec, pinned by a manifest like the adapters.

An upscaler is a diffusers ``StableDiffusionUpscalePipeline`` folder (``save_pretrained``),
pinned in ``models/manifests/adapters/<name>.yaml`` with ``kind: upscaler`` and
``family: stable-diffusion-upscale``::

    python -m models.adapters pin catalog-x4 path/to/folder --kind upscaler \\
        --family stable-diffusion-upscale --license openrail++ --weight-name model_index.json

A template names it in its output (``output: {..., upscale: {name: catalog-x4}}``): the model's
drawing is enlarged by it, guided by the image's own prompt and seed, then brought to the exact
output size with Lanczos; the step is recorded as ``c2pa.resized`` with the upscaler's name as
its method. Without one, Lanczos alone. Loaded once per process; nothing is downloaded.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from PIL import Image

from models.adapters import AdapterManifest, adapter_manifest_load, adapter_verify
from models.errors import ManifestError

logger = logging.getLogger("greenlight.models")

UPSCALER_CLASSES = ("StableDiffusionUpscalePipeline",)
UPSCALE_STEPS = 20  # the upscaler's own denoising steps, capped by the template's
_LOCK = threading.Lock()
_LOADED: dict[tuple[str, Path], Any] = {}


def upscaler_manifest_load(name: str, *, manifests_dir: Path, pinned: str | None = None) -> AdapterManifest:
    """The manifest of upscaler ``name``; ``pinned`` refuses one whose hash changed since."""
    manifest = adapter_manifest_load(name, manifests_dir=manifests_dir)
    if manifest.kind != "upscaler":
        raise ManifestError(manifest.path, f"field 'kind' is {manifest.kind!r}; an upscaler is kind 'upscaler'")
    if pinned is not None and manifest.manifest_hash != pinned:
        raise ManifestError(
            manifest.path,
            f"manifest hash is {manifest.manifest_hash[:12]}… but the template version was loaded with "
            f"{pinned[:12]}…; load a new template version for the new upscaler",
        )
    return manifest


def upscaler_load(manifest: AdapterManifest) -> Any:
    """The upscaler pipeline of ``manifest``, verified and loaded once per process (CPU, float32)."""
    key = (manifest.manifest_hash, manifest.folder)
    with _LOCK:
        loaded = _LOADED.get(key)
        if loaded is None:
            adapter_verify(manifest)
            os.environ["HF_HUB_OFFLINE"] = "1"
            import diffusers

            loaded = diffusers.DiffusionPipeline.from_pretrained(
                str(manifest.folder), local_files_only=True, use_safetensors=True
            )
            if type(loaded).__name__ not in UPSCALER_CLASSES:
                raise ManifestError(
                    manifest.path,
                    f"folder holds a {type(loaded).__name__}; an upscaler is one of {', '.join(UPSCALER_CLASSES)}",
                )
            loaded.set_progress_bar_config(disable=True)
            _LOADED[key] = loaded
            logger.info("loaded upscaler %s", manifest.name)
        return loaded


def images_upscale(
    upscaler: Any, images: Sequence[Image.Image], *, prompts: Sequence[str], seeds: Sequence[int], steps: int
) -> list[Image.Image]:
    """Enlarge ``images`` in one call, each guided by its prompt and seeded with its own seed."""
    import torch

    with _LOCK, torch.inference_mode():
        result = upscaler(
            prompt=list(prompts),
            image=[image.convert("RGB") for image in images],
            num_inference_steps=max(1, min(steps, UPSCALE_STEPS)),
            guidance_scale=0.0,
            generator=[torch.Generator(device="cpu").manual_seed(seed) for seed in seeds],
            output_type="pil",
        )
    return [image.convert("RGB") for image in result.images]
