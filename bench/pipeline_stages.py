"""Per-stage cost of making one asset on this machine, without Prefect or a database.

    python -m bench.pipeline_stages [--count 16] [--batch-size 8]

Expands the demo campaign from the library files, then times each stage of a run (`pipeline.run`):
generation (batched, on the shipped model), then each generated image through
``pipeline.finalize.image_finalize`` cut into its stages (``bench.provenance.FinalizeStages``:
watermark, PNG encoding, the signed thumbnail, C2PA signing and read-back, storing, the hand-off
record), and reading a master back as ``verify`` would (C2PA validation and watermark decoding).
"""

from __future__ import annotations

import argparse
import io
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, replace
from pathlib import Path

import yaml
from PIL import Image

import infra.django_boot  # noqa: F401  (pipeline.finalize imports the review app's types)
from bench.provenance import BENCH_KEY, FinalizeStages, stage_print
from infra.dev_certs import dev_chain_create
from models import manifest_load
from models.loading import pipeline_load
from pipeline.finalize import Signing, image_finalize
from pipeline.generate import images_generate
from prompt_library.expansion import campaign_expand, params_resolve
from prompt_library.parsing import campaign_parse, template_parse
from provenance.credentials import c2pa_read, reader_context
from provenance.keys import signer_create
from provenance.storage import LocalStorage
from provenance.watermark import watermark_read

LIBRARY = Path(__file__).resolve().parent.parent / "prompt_library" / "library"


@contextmanager
def stopwatch(samples: list[float]) -> Iterator[None]:
    """Append the block's wall time in milliseconds to `samples`."""
    start = time.perf_counter()
    yield
    samples.append((time.perf_counter() - start) * 1000)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=8)
    args = parser.parse_args()

    template_path = LIBRARY / "templates" / "catalog-hero" / "v1.yaml"
    template = template_parse(yaml.safe_load(template_path.read_text()), path=template_path, number=1)
    campaign_path = LIBRARY / "campaigns" / "demo-spring.yaml"
    campaign = campaign_parse(yaml.safe_load(campaign_path.read_text()), path=campaign_path)
    manifest = manifest_load(template.model_name)
    params = params_resolve(template, **asdict(manifest.defaults), size_multiple=manifest.size_multiple)
    seeds = tuple(range(1, args.count // 6 + 2))
    campaign = replace(campaign, seeds=seeds)
    variants = campaign_expand(campaign, template, params=params, model_manifest_hash=manifest.manifest_hash)[
        : args.count
    ]

    start = time.perf_counter()
    pipeline_load(manifest)
    load_ms = (time.perf_counter() - start) * 1000
    pipe = pipeline_load(manifest)
    images_generate(pipe, manifest, variants[:1])  # warm-up

    gen: list[float] = []
    images = []
    for start in range(0, len(variants), args.batch_size):
        batch = variants[start : start + args.batch_size]
        with stopwatch(gen):
            images += images_generate(pipe, manifest, batch)  # what batch_generate runs for images
    gen_per_image = sum(gen) / len(variants)

    stages = FinalizeStages()
    totals: list[float] = []
    verify: list[float] = []
    with tempfile.TemporaryDirectory() as keys:
        files = dev_chain_create(Path(keys))
        storage = LocalStorage(Path(keys) / "storage")
        with signer_create(files) as signer, reader_context(files) as context:
            signing = Signing(signer=signer, context=context, watermark=BENCH_KEY)
            for serial, (variant, image) in enumerate(zip(variants, images, strict=True), start=1):
                with stages.timing(storage):
                    started, cpu = time.perf_counter(), time.thread_time()
                    made = image_finalize(
                        variant, serial=serial, mark_id=serial, image=image, signing=signing, storage=storage
                    )
                    total = ((time.perf_counter() - started) * 1000, (time.thread_time() - cpu) * 1000)
                    stages.asset_end(total)
                totals.append(total[0])
                with stopwatch(verify):
                    master = storage.read(made.file_path)
                    trusted = c2pa_read(master, mime="image/png", context=context).state == "trusted"
                    decoded = Image.open(io.BytesIO(master)).convert("RGB")
                    found = watermark_read(decoded, key=BENCH_KEY.secret).serial == serial
                if not (trusted and found):
                    raise SystemExit(f"asset {serial}: C2PA trusted={trusted}, watermark found={found}")

    out = variants[0].output
    print(
        f"pipeline stages: {len(variants)} assets, model {manifest.name} at {params.width}x{params.height}, "
        f"{params.steps} steps, output {out.width}x{out.height} PNG, batch {args.batch_size}"
    )
    print(f"  {'model load (once per worker)':34} {load_ms:8.1f} ms")
    print(f"  {'generate (per image, batched)':34} {gen_per_image:8.1f} ms")
    print(f"  {'post-process (median per image)':34} {statistics.median(totals):8.1f} ms")
    print(f"  {'verify a master (median)':34} {statistics.median(verify):8.1f} ms")
    per_asset = gen_per_image + statistics.median(totals)
    print(
        f"  {'total per asset (without verify)':34} {per_asset:8.1f} ms  -> {1000 / per_asset:.2f} assets/s on one core"
    )
    stage_print([(f"{out.width}x{out.height}", stages.medians())])


if __name__ == "__main__":
    main()
