"""Does the shipped ``embedded`` model follow its prompt, how fast is it, how big is it?

    python -m bench.embedded_model [--folder PATH] [--quick] [--steps N] [--guidance G]
                                   [--sampler NAME] [--seed-offset N] [--contact-sheet PATH]

Generates one image per seen combination of the catalog domain (108) and eight per held-out one
(12 x 8 = 96), 204 prompts in all, each with its own fixed seed, at the manifest's default steps,
guidance and size, in batches of 8 on one CPU thread, with the pipeline loaded exactly as the
product loads it (``pipeline_load`` on the pinned manifest, or ``from_pretrained`` on ``--folder``
for an unpinned export). ``models.training.catalog_domain.image_judge`` reads kind, colour and scene back
from each image; the bench prints each accuracy and all-three-correct for seen and held-out
combinations separately, the time per image, and the size of the weights.
Targets: all three right on >= 90% of seen and >= 60% of held-out; <= 0.5 s per image; <= 25 MB.
``--sampler`` draws with another of the engine's samplers (``models.schedulers``) over the model's
own noise schedule. Sampling settings are tuned with ``--seed-offset`` (the same prompts, other
seeds), so the figures on the standard seeds are not the ones the settings were picked on.
"""

from __future__ import annotations

import argparse
import os
import textwrap
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from PIL import Image, ImageDraw

from models.training.catalog_domain import HELD_OUT, SEEN, Combo, image_judge

BATCH = 8
HELD_OUT_REPEATS = 8
MODEL_NAME = "embedded"


@dataclass(frozen=True)
class Sample:
    """One generated image, what it was asked for and what the judge read."""

    combo: Combo
    seed: int
    held_out: bool
    image: Image.Image
    right: tuple[bool, bool, bool]


def prompts_choose(*, quick: bool = False, seed_offset: int = 0) -> list[tuple[Combo, int, bool]]:
    """(combination, seed, held out?) for every image the bench makes; ``quick`` takes a sixth,
    ``seed_offset`` moves every seed (for tuning on other samples than the reported ones)."""
    base = 1000 + seed_offset
    chosen = [(c, base + i, False) for i, c in enumerate(SEEN)]
    chosen += [(c, base + 4000 + 10 * i + r, True) for i, c in enumerate(HELD_OUT) for r in range(HELD_OUT_REPEATS)]
    return chosen[::6] if quick else chosen


def pipeline_open(folder: Path | None) -> tuple[Any, int, float, Path]:
    """The pipeline, its default steps and guidance, and its folder."""
    if folder is None:
        from models import manifest_load
        from models.loading import pipeline_load

        manifest = manifest_load(MODEL_NAME)
        pipe = pipeline_load(manifest, device="cpu")
        return pipe, manifest.defaults.steps, manifest.defaults.guidance, manifest.folder
    os.environ["HF_HUB_OFFLINE"] = "1"
    from diffusers import StableDiffusionPipeline

    from models.training.recipe import CONFIG

    pipe = StableDiffusionPipeline.from_pretrained(folder, local_files_only=True, use_safetensors=True)
    pipe.set_progress_bar_config(disable=True)
    return pipe, CONFIG.steps, CONFIG.guidance, folder


def samples_generate(
    pipe: Any, chosen: Sequence[tuple[Combo, int, bool]], *, steps: int, guidance: float
) -> tuple[list[Sample], float, float]:
    """Generate and judge every chosen prompt in batches of ``BATCH``; return wall and CPU seconds
    per image (CPU time, this process's, shows what contention on a shared machine hides)."""
    samples: list[Sample] = []
    seconds = cpu = 0.0
    with torch.inference_mode():
        pipe(prompt=["a red mug on a wooden table"] * BATCH, num_inference_steps=2, guidance_scale=guidance)  # warm
        for at in range(0, len(chosen), BATCH):
            batch = chosen[at : at + BATCH]
            start, start_cpu = time.perf_counter(), time.process_time()
            images = pipe(
                prompt=[c.caption for c, _, _ in batch],
                num_inference_steps=steps,
                guidance_scale=guidance,
                generator=[torch.Generator().manual_seed(seed) for _, seed, _ in batch],
                output_type="pil",
            ).images
            seconds += time.perf_counter() - start
            cpu += time.process_time() - start_cpu
            for (combo, seed, held_out), image in zip(batch, images, strict=True):
                right = image_judge(image).matches(combo)
                samples.append(Sample(combo, seed, held_out, image, right))
    return samples, seconds / len(chosen), cpu / len(chosen)


def accuracy_lines(samples: Sequence[Sample]) -> list[str]:
    """Kind, colour, scene and all-three accuracy for seen and held-out samples."""
    lines = [f"{'':9} {'n':>4} {'kind':>6} {'colour':>6} {'scene':>6} {'all 3':>6}"]
    for label, held in (("seen", False), ("held-out", True)):
        group = [s for s in samples if s.held_out == held]
        if not group:
            continue
        shares = [sum(s.right[i] for s in group) / len(group) for i in range(3)]
        every = sum(all(s.right) for s in group) / len(group)
        lines.append(f"{label:9} {len(group):4d} " + " ".join(f"{v:6.1%}" for v in [*shares, every]))
    return lines


def accuracy_all(samples: Sequence[Sample], *, held_out: bool) -> float:
    """Share of seen (or held-out) samples with kind, colour and scene all right."""
    group = [s for s in samples if s.held_out == held_out]
    return sum(all(s.right) for s in group) / max(1, len(group))


def contact_sheet(samples: Sequence[Sample], path: Path, *, columns: int = 6, cell: int = 128) -> None:
    """A grid of samples upscaled to ``cell`` pixels, each with its prompt (held-out marked *)."""
    label_h = 30
    rows = (len(samples) + columns - 1) // columns
    sheet = Image.new("RGB", (columns * cell, rows * (cell + label_h)), "white")
    draw = ImageDraw.Draw(sheet)
    for i, s in enumerate(samples):
        x, y = (i % columns) * cell, (i // columns) * (cell + label_h)
        sheet.paste(s.image.resize((cell, cell), Image.Resampling.NEAREST), (x, y))
        text = s.combo.caption.removeprefix("a ") + (" *" if s.held_out else "")
        wrapped = textwrap.wrap(text, width=cell // 6)[:2]
        colour = (0, 110, 0) if all(s.right) else (190, 0, 0)
        draw.multiline_text((x + 2, y + cell + 1), "\n".join(wrapped), fill=colour, spacing=1)
    sheet.save(path)


def weights_size(folder: Path) -> int:
    """Bytes of every weight file in the pipeline folder."""
    return sum(p.stat().st_size for p in folder.rglob("*.safetensors"))


def main(argv: Sequence[str] | None = None) -> None:
    """Command-line entry point; see the module docstring."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", type=Path, default=None, help="an unpinned export instead of the manifest")
    parser.add_argument("--quick", action="store_true", help="a sixth of the prompts (34)")
    parser.add_argument("--steps", type=int, default=None, help="override the default steps")
    parser.add_argument("--guidance", type=float, default=None, help="override the default guidance")
    parser.add_argument(
        "--sampler", default="", help="another sampler by name (models.schedulers; default: the model's own)"
    )
    parser.add_argument("--seed-offset", type=int, default=0, help="other seeds, for tuning")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--contact-sheet", type=Path, default=None, help="write a grid of samples here")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    pipe, steps, guidance, folder = pipeline_open(args.folder)
    if args.sampler:
        from models import SCHEDULERS, scheduler_unsuited, suited_names
        from pipeline.generate import derived_pipeline

        known = args.sampler in SCHEDULERS
        problem = scheduler_unsuited(args.sampler, pipe.scheduler.config) if known else "unknown"
        if problem:
            parser.error(f"--sampler {args.sampler!r}: {problem}; choose one of {suited_names(pipe.scheduler.config)}")
        pipe = derived_pipeline(pipe, scheduler=args.sampler)  # the loaded pipeline keeps the model's own
    steps = args.steps or steps
    guidance = guidance if args.guidance is None else args.guidance
    chosen = prompts_choose(quick=args.quick, seed_offset=args.seed_offset)
    samples, per_image, cpu_per_image = samples_generate(pipe, chosen, steps=steps, guidance=guidance)
    seeds = f", seeds offset by {args.seed_offset}" if args.seed_offset else ""
    sampler = f", sampler {args.sampler}" if args.sampler else f", sampler {type(pipe.scheduler).__name__}"
    print(f"embedded model: {len(samples)} prompts, {steps} steps, guidance {guidance}, 64x64{sampler}{seeds}")
    print("\n".join(accuracy_lines(samples)))
    print(
        f"time per image: {per_image:.3f} s wall, {cpu_per_image:.3f} s CPU "
        f"(batch {BATCH}, {args.threads} thread(s), text encoder to VAE decode)"
    )
    print(f"weights: {weights_size(folder) / 1e6:.2f} MB (safetensors in {folder})")
    if args.contact_sheet is not None:
        seen = [s for s in samples if not s.held_out][::3][:24]
        held = [s for s in samples if s.held_out][::HELD_OUT_REPEATS][:12]
        contact_sheet([*seen, *held], args.contact_sheet)
        print(f"contact sheet: {args.contact_sheet}")


if __name__ == "__main__":
    main()
