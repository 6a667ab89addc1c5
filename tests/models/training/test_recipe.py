"""The embedded model's recipe: its training and sampling schedules, and what it refuses."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from models.errors import TrainingError
from models.training.recipe import CONFIG, noise_scheduler_build, sampling_scheduler_build

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
    with pytest.raises(TrainingError, match="prediction = 'sample'"):
        noise_scheduler_build(replace(CONFIG, prediction="sample"))


def test_the_shipped_sampler_is_euler_and_dpm_solver_can_be_chosen() -> None:
    euler, dpm = sampling_scheduler_build(V_CONFIG), sampling_scheduler_build(replace(V_CONFIG, sampler="dpm++"))
    assert (type(euler).__name__, type(dpm).__name__) == ("EulerDiscreteScheduler", "DPMSolverMultistepScheduler")
    for scheduler in (euler, dpm):
        assert scheduler.config.timestep_spacing == "trailing" and scheduler.config.rescale_betas_zero_snr
    with pytest.raises(TrainingError, match=r"sampler = 'heun': expected one of euler, dpm\+\+"):
        sampling_scheduler_build(replace(V_CONFIG, sampler="heun"))
