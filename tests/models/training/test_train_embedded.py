from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from diffusers import StableDiffusionPipeline

from models.catalog_domain import SEEN
from models.train_embedded import (
    CONFIG,
    _layers_parse,
    _target_and_weight,
    noise_scheduler_build,
    pipeline_from_checkpoint,
    sampling_scheduler_build,
    scheduler_replace,
    unet_train,
    vae_reuse,
)

V_CONFIG = replace(CONFIG, prediction="v_prediction")
EPS_CONFIG = replace(CONFIG, prediction="epsilon")


def test_v_prediction_trains_and_samples_on_a_zero_terminal_snr_schedule() -> None:
    noise, sampler = noise_scheduler_build(V_CONFIG), sampling_scheduler_build(V_CONFIG)
    assert float(noise.alphas_cumprod[-1]) == 0.0  # pure noise at the last timestep
    assert noise.config.prediction_type == sampler.config.prediction_type == "v_prediction"
    assert sampler.config.rescale_betas_zero_snr and sampler.config.timestep_spacing == "trailing"
    assert torch.allclose(sampler.betas, noise.betas)
    sampler.set_timesteps(20)
    assert int(sampler.timesteps[0]) == 999  # sampling starts where training ends


def test_epsilon_keeps_stable_diffusions_schedule() -> None:
    noise = noise_scheduler_build(EPS_CONFIG)
    assert noise.config.prediction_type == "epsilon" and not noise.config.rescale_betas_zero_snr
    assert 0.004 < float(noise.alphas_cumprod[-1]) < 0.005


def test_an_unknown_prediction_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="prediction = 'sample'"):
        noise_scheduler_build(replace(CONFIG, prediction="sample"))


def test_the_v_loss_keeps_full_weight_where_only_the_prompt_is_left() -> None:
    noise = noise_scheduler_build(V_CONFIG)
    latents, eps = torch.randn(3, 4, 16, 16), torch.randn(3, 4, 16, 16)
    t = torch.tensor([999, 500, 0])
    target, weight = _target_and_weight(V_CONFIG, noise, latents, eps, t)
    assert torch.allclose(target, noise.get_velocity(latents, eps, t))
    assert torch.allclose(target[0], -latents[0])  # at zero SNR the velocity is the clean latent, negated
    assert weight[0] == 1.0 and weight[1] == 1.0  # SNR + 1 under gamma: full weight
    snr = noise.alphas_cumprod[0] / (1 - noise.alphas_cumprod[0])
    assert torch.isclose(weight[2], CONFIG.min_snr_gamma / (snr + 1))  # nearly clean: capped


def test_the_epsilon_loss_is_min_snr() -> None:
    noise = noise_scheduler_build(EPS_CONFIG)
    latents, eps = torch.randn(2, 4, 16, 16), torch.randn(2, 4, 16, 16)
    target, weight = _target_and_weight(EPS_CONFIG, noise, latents, eps, torch.tensor([999, 0]))
    assert torch.equal(target, eps)
    assert weight[0] == 1.0 and weight[1] < 0.01


@pytest.mark.parametrize(
    ("text", "problem"),
    [("1,x,2", "whole numbers"), ("1,2", "3 numbers"), ("1,0,1", "at least 1")],
)
def test_bad_layer_counts_are_refused_naming_the_value(text: str, problem: str) -> None:
    with pytest.raises(SystemExit, match=f"--layers = '{text}'.*{problem}"):
        _layers_parse(text)


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


def test_the_shipped_sampler_is_euler_and_dpm_solver_can_be_chosen() -> None:
    euler, dpm = sampling_scheduler_build(V_CONFIG), sampling_scheduler_build(replace(V_CONFIG, sampler="dpm++"))
    assert (type(euler).__name__, type(dpm).__name__) == ("EulerDiscreteScheduler", "DPMSolverMultistepScheduler")
    for scheduler in (euler, dpm):
        assert scheduler.config.timestep_spacing == "trailing" and scheduler.config.rescale_betas_zero_snr
    with pytest.raises(ValueError, match=r"sampler = 'heun': expected one of euler, dpm\+\+"):
        sampling_scheduler_build(replace(V_CONFIG, sampler="heun"))


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
    with pytest.raises(SystemExit, match=r"scheduler_config.json: no readable scheduler config"):
        scheduler_replace(config=V_CONFIG, out=out)
