"""Tiny random-weight pipelines of each family ``models.families`` knows, built offline.

Shapes follow diffusers' own pipeline tests (``get_dummy_components``), scaled so a 2-step call
on two CPU cores takes tens of milliseconds. Tokenizers are built in code: CLIP from the shipped
model's word list (``models.training.build_tiny_random``), T5 from a list of (piece, score) pairs. Every
builder is deterministic for a given seed and returns the pipeline object; ``pipeline_save``
writes it as a diffusers folder, as a download would be.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from models.training import build_tiny_random
from models.training.build_tiny_random import CATALOG_WORDS

SEED = 0
CLIP_MAX_TOKENS = 16
T5_MAX_TOKENS = 32
HIDDEN = 32


def clip_tokenizer_build() -> Any:
    """A CLIP tokenizer whose catalogue words are one token each, with a short maximum length."""
    return build_tiny_random.clip_tokenizer_build(max_length=CLIP_MAX_TOKENS)


def t5_tokenizer_build() -> Any:
    """A unigram T5 tokenizer: catalogue words as whole pieces, single letters as a fallback."""
    from transformers import T5Tokenizer

    pieces = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0)]
    pieces += [(f"▁{word}", -1.0) for word in CATALOG_WORDS]
    pieces += [(char, -5.0) for char in "▁abcdefghijklmnopqrstuvwxyz0123456789-"]
    return T5Tokenizer(vocab=pieces, extra_ids=0, model_max_length=T5_MAX_TOKENS)


def _clip_config(tokenizer: Any, **extra: Any) -> Any:
    from transformers import CLIPTextConfig

    return CLIPTextConfig(
        vocab_size=len(tokenizer),
        hidden_size=HIDDEN,
        intermediate_size=37,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=CLIP_MAX_TOKENS,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        **extra,
    )


def _t5_config_kwargs(tokenizer: Any) -> dict[str, Any]:
    return {
        "vocab_size": len(tokenizer),
        "d_model": HIDDEN,
        "d_kv": 8,
        "d_ff": 37,
        "num_layers": 2,
        "num_heads": 4,
        "relative_attention_num_buckets": 8,
        "pad_token_id": tokenizer.pad_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "decoder_start_token_id": tokenizer.pad_token_id,
    }


def _image_vae() -> Any:
    """A two-level VAE: 2 pixels per latent cell, so 16x16 images have 8x8 latents."""
    from diffusers import AutoencoderKL

    torch.manual_seed(SEED)
    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        block_out_channels=(32, 32),
        down_block_types=("DownEncoderBlock2D",) * 2,
        up_block_types=("UpDecoderBlock2D",) * 2,
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=32,
        sample_size=32,
    )


def _euler_scheduler() -> Any:
    from diffusers import EulerDiscreteScheduler

    # Every value spelled out: a scheduler built in code remembers which values were defaults.
    return EulerDiscreteScheduler(
        num_train_timesteps=1000,
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        prediction_type="epsilon",
        timestep_spacing="trailing",
        steps_offset=1,
    )


def stable_diffusion_build() -> Any:
    """A tiny StableDiffusionPipeline (UNet (32, 64), 2-level VAE, 2-layer CLIP)."""
    from diffusers import StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextModel

    tokenizer = clip_tokenizer_build()
    torch.manual_seed(SEED)
    unet = UNet2DConditionModel(
        sample_size=8,
        block_out_channels=(32, 64),
        layers_per_block=1,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=HIDDEN,
        attention_head_dim=(2, 4),
        norm_num_groups=32,
    )
    torch.manual_seed(SEED)
    text_encoder = CLIPTextModel(_clip_config(tokenizer))
    return StableDiffusionPipeline(
        vae=_image_vae(),
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=_euler_scheduler(),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


def stable_diffusion_xl_build() -> Any:
    """A tiny StableDiffusionXLPipeline: two CLIP encoders (the second with a projection), a UNet
    with SDXL's text-and-time conditioning."""
    from diffusers import StableDiffusionXLPipeline, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    tokenizer = clip_tokenizer_build()
    time_embed_dim = 8
    torch.manual_seed(SEED)
    unet = UNet2DConditionModel(
        sample_size=8,
        block_out_channels=(32, 64),
        layers_per_block=1,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        attention_head_dim=(2, 4),
        use_linear_projection=True,
        addition_embed_type="text_time",
        addition_time_embed_dim=time_embed_dim,
        transformer_layers_per_block=(1, 1),
        # Six size numbers (original size, crop, target size) plus the pooled text embedding.
        projection_class_embeddings_input_dim=6 * time_embed_dim + HIDDEN,
        cross_attention_dim=2 * HIDDEN,  # both encoders' hidden states, concatenated
        norm_num_groups=32,
    )
    torch.manual_seed(SEED)
    text_encoder = CLIPTextModel(_clip_config(tokenizer))
    torch.manual_seed(SEED + 1)
    text_encoder_2 = CLIPTextModelWithProjection(_clip_config(tokenizer, projection_dim=HIDDEN))
    return StableDiffusionXLPipeline(
        vae=_image_vae(),
        text_encoder=text_encoder,
        text_encoder_2=text_encoder_2,
        tokenizer=tokenizer,
        tokenizer_2=clip_tokenizer_build(),
        unet=unet,
        scheduler=_euler_scheduler(),
        add_watermarker=False,
    )


def flux_build() -> Any:
    """A tiny FluxPipeline: one double and one single transformer block, CLIP + T5, 1-level VAE."""
    from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler, FluxPipeline, FluxTransformer2DModel
    from transformers import CLIPTextModel, T5Config, T5EncoderModel

    tokenizer = clip_tokenizer_build()
    tokenizer_2 = t5_tokenizer_build()
    torch.manual_seed(SEED)
    transformer = FluxTransformer2DModel(
        patch_size=1,
        in_channels=4,  # 1 latent channel x 2x2 packing
        num_layers=1,
        num_single_layers=1,
        attention_head_dim=16,
        num_attention_heads=2,
        joint_attention_dim=HIDDEN,
        pooled_projection_dim=HIDDEN,
        axes_dims_rope=[4, 4, 8],
    )
    torch.manual_seed(SEED)
    text_encoder = CLIPTextModel(_clip_config(tokenizer))
    torch.manual_seed(SEED)
    text_encoder_2 = T5EncoderModel(T5Config(**_t5_config_kwargs(tokenizer_2)))
    torch.manual_seed(SEED)
    vae = AutoencoderKL(
        sample_size=32,
        in_channels=3,
        out_channels=3,
        block_out_channels=(4,),
        layers_per_block=1,
        latent_channels=1,
        norm_num_groups=1,
        use_quant_conv=False,
        use_post_quant_conv=False,
        shift_factor=0.0609,
        scaling_factor=1.5035,
    )
    return FluxPipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(),
        text_encoder=text_encoder,
        text_encoder_2=text_encoder_2,
        tokenizer=tokenizer,
        tokenizer_2=tokenizer_2,
        transformer=transformer,
        vae=vae,
        image_encoder=None,
        feature_extractor=None,
    )


def wan_build() -> Any:
    """A tiny WanPipeline: 3-channel-base Wan VAE (8x spatial, 4x temporal), 2-layer transformer,
    2-layer UMT5 encoder (the real model's encoder class)."""
    from diffusers import AutoencoderKLWan, FlowMatchEulerDiscreteScheduler, WanPipeline, WanTransformer3DModel
    from transformers import UMT5Config, UMT5EncoderModel

    tokenizer = t5_tokenizer_build()
    torch.manual_seed(SEED)
    vae = AutoencoderKLWan(
        base_dim=3,
        z_dim=16,
        dim_mult=[1, 1, 1, 1],
        num_res_blocks=1,
        temperal_downsample=[False, True, True],
    )
    torch.manual_seed(SEED)
    text_encoder = UMT5EncoderModel(UMT5Config(**_t5_config_kwargs(tokenizer)))
    torch.manual_seed(SEED)
    transformer = WanTransformer3DModel(
        patch_size=(1, 2, 2),
        num_attention_heads=2,
        attention_head_dim=12,
        in_channels=16,
        out_channels=16,
        text_dim=HIDDEN,
        freq_dim=256,
        ffn_dim=32,
        num_layers=2,
        cross_attn_norm=True,
        qk_norm="rms_norm_across_heads",
        rope_max_seq_len=32,
    )
    return WanPipeline(
        tokenizer=tokenizer,
        text_encoder=text_encoder,
        transformer=transformer,
        vae=vae,
        scheduler=FlowMatchEulerDiscreteScheduler(shift=7.0),
    )


def pipeline_save(pipe: Any, folder: Path) -> Path:
    """Save ``pipe`` as a diffusers folder (safetensors), the way a downloaded checkpoint looks."""
    pipe.save_pretrained(folder, safe_serialization=True)
    return folder


def ltx_build() -> Any:
    """A tiny LTXPipeline: LTX video VAE (2x2 patches and three scaling stages: 16x spatial, 8x
    temporal, shaped like the real one's 4x4 patches, 32x and 8x), 1-layer transformer, 2-layer T5
    encoder. ``LTXImageToVideoPipeline.from_pipe`` makes image-to-video from the same components."""
    from diffusers import (
        AutoencoderKLLTXVideo,
        FlowMatchEulerDiscreteScheduler,
        LTXPipeline,
        LTXVideoTransformer3DModel,
    )
    from transformers import T5Config, T5EncoderModel

    tokenizer = t5_tokenizer_build()
    torch.manual_seed(SEED)
    vae = AutoencoderKLLTXVideo(
        in_channels=3,
        out_channels=3,
        latent_channels=8,
        block_out_channels=(8, 8, 8, 8),
        decoder_block_out_channels=(8, 8, 8, 8),
        layers_per_block=(1, 1, 1, 1, 1),
        decoder_layers_per_block=(1, 1, 1, 1, 1),
        spatio_temporal_scaling=(True, True, True, False),
        decoder_spatio_temporal_scaling=(True, True, True, False),
        decoder_inject_noise=(False, False, False, False, False),
        upsample_residual=(False, False, False, False),
        upsample_factor=(1, 1, 1, 1),
        timestep_conditioning=False,
        patch_size=2,
        patch_size_t=1,
        encoder_causal=True,
        decoder_causal=False,
    )
    torch.manual_seed(SEED)
    text_encoder = T5EncoderModel(T5Config(**_t5_config_kwargs(tokenizer)))
    torch.manual_seed(SEED)
    transformer = LTXVideoTransformer3DModel(
        in_channels=8,
        out_channels=8,
        patch_size=1,
        patch_size_t=1,
        num_attention_heads=4,
        attention_head_dim=8,
        cross_attention_dim=32,
        num_layers=1,
        caption_channels=HIDDEN,
    )
    return LTXPipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(),
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        transformer=transformer,
    )


def tiny_captioner_save(folder: Path) -> Path:
    """A tiny random VisionEncoderDecoderModel (ViT encoder, GPT-2 decoder) with its image processor
    and tokenizer, saved to ``folder`` as a downloaded captioning model would be."""
    from transformers import (
        GPT2Config,
        VisionEncoderDecoderConfig,
        VisionEncoderDecoderModel,
        ViTConfig,
        ViTImageProcessor,
    )

    tokenizer = build_tiny_random.clip_tokenizer_build()
    encoder = ViTConfig(
        image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=37
    )
    decoder = GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=32,
        n_embd=32,
        n_layer=1,
        n_head=2,
        add_cross_attention=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    config = VisionEncoderDecoderConfig.from_encoder_decoder_configs(encoder, decoder)
    config.decoder_start_token_id = tokenizer.bos_token_id
    config.pad_token_id = tokenizer.pad_token_id
    config.eos_token_id = tokenizer.eos_token_id
    torch.manual_seed(0)
    model = VisionEncoderDecoderModel(config=config)
    model.generation_config.decoder_start_token_id = tokenizer.bos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.save_pretrained(folder, safe_serialization=True)
    ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def tiny_lora_save(unet_folder: Path, folder: Path, *, seed: int, rank: int = 4) -> Path:
    """A random LoRA for the UNet in ``unet_folder`` (attention projections, rank ``rank``),
    saved as diffusers saves trained LoRA weights: ``folder/pytorch_lora_weights.safetensors``.
    Both LoRA matrices are random (not B = 0), so it changes what the model draws."""
    from diffusers import StableDiffusionPipeline, UNet2DConditionModel
    from diffusers.utils import convert_state_dict_to_diffusers
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    torch.manual_seed(seed)
    unet = UNet2DConditionModel.from_pretrained(unet_folder)
    unet.add_adapter(
        LoraConfig(
            r=rank, lora_alpha=rank, init_lora_weights=False, target_modules=["to_q", "to_k", "to_v", "to_out.0"]
        )
    )
    layers = convert_state_dict_to_diffusers(get_peft_model_state_dict(unet))
    folder.mkdir(parents=True, exist_ok=True)
    StableDiffusionPipeline.save_lora_weights(save_directory=folder, unet_lora_layers=layers, safe_serialization=True)
    return folder


def tiny_controlnet_save(pipe: Any, folder: Path, *, seed: int) -> Path:
    """A random ControlNetModel for ``pipe``'s UNet, saved as a diffusers folder. Its zero
    convolutions are drawn at random too (trained ones are not zero), so it changes the image."""
    from diffusers import ControlNetModel

    torch.manual_seed(seed)
    controlnet = ControlNetModel.from_unet(pipe.unet, conditioning_embedding_out_channels=(16, 32))
    zero_convs = [*controlnet.controlnet_down_blocks, controlnet.controlnet_mid_block]
    with torch.no_grad():
        for module in [*zero_convs, controlnet.controlnet_cond_embedding.conv_out]:
            torch.nn.init.normal_(module.weight, std=0.2)
    controlnet.save_pretrained(folder, safe_serialization=True)
    return folder


def tiny_embedding_save(
    folder: Path, *, seed: int, vectors: int = 2, width: int = HIDDEN, token: str = "<brand-style>", sdxl: bool = False
) -> Path:
    """A random textual inversion of ``vectors`` token vectors, ``width`` wide, saved as diffusers'
    textual-inversion training saves one: ``folder/learned_embeds.safetensors`` holding
    ``{token: vectors}``, or for SDXL ``clip_l`` and ``clip_g`` (one set per text encoder). The
    vectors are standard normal, far larger than a random CLIP's own token vectors, so they
    change what is drawn."""
    from safetensors.torch import save_file

    generator = torch.Generator().manual_seed(seed)

    def drawn() -> torch.Tensor:
        return torch.randn((vectors, width), generator=generator)

    tensors = {"clip_l": drawn(), "clip_g": drawn()} if sdxl else {token: drawn()}
    folder.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(folder / "learned_embeds.safetensors"))
    return folder
