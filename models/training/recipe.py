"""The embedded model's recipe: everything that decides its weights, and the parts it is built of.

``TrainConfig`` holds the settings (``CONFIG``: the shipped weights'); the builders make the
components from it: a small AutoencoderKL with scale factor 4 (64x64 pixels to 16x16x4 latents),
a small UNet2DConditionModel with cross-attention at 8x8 and 4x4 only (attention at high resolution
is slow on a CPU), a 2-layer CLIP text encoder, a CLIP tokenizer built offline that keeps every
domain word whole, and the noise schedules for training and for sampling.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from diffusers import (
    AutoencoderKL,
    DDPMScheduler,
    DPMSolverMultistepScheduler,
    EulerDiscreteScheduler,
    UNet2DConditionModel,
)
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

from models.errors import TrainingError
from models.registry import MANIFESTS_DIR
from models.training.build_tiny_random import BOS_TOKEN, EOS_TOKEN, clip_tokenizer_build
from models.training.catalog_domain import SIZE, VOCABULARY

MODEL_NAME = "embedded"
MODEL_DIR = Path(__file__).parent.parent / MODEL_NAME
MANIFEST_PATH = MANIFESTS_DIR / f"{MODEL_NAME}.yaml"
MAX_PROMPT_TOKENS = 16  # the longest caption is 12 tokens with <|startoftext|> and <|endoftext|>
THREADS = 2  # torch threads, as the shipped weights were trained (models/embedded/README.md)


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides the trained weights (with the domain in ``models.training.catalog_domain``)."""

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
        raise TrainingError(
            setting="prediction", value=config.prediction, problem=f"expected one of {', '.join(PREDICTIONS)}"
        )
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
    trailing spacing, so that sampling starts at the last training timestep. Every value is spelled
    out: diffusers records the values a scheduler took by default, and ``from_config`` drops those,
    so a sampler derived from the saved config would take its own class's defaults instead
    (``timestep_spacing`` among them)."""
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
        raise TrainingError(setting="sampler", value=config.sampler, problem=f"expected one of {', '.join(SAMPLERS)}")
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
