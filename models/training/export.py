"""Turn a training checkpoint into the shipped ``embedded`` folder and its pinned manifest.

The export is a standard diffusers ``StableDiffusionPipeline`` folder (safetensors) with the EMA
weights; ``scheduler_replace`` swaps the sampler saved in an exported folder and keeps its weights.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from diffusers import StableDiffusionPipeline

from models.errors import TrainingError
from models.training.build_tiny_random import sd_manifest_text
from models.training.catalog_domain import SIZE
from models.training.recipe import (
    MODEL_NAME,
    SAMPLING_FIELDS,
    TrainConfig,
    sampling_scheduler_build,
    text_encoder_build,
    tokenizer_build,
    unet_build,
)
from models.training.stages import vae_load


def pipeline_from_checkpoint(*, config: TrainConfig, work: Path, checkpoint: Path | None = None) -> Any:
    """A StableDiffusionPipeline with the EMA weights of ``checkpoint`` (default: the latest).

    The architecture and noise schedule are the checkpoint's own where it records them (every
    checkpoint since ``unet_layers`` and ``prediction`` were added), else ``config``'s; how it
    samples (``SAMPLING_FIELDS``: the sampler, steps and guidance) is ``config``'s.
    """
    state = torch.load(checkpoint or work / "unet.pt", weights_only=False)
    if "config" in state:
        saved: dict[str, Any] = {
            k: tuple(v) if isinstance(v, list) else v for k, v in state["config"].items() if k not in SAMPLING_FIELDS
        }
        config = replace(config, **saved)
    tokenizer = tokenizer_build()
    unet = unet_build(config)
    text_encoder = text_encoder_build(config, tokenizer)
    params = [*unet.parameters(), *text_encoder.parameters()]
    with torch.no_grad():
        for p, e in zip(params, state["ema"], strict=True):
            p.copy_(e)
    return StableDiffusionPipeline(
        vae=vae_load(config=config, work=work),
        text_encoder=text_encoder.eval(),
        tokenizer=tokenizer,
        unet=unet.eval(),
        scheduler=sampling_scheduler_build(config),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


def pipeline_export(*, config: TrainConfig, work: Path, out: Path, checkpoint: Path | None = None) -> Path:
    """Save the pipeline folder (safetensors), keeping a README.md and contact sheet already there."""
    pipe = pipeline_from_checkpoint(config=config, work=work, checkpoint=checkpoint)
    kept = {name: (out / name).read_bytes() for name in ("README.md", "contact-sheet.png") if (out / name).exists()}
    if out.exists():
        shutil.rmtree(out)
    pipe.save_pretrained(out, safe_serialization=True)
    for name, content in kept.items():
        (out / name).write_bytes(content)
    for path in out.rglob("*"):  # safetensors writes 0600; the files are meant to be shared
        path.chmod(0o755 if path.is_dir() else 0o644)
    return out


def manifest_text(*, config: TrainConfig, model_dir: Path, manifest_path: Path, notes: str) -> str:
    """The manifest YAML pinning every file now in ``model_dir``, with the bench's defaults."""
    return sd_manifest_text(
        name=MODEL_NAME,
        model_dir=model_dir,
        manifest_path=manifest_path,
        header=(
            "Written by `python -m models.training.train_embedded manifest` (or `export --manifest`); "
            "re-pin, do not edit."
        ),
        defaults=f"{{steps: {config.steps}, guidance: {config.guidance}, width: {SIZE}, height: {SIZE}}}",
        notes=notes,
    )


NOTES = (
    "Trained on a CPU by `python -m models.training.train_embedded` on the procedural catalog domain of "
    "models/training/catalog_domain.py (5 kinds x 6 colours x 4 scenes, 12 combinations held out): 64x64 "
    "images, AutoencoderKL with scale factor 4, UNet (32, 64, 128) with (1, 2, 1) layers and "
    "cross-attention at 8x8 and 4x4, v-prediction on a zero-terminal-SNR schedule, 2-layer 64-wide "
    "CLIP text encoder, Euler sampler with trailing spacing. Knows only its "
    "domain; see models/embedded/README.md for the recipe and bench figures."
)


def scheduler_replace(*, config: TrainConfig, out: Path) -> Path:
    """Save ``config``'s sampler into an exported folder, keeping its weights.

    The schedule the weights were trained on (the prediction type, and with it the betas) is read
    from the folder's own scheduler config, so only the sampler changes.
    """
    folder = out / "scheduler"
    try:
        current = json.loads((folder / "scheduler_config.json").read_text(encoding="utf-8"))
        prediction = current["prediction_type"]
    except (OSError, ValueError, KeyError) as exc:
        raise TrainingError(
            setting="out", value=str(out), problem=f"no readable scheduler/scheduler_config.json ({exc})"
        ) from None
    scheduler = sampling_scheduler_build(replace(config, prediction=prediction))
    shutil.rmtree(folder)
    scheduler.save_pretrained(folder)
    index_path = out / "model_index.json"
    index = json.loads(index_path.read_text(encoding="utf-8"))
    index["scheduler"] = ["diffusers", type(scheduler).__name__]
    index_path.write_text(json.dumps(index, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    for path in folder.rglob("*"):
        path.chmod(0o644)
    return out
