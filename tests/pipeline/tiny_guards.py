"""A tiny random image safety classifier (a real ``ViTForImageClassification``) and a tiny random
``StableDiffusionUpscalePipeline``, built offline and saved as their folders would be downloaded."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from tests.models import tiny_pipelines

LABELS = {0: "safe", 1: "nsfw"}


def tiny_classifier_save(folder: Path, *, unsafe_bias: float = 0.0, seed: int = 0) -> Path:
    """Save a tiny ViT classifier (labels safe / nsfw) and its image processor to ``folder``.

    ``unsafe_bias`` is added to the nsfw logit's bias: 8 makes nearly every image score about 1,
    -8 about 0, 0 leaves the random weights to decide per image."""
    from transformers import ViTConfig, ViTForImageClassification, ViTImageProcessor

    config = ViTConfig(
        image_size=32,
        patch_size=8,
        num_channels=3,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=37,
        id2label=LABELS,
        label2id={label: i for i, label in LABELS.items()},
    )
    torch.manual_seed(seed)
    model = ViTForImageClassification(config).eval()
    with torch.no_grad():
        model.classifier.bias[1] += unsafe_bias
    model.save_pretrained(folder, safe_serialization=True)
    ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(folder)
    return folder


def tiny_upscaler_build(seed: int = 0) -> Any:
    """A tiny StableDiffusionUpscalePipeline: a 2-level VAE (so x2, where the real one is x4), a
    UNet taking the latents and the low-resolution image (4 + 3 channels) and the noise level as
    its class, and the tiny CLIP text encoder."""
    from diffusers import (
        AutoencoderKL,
        DDIMScheduler,
        DDPMScheduler,
        StableDiffusionUpscalePipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextModel

    tokenizer = tiny_pipelines.clip_tokenizer_build()
    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        sample_size=16,
        block_out_channels=(32, 64),
        layers_per_block=1,
        in_channels=7,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=tiny_pipelines.HIDDEN,
        attention_head_dim=(2, 4),
        norm_num_groups=32,
        num_class_embeds=100,
    )
    torch.manual_seed(seed)
    vae = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        block_out_channels=(32, 32),
        down_block_types=("DownEncoderBlock2D",) * 2,
        up_block_types=("UpDecoderBlock2D",) * 2,
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=32,
        sample_size=32,
        scaling_factor=0.08333,  # the upscaler's own
    )
    torch.manual_seed(seed)
    text_encoder = CLIPTextModel(tiny_pipelines._clip_config(tokenizer))
    return StableDiffusionUpscalePipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        low_res_scheduler=DDPMScheduler(),
        scheduler=DDIMScheduler(prediction_type="v_prediction"),
        max_noise_level=350,
    )


def tiny_upscaler_save(folder: Path, seed: int = 0) -> Path:
    tiny_upscaler_build(seed).save_pretrained(folder, safe_serialization=True)
    return folder
