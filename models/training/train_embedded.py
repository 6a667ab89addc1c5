"""Train the shipped ``embedded`` model on the procedural catalog domain, on a CPU, offline.

    python -m models.train_embedded vae    [--minutes 5]         # 1. autoencoder, then frozen
    python -m models.train_embedded vae --reuse models/embedded  # ...or keep a shipped one's
    python -m models.train_embedded encode                      # 2. latents of the training set
    python -m models.train_embedded unet --steps 8000 [--minutes 90]  # 3. UNet + text encoder (resumes)
    python -m models.train_embedded export [--out models/embedded] [--manifest]
    python -m models.train_embedded scheduler [--sampler euler] --manifest  # swap the sampler, keep the weights
    python -m models.train_embedded manifest                    # re-pin after editing the card

Every stage is reproducible from ``TrainConfig.seed`` and resumable: checkpoints and the log go to
``var/train/embedded/`` (git-ignored); rerunning a stage continues from its last checkpoint. The
result is a standard diffusers ``StableDiffusionPipeline`` folder at 64x64: a small AutoencoderKL
with scale factor 4 (16x16x4 latents), a small UNet2DConditionModel with cross-attention at 8x8
and 4x4 only (attention at high resolution is slow on a CPU) and two layers at 8x8, a 2-layer
64-wide CLIP text encoder trained jointly with the UNet, a CLIP tokenizer built offline that keeps
every domain word whole, and the exact sampling scheduler (Euler) saved to the folder.
Training uses v-prediction on betas rescaled to a zero terminal SNR, a loss weight capped at
min-SNR's gamma, 10% empty captions for classifier-free guidance, AdamW with a cosine decay over
the last third of the steps and an EMA of the weights, which is what gets exported. The defaults
are the shipped weights' recipe; ``models/embedded/README.md`` also gives the earlier runs'. Held-out combinations
(``models.catalog_domain.HELD_OUT``) are never drawn for any stage.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import shutil
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch
from diffusers import (
    AutoencoderKL,
    DDPMScheduler,
    DPMSolverMultistepScheduler,
    EulerDiscreteScheduler,
    StableDiffusionPipeline,
    UNet2DConditionModel,
)
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

from models.build_tiny_random import BOS_TOKEN, EOS_TOKEN, clip_tokenizer_build, sd_manifest_text
from models.catalog_domain import HELD_OUT, SEEN, SIZE, VOCABULARY, Combo, catalog_batch
from models.registry import MANIFESTS_DIR

MODEL_NAME = "embedded"
MODEL_DIR = Path(__file__).parent / MODEL_NAME
MANIFEST_PATH = MANIFESTS_DIR / f"{MODEL_NAME}.yaml"
WORK_DIR = Path(__file__).resolve().parent.parent / "var" / "train" / MODEL_NAME
MAX_PROMPT_TOKENS = 16  # the longest caption is 12 tokens with <|startoftext|> and <|endoftext|>
THREADS = 2


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides the trained weights (with the domain in ``models.catalog_domain``)."""

    seed: int = 0
    vae_channels: tuple[int, ...] = (16, 32, 64)
    vae_batch: int = 8
    vae_lr: float = 2e-3
    vae_kl_weight: float = 5e-4
    images_per_combo: int = 96
    unet_channels: tuple[int, ...] = (32, 64, 128)
    # Cross-attention at 16x16, 8x8 and 4x4. The shipped weights have none at 16x16; a run with it
    # (and decay_share 1/3, --steps 5600) reached a lower loss but followed prompts less well
    # (models/embedded/README.md, "Second run").
    unet_attention: tuple[bool, ...] = (False, True, True)
    # Resnet (and attention) layers per down block, at 16x16, 8x8 and 4x4; the up blocks have one more.
    # Two at 8x8, where the product's silhouette is decided (the first run had one everywhere).
    unet_layers: tuple[int, ...] = (1, 2, 1)
    # "epsilon" on SD's scaled-linear betas, or "v_prediction" with the betas rescaled to a zero
    # terminal SNR, so that sampling starts from pure noise, as training ends (no faint picture left
    # at the last timestep for the model to lean on instead of the prompt). The first two runs
    # predicted epsilon and got the colour wrong on 15-17% of the bench's seen prompts; this one on none.
    prediction: str = "v_prediction"
    text_width: int = 64
    batch: int = 32
    lr: float = 8e-4
    warmup: int = 200
    decay_share: float = 0.3333  # the last share of ``--steps`` that decays the learning rate (cosine); 0: constant
    lr_final: float = 1e-5
    empty_caption_share: float = 0.1
    min_snr_gamma: float = 5.0
    ema_decay: float = 0.999
    checkpoint_every: int = 250
    # Sampling defaults shipped in the manifest (decided from the bench, see the model card).
    steps: int = 20
    guidance: float = 7.0
    # The scheduler saved in the folder: "euler" or "dpm++". Both score alike at 20 steps; below that
    # DPM-Solver++'s second-order step, extrapolated from the blurred first prediction at sigma 4096,
    # loses the colour (12 steps: all three right on 61% of prompts; Euler 93%).
    sampler: str = "euler"


CONFIG = TrainConfig()


# --- components --------------------------------------------------------------------------------


def tokenizer_build() -> CLIPTokenizer:
    """A CLIP tokenizer, built without the hub, in which every domain word is one token."""
    tokenizer: CLIPTokenizer = clip_tokenizer_build(words=VOCABULARY, max_length=MAX_PROMPT_TOKENS)
    if tokenizer.bos_token != BOS_TOKEN or tokenizer.eos_token != EOS_TOKEN:
        raise RuntimeError("Tokenizer lost its special tokens")
    return tokenizer


def vae_build(config: TrainConfig) -> Any:
    """Three-level AutoencoderKL: 64x64x3 pixels <-> 16x16x4 latents (no attention, for speed)."""
    levels = len(config.vae_channels)
    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        block_out_channels=config.vae_channels,
        down_block_types=("DownEncoderBlock2D",) * levels,
        up_block_types=("UpDecoderBlock2D",) * levels,
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=8,
        sample_size=SIZE,
        mid_block_add_attention=False,
    )


def unet_build(config: TrainConfig) -> Any:
    """UNet on 16x16 latents; cross-attention at the levels ``unet_attention`` names (and the
    4x4 middle block). Attention at 16x16 (256 positions) costs 1.7x per step on a CPU."""
    down = tuple("CrossAttnDownBlock2D" if on else "DownBlock2D" for on in config.unet_attention)
    up = tuple("CrossAttnUpBlock2D" if on else "UpBlock2D" for on in reversed(config.unet_attention))
    return UNet2DConditionModel(
        sample_size=SIZE // 4,
        in_channels=4,
        out_channels=4,
        block_out_channels=config.unet_channels,
        layers_per_block=config.unet_layers,
        down_block_types=down,
        up_block_types=up,
        cross_attention_dim=config.text_width,
        attention_head_dim=4,  # the number of heads, in diffusers' naming
        norm_num_groups=32,
    )


def text_encoder_build(config: TrainConfig, tokenizer: CLIPTokenizer) -> CLIPTextModel:
    """A 2-layer CLIP text encoder, ``text_width`` wide."""
    return CLIPTextModel(
        CLIPTextConfig(
            vocab_size=len(tokenizer),
            hidden_size=config.text_width,
            intermediate_size=config.text_width * 2,
            num_hidden_layers=2,
            num_attention_heads=4,
            max_position_embeddings=MAX_PROMPT_TOKENS,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
    )


PREDICTIONS = ("epsilon", "v_prediction")


def _betas(config: TrainConfig) -> dict[str, Any]:
    if config.prediction not in PREDICTIONS:
        raise ValueError(f"prediction = {config.prediction!r}: expected one of {', '.join(PREDICTIONS)}")
    return {
        "num_train_timesteps": 1000,
        "beta_start": 0.00085,
        "beta_end": 0.012,
        "beta_schedule": "scaled_linear",
        "prediction_type": config.prediction,
        "rescale_betas_zero_snr": config.prediction == "v_prediction",
    }


def noise_scheduler_build(config: TrainConfig) -> Any:
    """The forward process used in training (Stable Diffusion's scaled-linear betas)."""
    return DDPMScheduler(**_betas(config), clip_sample=False)


SAMPLERS = ("euler", "dpm++")
# TrainConfig fields that decide how the exported model samples, not what was trained: an export
# takes them from the config it is given, never from the checkpoint.
SAMPLING_FIELDS = frozenset({"steps", "guidance", "sampler"})


def sampling_scheduler_build(config: TrainConfig) -> Any:
    """The sampler shipped in the folder, on the training schedule (betas, prediction type) with
    trailing spacing, so that sampling starts at the last training timestep; every value spelled
    out (FIELD-NOTES: from_config drops non-default values such as ``timestep_spacing``)."""
    if config.sampler == "euler":
        return EulerDiscreteScheduler(
            **_betas(config),
            interpolation_type="linear",
            use_karras_sigmas=False,
            timestep_spacing="trailing",
            timestep_type="discrete",
            steps_offset=1,  # unused with trailing spacing; 1 keeps diffusers from warning
            final_sigmas_type="zero",
        )
    if config.sampler != "dpm++":
        raise ValueError(f"sampler = {config.sampler!r}: expected one of {', '.join(SAMPLERS)}")
    return DPMSolverMultistepScheduler(
        **_betas(config),
        algorithm_type="dpmsolver++",
        solver_order=2,
        solver_type="midpoint",
        lower_order_final=True,
        thresholding=False,
        use_karras_sigmas=False,
        timestep_spacing="trailing",
        steps_offset=1,  # unused with trailing spacing; 1 keeps diffusers from warning
        final_sigmas_type="zero",
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


def _work_dir(work: Path) -> Path:
    work.mkdir(parents=True, exist_ok=True)
    return work


# --- stage 1: the autoencoder ------------------------------------------------------------------


def vae_train(*, config: TrainConfig, steps: int, minutes: float, work: Path) -> Path:
    """Train the autoencoder on drawn (seen) pictures: L1 + L2 reconstruction and a small KL."""
    work = _work_dir(work)
    log_path, ckpt_path = work / "vae.log", work / "vae.pt"
    torch.manual_seed(config.seed)
    vae = vae_build(config)
    optimizer = torch.optim.AdamW(vae.parameters(), lr=config.vae_lr, weight_decay=0.0)
    step, rng = 0, random.Random(config.seed)
    if ckpt_path.exists():
        state = torch.load(ckpt_path, weights_only=False)
        if "optimizer" not in state:
            raise SystemExit(f"{ckpt_path} holds an autoencoder taken with --reuse; delete it to train one")
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
    work = _work_dir(work)
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


# --- export ------------------------------------------------------------------------------------


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
        header="Written by `python -m models.train_embedded manifest` (or `export --manifest`); re-pin, do not edit.",
        defaults=f"{{steps: {config.steps}, guidance: {config.guidance}, width: {SIZE}, height: {SIZE}}}",
        notes=notes,
    )


NOTES = (
    "Trained on a CPU by `python -m models.train_embedded` on the procedural catalog domain of "
    "models/catalog_domain.py (5 kinds x 6 colours x 4 scenes, 12 combinations held out): 64x64 "
    "images, AutoencoderKL with scale factor 4, UNet (32, 64, 128) with (1, 2, 1) layers and "
    "cross-attention at 8x8 and 4x4, v-prediction on a zero-terminal-SNR schedule, 2-layer 64-wide "
    "CLIP text encoder, Euler sampler with trailing spacing. Knows only its "
    "domain; see models/embedded/README.md for the recipe and bench figures."
)


def _layers_parse(text: str) -> tuple[int, ...]:
    try:
        layers = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise SystemExit(f"--layers = {text!r}: expected whole numbers separated by commas, e.g. 1,2,2") from None
    if len(layers) != len(CONFIG.unet_channels) or min(layers) < 1:
        raise SystemExit(f"--layers = {text!r}: expected {len(CONFIG.unet_channels)} numbers of at least 1")
    return layers


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
        raise SystemExit(f"{folder / 'scheduler_config.json'}: no readable scheduler config ({exc})") from None
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


def main(argv: Sequence[str] | None = None) -> None:
    """Command-line entry point; see the module docstring."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stage", choices=("vae", "encode", "unet", "export", "scheduler", "manifest"))
    parser.add_argument("--steps", type=int, default=100_000, help="stop at this step (total, across resumes)")
    parser.add_argument("--minutes", type=float, default=35.0, help="stop after this much wall time in this run")
    parser.add_argument("--work", type=Path, default=WORK_DIR, help="checkpoints and logs")
    parser.add_argument("--checkpoint", type=Path, default=None, help="export this checkpoint, not the latest")
    parser.add_argument("--out", type=Path, default=MODEL_DIR, help="export folder")
    parser.add_argument("--manifest", action="store_true", help="also write models/manifests/embedded.yaml")
    parser.add_argument("--reuse", type=Path, default=None, help="vae: take the autoencoder of this exported folder")
    parser.add_argument(
        "--attention-16x16", action="store_true", help="unet: cross-attention at 16x16 too (the second run)"
    )
    parser.add_argument(
        "--layers",
        default=None,
        help="unet: layers per block at 16x16, 8x8, 4x4, e.g. 1,2,2 (export reads the checkpoint's)",
    )
    parser.add_argument(
        "--prediction",
        choices=PREDICTIONS,
        default=None,
        help="unet: what the UNet predicts (export reads the checkpoint's)",
    )
    parser.add_argument(
        "--decay-share", type=float, default=CONFIG.decay_share, help="unet: last share of --steps with cosine decay"
    )
    parser.add_argument(
        "--sampler",
        choices=SAMPLERS,
        default=CONFIG.sampler,
        help="export, scheduler: the sampler saved in the folder (scheduler: keeps the weights)",
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(THREADS)
    work = _work_dir(args.work)
    config = replace(
        CONFIG,
        unet_attention=(True, True, True) if args.attention_16x16 else CONFIG.unet_attention,
        decay_share=args.decay_share,
        unet_layers=_layers_parse(args.layers) if args.layers else CONFIG.unet_layers,
        prediction=args.prediction or CONFIG.prediction,
        sampler=args.sampler,
    )
    (work / "config.json").write_text(json.dumps(asdict(config), indent=1))
    if args.stage == "vae" and args.reuse is not None:
        vae_reuse(model_dir=args.reuse, work=work)
    elif args.stage == "vae":
        vae_train(config=config, steps=args.steps, minutes=args.minutes, work=work)
    elif args.stage == "encode":
        latents_encode(config=config, work=work)
    elif args.stage == "unet":
        unet_train(config=config, steps=args.steps, minutes=args.minutes, work=work)
    else:
        out = args.out
        if args.stage == "export":
            pipeline_export(config=config, work=work, out=out, checkpoint=args.checkpoint)
        if args.stage == "scheduler":
            scheduler_replace(config=config, out=out)
        if args.manifest or args.stage == "manifest":
            MANIFEST_PATH.write_text(
                manifest_text(config=config, model_dir=out, manifest_path=MANIFEST_PATH, notes=NOTES),
                encoding="utf-8",
            )
        size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
        print(f"{out}: {size / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
