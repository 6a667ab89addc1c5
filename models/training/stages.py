"""The embedded model's three training stages, each reproducible from the seed and resumable.

1. ``vae_train``: the autoencoder, on drawn pictures of the seen combinations (or ``vae_reuse``
   keeps a shipped one's), then frozen. 2. ``latents_encode``: the training set's latents, drawn
   once. 3. ``unet_train``: UNet and text encoder jointly, with v-prediction on betas rescaled to a
   zero terminal SNR, a loss weight capped at min-SNR's gamma, 10% empty captions for
   classifier-free guidance, AdamW with a cosine decay over the last third of the steps and an EMA
   of the weights (what gets exported). Checkpoints and logs go to the work folder; rerunning a
   stage continues from its last checkpoint. Held-out combinations are never drawn.
"""

from __future__ import annotations

import json
import math
import random
import shutil
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from diffusers import AutoencoderKL
from transformers import CLIPTextModel, CLIPTokenizer

from models.errors import TrainingError
from models.training.catalog_domain import HELD_OUT, SEEN, Combo, catalog_batch
from models.training.recipe import (
    TrainConfig,
    noise_scheduler_build,
    text_encoder_build,
    tokenizer_build,
    unet_build,
    vae_build,
)

# --- helpers -----------------------------------------------------------------------------------


def _log(message: str, *, log_path: Path) -> None:
    line = f"{time.strftime('%H:%M:%S')} {message}"
    print(line, flush=True)
    with log_path.open("a", encoding="utf-8") as handle:
        handle.write(line + "\n")


def _eta(seconds: float, done: int, total: int) -> str:
    left = seconds / max(1, done) * max(0, total - done)
    return f"{int(left // 60)}m{int(left % 60):02d}s"


def _seen_combos(rng: random.Random, count: int) -> list[Combo]:
    return [rng.choice(SEEN) for _ in range(count)]


def _held_out_guard() -> None:
    if any(c in HELD_OUT for c in SEEN):
        raise RuntimeError("a held-out combination is in the training set")


def work_dir_make(work: Path) -> Path:
    """The work folder, created if missing."""
    work.mkdir(parents=True, exist_ok=True)
    return work


# --- stage 1: the autoencoder ------------------------------------------------------------------


def vae_train(*, config: TrainConfig, steps: int, minutes: float, work: Path) -> Path:
    """Train the autoencoder on drawn (seen) pictures: L1 + L2 reconstruction and a small KL."""
    work = work_dir_make(work)
    log_path, ckpt_path = work / "vae.log", work / "vae.pt"
    torch.manual_seed(config.seed)
    vae = vae_build(config)
    optimizer = torch.optim.AdamW(vae.parameters(), lr=config.vae_lr, weight_decay=0.0)
    step, rng = 0, random.Random(config.seed)
    if ckpt_path.exists():
        state = torch.load(ckpt_path, weights_only=False)
        if "optimizer" not in state:
            raise TrainingError(
                setting="checkpoint",
                value=str(ckpt_path),
                problem="holds an autoencoder taken with --reuse (nothing to resume); delete it to train one",
            )
        vae.load_state_dict(state["vae"])
        optimizer.load_state_dict(state["optimizer"])
        step, rng = state["step"], state["rng"]
        torch.set_rng_state(state["torch_rng"])
        _log(f"resumed vae at step {step}", log_path=log_path)
    start, first, running = time.time(), step, 0.0
    vae.train()
    while step < steps and time.time() - start < minutes * 60:
        pixels = torch.from_numpy(catalog_batch(_seen_combos(rng, config.vae_batch), rng=rng))
        posterior = vae.encode(pixels).latent_dist
        recon = vae.decode(posterior.sample()).sample
        rec = (recon - pixels).abs().mean() + (recon - pixels).pow(2).mean()
        kl = posterior.kl().mean() / pixels[0].numel()
        loss = rec + config.vae_kl_weight * kl
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        step += 1
        running = 0.98 * running + 0.02 * rec.item() if step > first + 1 else rec.item()
        if step % 25 == 0:
            elapsed = time.time() - start
            budget_steps = min(steps, first + int(minutes * 60 / (elapsed / (step - first))))
            _log(
                f"vae step {step} rec {running:.4f} kl {kl.item():.2f} {elapsed:.0f}s "
                f"eta {_eta(elapsed, step - first, budget_steps - first)}",
                log_path=log_path,
            )
        if step % config.checkpoint_every == 0:
            _vae_save(vae, optimizer, step, rng, ckpt_path)
    _vae_save(vae, optimizer, step, rng, ckpt_path)
    _log(f"vae stopped at step {step} after {time.time() - start:.0f}s", log_path=log_path)
    return ckpt_path


def vae_reuse(*, model_dir: Path, work: Path) -> Path:
    """Start from the autoencoder of an exported ``model_dir`` instead of training one.

    The UNet is what a new run changes; the shipped autoencoder was trained by ``vae_train``
    on the same seen combinations (the held-out set is the same), so it is kept as it is.
    """
    work = work_dir_make(work)
    ckpt_path = work / "vae.pt"
    vae = AutoencoderKL.from_pretrained(model_dir / "vae")
    state = {"vae": vae.state_dict(), "step": 0, "reused_from": str(model_dir)}
    torch.save(state, ckpt_path)
    _log(f"vae taken from {model_dir / 'vae'}", log_path=work / "vae.log")
    return ckpt_path


def _lr_at(config: TrainConfig, step: int, total: int) -> float:
    """Warm-up, constant, then a cosine down to ``lr_final`` over the last ``decay_share`` of ``total``."""
    if step < config.warmup:
        return config.lr * (step + 1) / config.warmup
    decay_start = total * (1 - config.decay_share)
    if step < decay_start or total <= decay_start:
        return config.lr
    progress = min(1.0, (step - decay_start) / (total - decay_start))
    return config.lr_final + (config.lr - config.lr_final) * 0.5 * (1 + math.cos(math.pi * progress))


def _vae_save(vae: Any, optimizer: Any, step: int, rng: random.Random, path: Path) -> None:
    state = {
        "vae": vae.state_dict(),
        "optimizer": optimizer.state_dict(),
        "step": step,
        "rng": rng,
        "torch_rng": torch.get_rng_state(),
    }
    torch.save(state, path.with_suffix(".tmp"))
    path.with_suffix(".tmp").replace(path)


def vae_load(*, config: TrainConfig, work: Path) -> Any:
    """The trained (frozen) autoencoder, with its latent ``scaling_factor`` set."""
    vae = vae_build(config)
    vae.load_state_dict(torch.load(work / "vae.pt", weights_only=False)["vae"])
    scale_path = work / "vae_scale.json"
    if scale_path.exists():
        vae.register_to_config(scaling_factor=json.loads(scale_path.read_text())["scaling_factor"])
    return vae.eval().requires_grad_(False)


# --- stage 2: latents of the training set ------------------------------------------------------


def latents_encode(*, config: TrainConfig, work: Path) -> Path:
    """Draw ``images_per_combo`` pictures of every seen combination and store their latents."""
    _held_out_guard()
    vae = vae_load(config=config, work=work)
    rng = random.Random(config.seed + 1)
    combos = [c for c in SEEN for _ in range(config.images_per_combo)]
    means, stds = [], []
    with torch.inference_mode():
        for at in range(0, len(combos), 64):
            pixels = torch.from_numpy(catalog_batch(combos[at : at + 64], rng=rng))
            dist = vae.encode(pixels).latent_dist
            means.append(dist.mean)
            stds.append(dist.std)
    mean, std = torch.cat(means), torch.cat(stds)
    sample = mean + std * torch.randn_like(std)
    scaling = 1.0 / float(sample.std())
    (work / "vae_scale.json").write_text(json.dumps({"scaling_factor": scaling}))
    path = work / "latents.pt"
    torch.save({"mean": mean.half(), "std": std.half(), "captions": [c.caption for c in combos]}, path)
    _log(
        f"encoded {len(combos)} pictures; latent mean {float(sample.mean()):.3f} scaling_factor {scaling:.4f}",
        log_path=work / "unet.log",
    )
    return path


# --- stage 3: UNet and text encoder ------------------------------------------------------------


def _token_ids(tokenizer: CLIPTokenizer, captions: Sequence[str]) -> torch.Tensor:
    """Token ids exactly as StableDiffusionPipeline makes them (padded to ``model_max_length``)."""
    return tokenizer(
        list(captions),
        padding="max_length",
        max_length=tokenizer.model_max_length,
        truncation=True,
        return_tensors="pt",
    ).input_ids


def unet_train(*, config: TrainConfig, steps: int, minutes: float, work: Path) -> Path:
    """Train UNet and text encoder jointly on the stored latents; checkpoint and log as it goes."""
    log_path, ckpt_path = work / "unet.log", work / "unet.pt"
    data = torch.load(work / "latents.pt", weights_only=False)
    vae = vae_load(config=config, work=work)
    scaling = float(vae.config.scaling_factor)
    tokenizer = tokenizer_build()
    captions: list[str] = data["captions"]
    unique = sorted(set(captions))
    unique_ids = _token_ids(tokenizer, ["", *unique])
    caption_index = torch.tensor([unique.index(c) + 1 for c in captions])

    torch.manual_seed(config.seed)
    unet = unet_build(config)
    text_encoder = text_encoder_build(config, tokenizer)
    params = [*unet.parameters(), *text_encoder.parameters()]
    ema = [p.detach().clone() for p in params]
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=1e-2)
    noise = noise_scheduler_build(config)
    step = 0
    generator = torch.Generator().manual_seed(config.seed)
    if ckpt_path.exists():
        state = torch.load(ckpt_path, weights_only=False)
        unet.load_state_dict(state["unet"])
        text_encoder.load_state_dict(state["text_encoder"])
        optimizer.load_state_dict(state["optimizer"])
        for e, saved in zip(ema, state["ema"], strict=True):
            e.copy_(saved)
        step = state["step"]
        generator.set_state(state["generator"])
        _log(f"resumed unet at step {step}", log_path=log_path)
    start, first, running = time.time(), step, 0.0
    unet.train()
    text_encoder.train()
    while step < steps and time.time() - start < minutes * 60:
        # 1. A batch of stored latents (sampled from their posterior), some captions emptied.
        pick = torch.randint(0, len(captions), (config.batch,), generator=generator)
        mean, std = data["mean"][pick].float(), data["std"][pick].float()
        latents = (mean + std * torch.randn(mean.shape, generator=generator)) * scaling
        which = caption_index[pick].clone()
        which[torch.rand(config.batch, generator=generator) < config.empty_caption_share] = 0
        # 2. Noise them at random timesteps; predict the noise; min-SNR-weighted MSE.
        t = torch.randint(0, noise.config.num_train_timesteps, (config.batch,), generator=generator)
        eps = torch.randn(latents.shape, generator=generator)
        noisy = noise.add_noise(latents, eps, t)
        hidden = text_encoder(unique_ids[which])[0]
        pred = unet(noisy, t, encoder_hidden_states=hidden).sample
        target, weight = _target_and_weight(config, noise, latents, eps, t)
        loss = (weight * (pred - target).pow(2).mean(dim=(1, 2, 3))).mean()
        # 3. Step with warm-up, then the EMA.
        for group in optimizer.param_groups:
            group["lr"] = _lr_at(config, step, steps)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        step += 1
        decay = min(config.ema_decay, (1 + step) / (10 + step))
        with torch.no_grad():
            for e, p in zip(ema, params, strict=True):
                e.lerp_(p.detach(), 1 - decay)
        running = 0.98 * running + 0.02 * loss.item() if step > first + 1 else loss.item()
        if step % 25 == 0:
            elapsed = time.time() - start
            per = elapsed / (step - first)
            budget_steps = min(steps, first + int(minutes * 60 / per))
            _log(
                f"unet step {step} loss {running:.4f} lr {_lr_at(config, step, steps):.2e} "
                f"{elapsed:.0f}s ({per:.2f}s/step) "
                f"eta {_eta(elapsed, step - first, budget_steps - first)}",
                log_path=log_path,
            )
        if step % config.checkpoint_every == 0:
            _unet_save(config, unet, text_encoder, ema, optimizer, step, generator, ckpt_path)
    _unet_save(config, unet, text_encoder, ema, optimizer, step, generator, ckpt_path)
    _log(f"unet stopped at step {step} after {time.time() - start:.0f}s", log_path=log_path)
    return ckpt_path


def _target_and_weight(
    config: TrainConfig, noise: Any, latents: torch.Tensor, eps: torch.Tensor, t: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """What the UNet predicts, and the per-sample loss weight that caps how much low-noise steps count.

    Both weights give the clean-latent error a weight of at most ``min_snr_gamma``. For epsilon
    that is min-SNR (weight min(SNR, gamma) / SNR); for v the cap is on SNR + 1 (weight
    min(SNR + 1, gamma) / (SNR + 1)), which keeps full weight at the last timestep, where the SNR
    is zero and only the prompt says what to draw (min(SNR, gamma) / (SNR + 1) would make it 0).
    """
    alphas = noise.alphas_cumprod[t]
    snr = alphas / (1 - alphas)
    gamma = config.min_snr_gamma
    if config.prediction == "v_prediction":
        return noise.get_velocity(latents, eps, t), torch.clamp(snr + 1, max=gamma) / (snr + 1)
    return eps, torch.clamp(snr, max=gamma) / snr


def _unet_save(
    config: TrainConfig,
    unet: Any,
    text_encoder: CLIPTextModel,
    ema: list[torch.Tensor],
    optimizer: Any,
    step: int,
    generator: torch.Generator,
    path: Path,
) -> None:
    state = {
        "unet": unet.state_dict(),
        "text_encoder": text_encoder.state_dict(),
        "ema": ema,
        "optimizer": optimizer.state_dict(),
        "step": step,
        "generator": generator.get_state(),
        "config": asdict(config),
    }
    torch.save(state, path.with_suffix(".tmp"))
    path.with_suffix(".tmp").replace(path)
    shutil.copyfile(path, path.with_name(f"unet-{step:06d}.pt"))
