"""Build the shipped ``embedded-tiny`` model: a tiny random-weight Stable Diffusion pipeline.

Run ``python -m models.training.build_tiny_random`` to (re)write ``models/embedded-tiny/`` and its manifest
``models/manifests/embedded-tiny.yaml``. Nothing is downloaded: every component, the CLIP tokenizer
included, is built in code from a fixed torch seed.

The weights are random, so the model makes abstract colour noise. It exists so that the whole
pipeline (generate, watermark, sign, review) runs and is tested end to end on a CPU, offline, until a
trained embedded model ships. Shapes follow Stable Diffusion 1.x: 4 latent channels, a VAE that
downsamples by 8 (so ``sample_size`` 8 gives 64x64 images), a CLIP text encoder.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from models.errors import TrainingError
from models.integrity import sha256_file
from models.registry import MANIFESTS_DIR, manifest_load

MODEL_NAME = "embedded-tiny"
MODEL_DIR = Path(__file__).parent.parent / MODEL_NAME
MANIFEST_PATH = MANIFESTS_DIR / f"{MODEL_NAME}.yaml"
SEED = 0
MAX_PROMPT_TOKENS = 77

# Words that should each be one token. "t-shirt" cannot be: CLIP's pre-tokenizer splits on
# punctuation, so it becomes "t", "-", "shirt" and "shirt" is the word given a token here.
CATALOG_WORDS: tuple[str, ...] = (
    "mug",
    "bottle",
    "lamp",
    "sneaker",
    "box",
    "t",
    "shirt",
    "red",
    "blue",
    "green",
    "white",
    "black",
    "yellow",
    "wooden",
    "table",
    "studio",
    "gradient",
    "outdoor",
    "photo",
    "product",
    "background",
    "on",
    "a",
    "of",
    "the",
    "in",
    "with",
    "and",
)

BOS_TOKEN = "<|startoftext|>"
EOS_TOKEN = "<|endoftext|>"

NOTES = (
    "Random-weight stand-in built by `python -m models.training.build_tiny_random` from a fixed torch seed: "
    "UNet (32, 64) channels, 4-level 32-wide VAE (scale factor 8), 2-layer 32-wide CLIP text encoder, "
    "Euler scheduler with trailing spacing. It ignores the prompt in any meaningful sense and "
    "makes abstract colour noise at 64x64. It exists so the pipeline runs end to end on a CPU, "
    "offline, until a trained embedded model ships."
)


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2/CLIP byte-level alphabet: each byte maps to one printable unicode character."""
    printable = (
        list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    )
    codes = printable[:]
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            codes.append(256 + extra)
            extra += 1
    return {byte: chr(code) for byte, code in zip(printable, codes, strict=True)}


def _bpe(word: Sequence[str], ranks: dict[tuple[str, str], int]) -> list[str]:
    """Apply BPE merges to ``word`` (a list of symbols) exactly as the CLIP tokenizer does."""
    symbols = list(word)
    while len(symbols) > 1:
        pairs = [(ranks.get(pair, -1), i) for i, pair in enumerate(itertools.pairwise(symbols))]
        known = [(rank, i) for rank, i in pairs if rank >= 0]
        if not known:
            break
        _, at = min(known)
        first, second = symbols[at], symbols[at + 1]
        merged: list[str] = []
        i = 0
        while i < len(symbols):
            if i < len(symbols) - 1 and symbols[i] == first and symbols[i + 1] == second:
                merged.append(first + second)
                i += 2
            else:
                merged.append(symbols[i])
                i += 1
        symbols = merged
    return symbols


def tokenizer_vocab_and_merges(words: Iterable[str]) -> tuple[dict[str, int], list[str]]:
    """Return a CLIP ``vocab.json`` mapping and ``merges.txt`` lines that make each word one token.

    Each word's merges are found by simulating BPE with all earlier rules and merging the first two
    symbols that remain, so a later word never splits an earlier one (nor the other way round).
    """
    alphabet = list(_bytes_to_unicode().values())
    tokens = alphabet + [symbol + "</w>" for symbol in alphabet]
    ranks: dict[tuple[str, str], int] = {}
    byte_encoder = _bytes_to_unicode()
    for word in words:
        chars = [byte_encoder[b] for b in word.encode("utf-8")]
        symbols = [*chars[:-1], chars[-1] + "</w>"]
        while len(segments := _bpe(symbols, ranks)) > 1:
            ranks[(segments[0], segments[1])] = len(ranks)
            merged = segments[0] + segments[1]
            if merged not in tokens:
                tokens.append(merged)
    tokens += [BOS_TOKEN, EOS_TOKEN]
    vocab = {token: index for index, token in enumerate(tokens)}
    merges = [f"{a} {b}" for (a, b), _ in sorted(ranks.items(), key=lambda item: item[1])]
    return vocab, merges


def clip_tokenizer_build(*, words: Sequence[str] = CATALOG_WORDS, max_length: int = MAX_PROMPT_TOKENS) -> Any:
    """A CLIPTokenizer, built offline, in which every one of `words` is one token: vocab.json and
    merges.txt are written to a scratch folder and loaded from there."""
    from transformers import CLIPTokenizer

    vocab, merges = tokenizer_vocab_and_merges(words)
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        (folder / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
        (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8")
        tokenizer = CLIPTokenizer.from_pretrained(folder, local_files_only=True, model_max_length=max_length)
    for word in words:
        ids = tokenizer(word).input_ids
        if len(ids) != 3:  # <|startoftext|> word <|endoftext|>
            raise TrainingError(
                setting="words",
                value=word,
                problem=f"the tokenizer splits it into {len(ids) - 2} tokens (CLIP splits words at punctuation)",
            )
    return tokenizer


def pipeline_build(*, seed: int = SEED) -> Any:
    """Build the tiny random StableDiffusionPipeline in memory (deterministic for a given seed)."""
    import torch
    from diffusers import (
        AutoencoderKL,
        EulerDiscreteScheduler,
        StableDiffusionPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel

    tokenizer = clip_tokenizer_build()

    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        sample_size=8,
        in_channels=4,
        out_channels=4,
        block_out_channels=(32, 64),
        layers_per_block=1,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32,
        attention_head_dim=(2, 4),  # number of heads in diffusers' naming
        norm_num_groups=32,
    )
    # Four levels so the VAE downsamples by 8 like Stable Diffusion's: 8x8 latents -> 64x64 pixels.
    torch.manual_seed(seed)
    vae = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        block_out_channels=(32, 32, 32, 32),
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=32,
        sample_size=64,
    )
    torch.manual_seed(seed)
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=len(tokenizer),
            hidden_size=32,
            intermediate_size=37,
            num_hidden_layers=2,
            num_attention_heads=4,
            max_position_embeddings=MAX_PROMPT_TOKENS,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
    )
    # Every value spelled out: a scheduler built in code remembers which values were defaults.
    scheduler = EulerDiscreteScheduler(
        num_train_timesteps=1000,
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        prediction_type="epsilon",
        interpolation_type="linear",
        use_karras_sigmas=False,
        timestep_spacing="trailing",
        steps_offset=1,  # unused with trailing spacing; 1 keeps diffusers from warning
    )
    return StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


def sd_manifest_text(*, name: str, model_dir: Path, manifest_path: Path, header: str, defaults: str, notes: str) -> str:
    """The manifest YAML of a StableDiffusionPipeline folder, pinning every file now in
    ``model_dir`` (shared by the shipped models' build and training scripts)."""
    folder = Path(os.path.relpath(model_dir.resolve(), manifest_path.resolve().parent))
    files = sorted(p for p in model_dir.rglob("*") if p.is_file())
    lines = [
        f"# {header}",
        f"name: {name}",
        "family: stable-diffusion",
        "pipeline_class: StableDiffusionPipeline",
        "role: generator",
        f"folder: {folder.as_posix()}",
        "license: Apache-2.0",
        f"defaults: {defaults}",
        f"notes: {json.dumps(notes)}",
        "files:",
    ]
    lines += [f"  {p.relative_to(model_dir).as_posix()}: {sha256_file(p)}" for p in files]
    return "\n".join(lines) + "\n"


def manifest_text(*, model_dir: Path, manifest_path: Path) -> str:
    """Render the manifest YAML for the files now in ``model_dir``."""
    return sd_manifest_text(
        name=MODEL_NAME,
        model_dir=model_dir,
        manifest_path=manifest_path,
        header="Generated by `python -m models.training.build_tiny_random`; rebuild rather than edit by hand.",
        defaults="{steps: 4, guidance: 1.0, width: 64, height: 64}",
        notes=NOTES,
    )


def build(*, model_dir: Path = MODEL_DIR, manifest_path: Path = MANIFEST_PATH) -> None:
    """Build the pipeline, save it to ``model_dir`` (replacing it) and write its manifest."""
    pipe = pipeline_build()
    if model_dir.exists():
        shutil.rmtree(model_dir)
    pipe.save_pretrained(model_dir, safe_serialization=True)
    for path in model_dir.rglob("*"):  # safetensors writes 0600; the files are meant to be shared
        path.chmod(0o755 if path.is_dir() else 0o644)
    manifest_path.parent.mkdir(parents=True, exist_ok=True)
    manifest_path.write_text(manifest_text(model_dir=model_dir, manifest_path=manifest_path), encoding="utf-8")


def main(argv: Sequence[str] | None = None) -> None:
    """Command-line entry point: rebuild the shipped model and check that its manifest loads."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.parse_args(argv)
    build()
    manifest = manifest_load(MODEL_NAME)
    size = sum(p.stat().st_size for p in manifest.folder.rglob("*") if p.is_file())
    print(f"Wrote {len(manifest.files)} files ({size / 1e6:.1f} MB) and {MANIFEST_PATH.name}")
    print(f"manifest_hash {manifest.manifest_hash}")


if __name__ == "__main__":
    main()
