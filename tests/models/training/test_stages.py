"""The training stages' loss: what the UNet predicts and how much each timestep counts."""

from __future__ import annotations

from dataclasses import replace

import torch

from models.training.recipe import CONFIG, noise_scheduler_build
from models.training.stages import _target_and_weight

V_CONFIG = replace(CONFIG, prediction="v_prediction")
EPS_CONFIG = replace(CONFIG, prediction="epsilon")


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
