"""Train the shipped ``embedded`` model on the procedural catalog domain, on a CPU, offline.

    python -m models.training.train_embedded vae [--minutes 5]            # 1. autoencoder, then frozen
    python -m models.training.train_embedded vae --reuse models/embedded  # ...or keep a shipped one's
    python -m models.training.train_embedded encode                       # 2. latents of the training set
    python -m models.training.train_embedded unet --steps 8000 [--minutes 90]  # 3. UNet + text encoder
    python -m models.training.train_embedded export [--out models/embedded] [--manifest]
    python -m models.training.train_embedded scheduler [--sampler euler] --manifest  # new sampler, same weights
    python -m models.training.train_embedded manifest                     # re-pin after editing the card

Every stage is reproducible from ``TrainConfig.seed`` and resumable: checkpoints and the log go to
``var/train/embedded/`` (git-ignored); rerunning a stage continues from its last checkpoint. The
result is a standard diffusers ``StableDiffusionPipeline`` folder at 64x64 with the exact sampling
scheduler (Euler) saved in it. The recipe (``models.training.recipe``) holds the shipped weights'
settings; ``models/embedded/README.md`` also gives the earlier runs'. Held-out combinations
(``models.training.catalog_domain.HELD_OUT``) are never drawn for any stage.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Sequence
from dataclasses import asdict, replace
from pathlib import Path

# Before diffusers and transformers are imported: they read these once, at import.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch

from models.errors import ModelError
from models.training.export import NOTES, manifest_text, pipeline_export, scheduler_replace
from models.training.recipe import (
    CONFIG,
    MANIFEST_PATH,
    MODEL_DIR,
    MODEL_NAME,
    PREDICTIONS,
    SAMPLERS,
    THREADS,
    TrainConfig,
)
from models.training.stages import latents_encode, unet_train, vae_reuse, vae_train, work_dir_make

WORK_DIR = Path(__file__).resolve().parent.parent.parent / "var" / "train" / MODEL_NAME


def _layers_parse(text: str) -> tuple[int, ...]:
    try:
        layers = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise SystemExit(f"--layers = {text!r}: expected whole numbers separated by commas, e.g. 1,2,2") from None
    if len(layers) != len(CONFIG.unet_channels) or min(layers) < 1:
        raise SystemExit(f"--layers = {text!r}: expected {len(CONFIG.unet_channels)} numbers of at least 1")
    return layers


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
    work = work_dir_make(args.work)
    config = replace(
        CONFIG,
        unet_attention=(True, True, True) if args.attention_16x16 else CONFIG.unet_attention,
        decay_share=args.decay_share,
        unet_layers=_layers_parse(args.layers) if args.layers else CONFIG.unet_layers,
        prediction=args.prediction or CONFIG.prediction,
        sampler=args.sampler,
    )
    (work / "config.json").write_text(json.dumps(asdict(config), indent=1))
    try:
        _stage_run(args, config=config, work=work)
    except ModelError as exc:
        raise SystemExit(f"error: {exc}") from None


def _stage_run(args: argparse.Namespace, *, config: TrainConfig, work: Path) -> None:
    """Run the stage the command line names, with ``config`` and the work folder."""
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
