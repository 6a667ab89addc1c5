"""Exporting a checkpoint to a diffusers folder, and swapping an exported folder's sampler."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from diffusers import StableDiffusionPipeline

from models.errors import TrainingError
from models.training.catalog_domain import SEEN
from models.training.export import pipeline_from_checkpoint, scheduler_replace
from models.training.recipe import CONFIG
from models.training.stages import unet_train, vae_reuse

V_CONFIG = replace(CONFIG, prediction="v_prediction")
EPS_CONFIG = replace(CONFIG, prediction="epsilon")


def test_a_checkpoint_exports_with_its_own_architecture_and_schedule(tmp_path: Path) -> None:
    # Two steps of the real training loop on a handful of latents (the shipped autoencoder,
    # reused), then an export asked for with another config: the checkpoint's own layer
    # counts and v-prediction schedule are what come out.
    vae_reuse(model_dir=Path("models/embedded"), work=tmp_path)
    (tmp_path / "vae_scale.json").write_text(json.dumps({"scaling_factor": 0.3164}))
    captions = [combo.caption for combo in SEEN[:4]]
    torch.save(
        {"mean": torch.zeros(4, 4, 16, 16).half(), "std": torch.ones(4, 4, 16, 16).half(), "captions": captions},
        tmp_path / "latents.pt",
    )
    trained = replace(V_CONFIG, unet_layers=(1, 2, 1), batch=2, warmup=1, sampler="dpm++", steps=12)
    unet_train(config=trained, steps=2, minutes=5, work=tmp_path)
    assert (tmp_path / "unet-000002.pt").exists()

    pipe = pipeline_from_checkpoint(config=replace(EPS_CONFIG, unet_layers=(1, 1, 1)), work=tmp_path)
    assert list(pipe.unet.config.layers_per_block) == [1, 2, 1]
    assert pipe.scheduler.config.prediction_type == "v_prediction"
    assert pipe.scheduler.config.rescale_betas_zero_snr
    # how it samples is the export's config, not what the training run recorded
    assert type(pipe.scheduler).__name__ == "EulerDiscreteScheduler"
    with torch.inference_mode():
        image = pipe("a red mug on a wooden table", num_inference_steps=2, height=64, width=64).images[0]
    assert image.size == (64, 64)


def test_the_scheduler_stage_swaps_the_sampler_and_keeps_the_folders_schedule(tmp_path: Path) -> None:
    out = tmp_path / "model"
    shutil.copytree(Path("models/embedded"), out)
    weights = {p.relative_to(out): p.read_bytes() for p in out.rglob("*.safetensors")}
    # asked for epsilon, but the folder's weights predict v: the folder's schedule wins
    scheduler_replace(config=replace(EPS_CONFIG, sampler="dpm++"), out=out)
    saved = json.loads((out / "scheduler" / "scheduler_config.json").read_text())
    assert saved["_class_name"] == "DPMSolverMultistepScheduler"
    assert (saved["prediction_type"], saved["rescale_betas_zero_snr"]) == ("v_prediction", True)
    index = json.loads((out / "model_index.json").read_text())
    assert index["scheduler"] == ["diffusers", "DPMSolverMultistepScheduler"]
    assert {p.relative_to(out): p.read_bytes() for p in out.rglob("*.safetensors")} == weights
    pipe = StableDiffusionPipeline.from_pretrained(out, local_files_only=True)
    assert type(pipe.scheduler).__name__ == "DPMSolverMultistepScheduler"
    (out / "scheduler" / "scheduler_config.json").unlink()
    with pytest.raises(TrainingError, match=r"^out = '.*model': no readable scheduler/scheduler_config.json"):
        scheduler_replace(config=V_CONFIG, out=out)
