"""Cost of provenance per asset on this machine: watermark, sign, verify, at 512² and 1024².

    python -m bench.provenance [--count 5] [--sizes 512 1024] [--algorithm ed25519|es256]

Single-threaded, no database and no model: synthetic product-shot-like images (soft shapes and
noise), a fresh development chain of ``--algorithm``'s keys (the default chain's, Ed25519; an
organisation's ECDSA certificate signs and reads back as ``es256`` does). For each size it
times, per image:

* watermark: `watermark_embed` (the serial into the pixels, read back once inside);
* encode: PNG encoding of the marked image (the file format's cost, not provenance's; shown
  apart so that it does not hide the signing cost);
* sign: `c2pa_sign` (no thumbnail, no timestamp authority) and the read-back the pipeline does
  for the manifest store (`signed_manifest`);
* verify: `review.verify.file_examine`, what `file_verify` does to a file before its database
  lookups (a few indexed queries, not timed here): format from the bytes, header and pixel
  checks, full decode, C2PA read and validation, watermark read;
* verify copy: the same for a stripped copy (decoded and saved as JPEG q80), which the watermark
  has to identify on its own;
* post-process: the whole of what a worker does to one generated image, ``image_finalize``
  (watermark, encode, sign, read back, signed thumbnail, store both files, and the hand-off
  record for review), on one thread, plus its share of the batch's one sync of the files it
  stored (``LocalStorage.sync``, the ``--count`` images of a size making one batch); its
  median wall time is held against the goals (``GOALS_MS``: 25 ms at 512², 60 ms at 1024²),
  with its CPU time beside it. The hand-over's database write is per batch and shows in
  ``bench.pipeline``'s stage table.
* post-process stages: the same calls made again with a timer around each function
  ``image_finalize`` calls (``FinalizeStages``: the real code path, cut where it calls out), so
  that the stage table adds up to what the total measures.

Prints the median of each in milliseconds, and the load average: on a machine shared with other
work the wall times carry that load; the CPU columns much less so.
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import c2pa
import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFilter

import infra.django_boot  # noqa: F401  (review.verify reads Django settings)
import pipeline.finalize
import provenance.renditions
from infra.dev_certs import ALGORITHMS, DEFAULT_ALGORITHM, dev_chain_create
from pipeline.finalize import Signing, image_finalize
from prompt_library.expansion import campaign_expand
from prompt_library.parsing import template_parse
from prompt_library.specs import CampaignSpec, GenerationParams, Variant
from provenance.credentials import c2pa_sign, generated_manifest, reader_context, signed_manifest
from provenance.keys import signer_create
from provenance.renditions import image_encode
from provenance.storage import LocalStorage
from provenance.watermark import DEFAULT_KEY, watermark_embed, watermark_payload
from provenance.watermark_keys import WatermarkKey, WatermarkKeyRing
from review.verify import file_examine

# The watermark's default key: the bench measures cost, not the installation's secret.
BENCH_KEY = WatermarkKey(key_id="wk-0123456789ab", secret=DEFAULT_KEY)

STAGES = ("watermark", "encode", "sign", "verify", "verify copy")
GOALS_MS = {512: 25.0, 1024: 60.0}  # post-processing per asset on one core


# The functions image_finalize calls, by the stage they make (module, name, stage). The
# thumbnail's own mark (with the encodings its read-backs read) and the read-back of a master's
# mark it keeps are timed inside ``thumbnail_render`` and taken out of it.
FINALIZE_CALLS: tuple[tuple[Any, str, str], ...] = (
    (pipeline.finalize, "watermark_embed_pixels", "mark master"),
    (pipeline.finalize, "png_encode", "encode PNG"),
    (pipeline.finalize, "thumbnail_render", "thumbnail"),
    (provenance.renditions, "watermark_embed_encoded", "thumbnail: mark + encode"),
    (provenance.renditions, "_reads_back", "thumbnail: read mark"),
    (pipeline.finalize, "c2pa_sign", "sign master"),
    (pipeline.finalize, "rendition_sign", "sign thumbnail"),
    (pipeline.finalize, "signed_manifest", "read back (both)"),
    (pipeline.finalize, "image_fingerprint", "hand-off record"),
)
# Stages timed inside another one: (inner, outer).
NESTED = {"thumbnail: mark + encode": "thumbnail", "thumbnail: read mark": "thumbnail"}
STORE = "store (both)"
SYNC = "sync (batch share)"


class FinalizeStages:
    """Wall and CPU milliseconds of each stage of the ``image_finalize`` calls made inside
    ``timing()``, one sample per asset (``asset_end``, in the thread that finalised it, closes
    one; several threads may finalise at once): timers wrap the functions it calls
    (``FINALIZE_CALLS``) and the storage's ``write`` (``storage``, or ``LocalStorage.write`` for
    every storage), and are taken off on leaving."""

    def __init__(self) -> None:
        self.samples: dict[str, list[tuple[float, float]]] = {}
        self._current: dict[int, dict[str, tuple[float, float]]] = {}  # by thread
        self._lock = threading.Lock()

    @contextmanager
    def timing(self, storage: LocalStorage | None = None) -> Iterator[None]:
        originals = [(module, name, getattr(module, name)) for module, name, _ in FINALIZE_CALLS]
        write = LocalStorage.write
        try:
            for (module, name, stage), (_, _, function) in zip(FINALIZE_CALLS, originals, strict=True):
                setattr(module, name, self._timed(function, stage))
            if storage is None:
                LocalStorage.write = self._timed(write, STORE)  # type: ignore[method-assign]
            else:
                storage.write = self._timed(storage.write, STORE)  # type: ignore[method-assign]
            yield
        finally:
            for module, name, function in originals:
                setattr(module, name, function)
            if storage is None:
                LocalStorage.write = write  # type: ignore[method-assign]
            else:
                del storage.write

    def asset_end(self, total: tuple[float, float]) -> None:
        """Close this thread's asset sample: each stage's time, nested ones taken out of their
        outer stage, and what no stage accounts for as "rest"."""
        with self._lock:
            current = self._current.pop(threading.get_ident(), {})
        for inner, outer in NESTED.items():
            if inner in current and outer in current:
                wall, cpu = current[outer]
                current[outer] = (wall - current[inner][0], cpu - current[inner][1])
        current["rest"] = (
            total[0] - sum(wall for wall, _ in current.values()),
            total[1] - sum(cpu for _, cpu in current.values()),
        )
        with self._lock:
            for stage, times in current.items():
                self.samples.setdefault(stage, []).append(times)

    def medians(self) -> dict[str, tuple[float, float]]:
        """Each stage's median wall and CPU milliseconds per asset."""
        return {
            stage: (statistics.median(w for w, _ in times), statistics.median(c for _, c in times))
            for stage, times in self.samples.items()
        }

    def _timed(self, function: Callable[..., Any], stage: str) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            wall, cpu = time.perf_counter(), time.thread_time()
            try:
                return function(*args, **kwargs)
            finally:
                with self._lock:
                    current = self._current.setdefault(threading.get_ident(), {})
                    spent_wall, spent_cpu = current.get(stage, (0.0, 0.0))
                    current[stage] = (
                        spent_wall + (time.perf_counter() - wall) * 1000,
                        spent_cpu + (time.thread_time() - cpu) * 1000,
                    )

        return timed


def batch_sync(storage: LocalStorage, count: int) -> tuple[float, float]:
    """Sync what ``storage`` holds unsynced, as a batch of ``count`` assets does once before its
    hand-over; each asset's share of its wall and CPU milliseconds."""
    started, cpu = time.perf_counter(), time.thread_time()
    storage.sync()
    return (time.perf_counter() - started) * 1000 / count, (time.thread_time() - cpu) * 1000 / count


@contextmanager
def stopwatch(samples: list[float]) -> Iterator[None]:
    """Append the block's wall time in milliseconds to `samples`."""
    start = time.perf_counter()
    yield
    samples.append((time.perf_counter() - start) * 1000)


def product_shot(seed: int, side: int) -> Image.Image:
    """A soft-edged, lightly noisy picture: what the watermark and encoders see in practice."""
    rng = np.random.default_rng(seed)
    image = Image.new("RGB", (side, side), tuple(int(c) for c in rng.integers(150, 230, 3)))
    draw = ImageDraw.Draw(image)
    for _ in range(8):
        x0, y0 = (int(v) for v in rng.integers(0, side * 3 // 4, 2))
        size = int(rng.integers(side // 12, side // 2))
        draw.ellipse((x0, y0, x0 + size, y0 + size), fill=tuple(int(c) for c in rng.integers(0, 256, 3)))
    noise = rng.normal(0, 4, (side, side, 3))
    pixels = np.clip(np.asarray(image.filter(ImageFilter.GaussianBlur(side / 256)), dtype=float) + noise, 0, 255)
    return Image.fromarray(pixels.astype(np.uint8))


def still_variant(side: int) -> Variant:
    """A variant of a square PNG template at ``side`` (no model runs: the image is given)."""
    data = {
        "name": "bench-still",
        "prompt": "a {colour} mug on a wooden table",
        "variables": ["colour"],
        "model": "embedded",
        "output": {"width": side, "height": side, "format": "png"},
    }
    template = template_parse(data, path=Path("bench-still/v1.yaml"), number=1)
    runs = CampaignSpec(
        name="bench",
        title="",
        kind="scheduled",
        template="bench-still",
        template_version=1,
        variables=(("colour", ("red",)),),
        seeds=(1,),
    )
    params = GenerationParams(steps=4, guidance=7.0, width=side, height=side)
    return campaign_expand(runs, template, params=params, model_manifest_hash="sha256:" + "ab" * 32)[0]


def verify_core(data: bytes, *, context: c2pa.Context) -> tuple[str, int | None]:
    """`review.verify.file_examine`: everything `file_verify` does before its database lookups."""
    examined = file_examine(data=data, filename="bench.png", context=context, keys=WatermarkKeyRing(current=BENCH_KEY))
    return examined.c2pa.state, examined.watermark.serial


def _single_thread() -> None:
    """One thread for OpenCV and torch (the watermark's libraries), as one CPU worker runs."""
    cv2.setNumThreads(1)
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=5, help="images per size")
    parser.add_argument("--sizes", type=int, nargs="+", default=[512, 1024])
    parser.add_argument(
        "--algorithm", choices=sorted(ALGORITHMS), default=DEFAULT_ALGORITHM, help="the signing chain's keys"
    )
    args = parser.parse_args()
    _single_thread()

    rows: list[tuple[int, dict[str, float]]] = []
    stage_rows: list[tuple[str, dict[str, tuple[float, float]]]] = []
    with tempfile.TemporaryDirectory() as keys:
        files = dev_chain_create(Path(keys), algorithm=args.algorithm)
        with signer_create(files) as signer, reader_context(files, verify_after_sign=False) as context:
            watermark_embed(product_shot(0, 512), 1)  # warm-up: caches, first-call costs
            for side in args.sizes:
                samples: dict[str, list[float]] = {stage: [] for stage in STAGES}
                for index in range(args.count):
                    serial = 1000 + index
                    image = product_shot(side * 100 + index, side)
                    with stopwatch(samples["watermark"]):
                        marked = watermark_embed(image, serial)
                    manifest = generated_manifest(
                        title=f"bench #{serial}",
                        model_name="bench",
                        model_manifest_hash="0" * 64,
                        generation_record={"serial": serial},
                        watermark_value=watermark_payload(serial),
                    )
                    with stopwatch(samples["encode"]):
                        png = image_encode(marked, "png")
                    with stopwatch(samples["sign"]):
                        signed = c2pa_sign(png, mime="image/png", manifest=manifest, signer=signer, context=context)
                        signed_manifest(signed, kind="master", mime="image/png", context=context)
                    with stopwatch(samples["verify"]):
                        found = verify_core(signed, context=context)
                    if found != ("trusted", serial):
                        raise SystemExit(f"{side}² image {index}: verify found {found}, expected trusted, {serial}")
                    copy = io.BytesIO()
                    Image.open(io.BytesIO(signed)).convert("RGB").save(copy, "JPEG", quality=80)
                    with stopwatch(samples["verify copy"]):
                        found = verify_core(copy.getvalue(), context=context)
                    if found != ("none", serial):
                        raise SystemExit(f"{side}² copy {index}: verify found {found}, expected none, {serial}")
                post_wall, post_cpu = [], []
                # One asset per image, each stored under its own key, as a batch stores them: written
                # as they are made, synced together at its end.
                base = still_variant(side)
                variants = [dataclasses.replace(base, seed=base.seed + index) for index in range(args.count)]
                storage = LocalStorage(Path(keys) / f"storage-{side}", deferred=True)
                signing = Signing(signer=signer, context=context, watermark=BENCH_KEY)
                stages = FinalizeStages()
                for index in range(args.count):
                    image = product_shot(side * 100 + index, side)
                    serial = 2000 + index
                    started, cpu = time.perf_counter(), time.thread_time()
                    made = image_finalize(
                        variants[index], serial=serial, mark_id=serial, image=image, signing=signing, storage=storage
                    )
                    post_wall.append((time.perf_counter() - started) * 1000)
                    post_cpu.append((time.thread_time() - cpu) * 1000)
                    if made.generation_record["thumbnail"] != {"width": 256, "height": 256, "watermark": "own"}:
                        raise SystemExit(f"{side}² image {index}: thumbnail {made.generation_record['thumbnail']}")
                sync = batch_sync(storage, args.count)  # each asset's share of the batch's sync
                post_wall = [wall + sync[0] for wall in post_wall]
                post_cpu = [cpu + sync[1] for cpu in post_cpu]
                # A fresh folder: writing over the files just synced would flush them at the rename
                # (ext4 does so for a file replaced by a rename), which a batch's new files never meet.
                storage = LocalStorage(Path(keys) / f"storage-stages-{side}", deferred=True)
                for index in range(args.count):
                    image = product_shot(side * 100 + index, side)
                    serial = 2000 + index
                    with stages.timing(storage):  # the same asset again, cut into stages
                        started, cpu = time.perf_counter(), time.thread_time()
                        image_finalize(
                            variants[index],
                            serial=serial,
                            mark_id=serial,
                            image=image,
                            signing=signing,
                            storage=storage,
                        )
                        stages.asset_end(((time.perf_counter() - started) * 1000, (time.thread_time() - cpu) * 1000))
                stages.samples[SYNC] = [batch_sync(storage, args.count)] * args.count
                medians = {stage: statistics.median(values) for stage, values in samples.items()}
                medians["post"], medians["post cpu"] = statistics.median(post_wall), statistics.median(post_cpu)
                rows.append((side, medians))
                stage_rows.append((f"{side}x{side}", stages.medians()))

    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    print(
        f"provenance per asset: median ms of {args.count} images per size, one thread, no database, "
        f"{args.algorithm} signing chain"
    )
    print(f"  load average {load} on {os.cpu_count()} cores (1, 5, 15 min, at the end)")
    header = f"  {'size':>9} " + "".join(f"{stage:>13}" for stage in STAGES) + f"{'make (all 3)':>16}"
    print(header)
    for side, medians in rows:
        cells = "".join(f"{medians[stage]:13.1f}" for stage in STAGES)
        print(f"  {f'{side}x{side}':>9} {cells}{medians['watermark'] + medians['encode'] + medians['sign']:16.1f}")
    print("post-processing per asset (image_finalize: watermark, encode, sign, read back, thumbnail, store, hand-off)")
    for side, medians in rows:
        goal = GOALS_MS.get(side)
        verdict = "" if goal is None else f"  goal <= {goal:.0f} ms: {'met' if medians['post'] <= goal else 'MISSED'}"
        print(f"  post-process {side}x{side} {medians['post']:.1f} ms (cpu {medians['post cpu']:.1f} ms){verdict}")
    stage_print(stage_rows)


def stage_print(stage_rows: list[tuple[str, dict[str, tuple[float, float]]]]) -> None:
    """The post-processing stage table: median wall and CPU ms per asset, one column pair for
    each (label, ``FinalizeStages.medians()``) of ``stage_rows``."""
    if not stage_rows:
        return
    print("post-processing stages (median ms per asset: wall / cpu)")
    print(f"  {'stage':24}" + "".join(f"{label:>18}" for label, _ in stage_rows))
    order = [stage for _, _, stage in FINALIZE_CALLS] + [STORE, SYNC, "rest"]
    for stage in order:
        cells = [medians.get(stage) for _, medians in stage_rows]
        if all(cell is None for cell in cells):
            continue
        text = "".join(f"{'-':>18}" if cell is None else f"{cell[0]:10.1f} /{cell[1]:6.1f}" for cell in cells)
        label = f"{stage} (rest)" if stage in NESTED.values() else stage
        print(f"  {label:24}{text}")


if __name__ == "__main__":
    main()
