"""Images per second: the raw diffusers call against the generation engine, at batch 1, 8 and 32.

    python -m bench.generate [--threads 1] [--images 64] [--rounds 3] [--steps N]

Both run the shipped ``embedded`` model at its manifest's steps, guidance and size, one seed per
image. "raw" is ``StableDiffusionPipeline.from_pretrained`` on the folder, called with the prompts
and one generator per image, as the diffusers documentation shows. "engine" is what a worker runs:
``pipeline_load`` (hashes verified, batch-invariant layers, per-image VAE decoding) and
``pipeline.generate.engine_generate`` (requests checked, prompts, generators).

The two are timed in pairs: each batch of the same prompts and seeds goes through raw and then the
engine, or the engine and then raw (the order alternates), so a change in the machine's load
between them falls on both alike. Each round makes ``--images`` images per batch size on each side;
a side's rate is its images over its summed time, and the table shows the median round's. Goal:
the engine within 5% of raw at every batch size.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import torch

from models.training.catalog_domain import SEEN

BATCHES = (1, 8, 32)
GOAL = 0.05


def _prompts(count: int) -> list[str]:
    return [SEEN[i % len(SEEN)].caption for i in range(count)]


Run = Callable[[list[str], list[int]], Any]


def _time_paired(raw: Run, engine: Run, *, batch: int, images: int) -> tuple[float, float]:
    """Images per second of raw and of the engine for ``images`` images in batches of ``batch``,
    each batch run on both sides back to back, in alternating order."""
    prompts = _prompts(images)
    spent = {"raw": 0.0, "engine": 0.0}
    for number, at in enumerate(range(0, images, batch)):
        chunk, seeds = prompts[at : at + batch], list(range(at, min(at + batch, images)))
        order = (("raw", raw), ("engine", engine)) if number % 2 == 0 else (("engine", engine), ("raw", raw))
        for name, run in order:
            start = time.perf_counter()
            run(chunk, seeds)
            spent[name] += time.perf_counter() - start
    return images / spent["raw"], images / spent["engine"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1: one core)")
    parser.add_argument("--images", type=int, default=64, help="images per batch size and round (default 64)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds; the median is shown (default 3)")
    parser.add_argument("--steps", type=int, default=None, help="sampling steps (default: the manifest's)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from diffusers import StableDiffusionPipeline

    import infra.django_boot  # noqa: F401  (the engine's imports reach the prompt library's models)
    from models import manifest_load
    from models.loading import pipeline_load
    from pipeline.generate import ImageRequest, engine_generate

    manifest = manifest_load("embedded")
    defaults = manifest.defaults
    steps = args.steps or defaults.steps
    raw_pipe = StableDiffusionPipeline.from_pretrained(manifest.folder, safety_checker=None)
    raw_pipe.set_progress_bar_config(disable=True)
    engine_pipe = pipeline_load(manifest, device="cpu")

    def raw(prompts: list[str], seeds: list[int]) -> Any:
        with torch.inference_mode():
            return raw_pipe(
                prompt=prompts,
                negative_prompt=[""] * len(prompts),
                num_inference_steps=steps,
                guidance_scale=defaults.guidance,
                width=defaults.width,
                height=defaults.height,
                generator=[torch.Generator().manual_seed(s) for s in seeds],
            ).images

    def engine(prompts: list[str], seeds: list[int]) -> Any:
        requests = [
            ImageRequest(
                prompt=p,
                seed=s,
                steps=steps,
                guidance=defaults.guidance,
                width=defaults.width,
                height=defaults.height,
            )
            for p, s in zip(prompts, seeds, strict=True)
        ]
        return engine_generate(engine_pipe, manifest, requests)

    raw(_prompts(2), [0, 1])  # warm-up: first calls allocate
    engine(_prompts(2), [0, 1])
    rounds: dict[int, list[tuple[float, float]]] = {batch: [] for batch in BATCHES}
    for round_number in range(args.rounds):
        for batch in BATCHES:
            rounds[batch].append(_time_paired(raw, engine, batch=batch, images=args.images))
        print(f"  round {round_number + 1} of {args.rounds} done", flush=True)

    print(
        f"generation: embedded model, {defaults.width}x{defaults.height}, {steps} steps, guidance "
        f"{defaults.guidance}, {args.images} images per batch size and round, median of {args.rounds} rounds, "
        f"{args.threads} thread(s)"
    )
    print(f"{'batch':>5} | {'raw img/s':>9} | {'engine img/s':>12} | {'engine/raw':>10} | goal")
    print("-" * 58)
    for batch in BATCHES:
        # the median round by the engine's ratio to raw, so both rates shown come from one round
        by_ratio = sorted(rounds[batch], key=lambda pair: pair[1] / pair[0])
        raw_rate, engine_rate = by_ratio[(len(by_ratio) - 1) // 2]
        ratio = engine_rate / raw_rate
        verdict = "met" if ratio >= 1 - GOAL else "MISSED"
        print(f"{batch:>5} | {raw_rate:>9.2f} | {engine_rate:>12.2f} | {ratio:>9.1%} | >= 95% ({verdict})")


if __name__ == "__main__":
    main()
