"""One batch of a run: generate it (one model call for images, one clip per variant for video),
then watermark, sign and store each file, with captions for the alt text when a captioner is set."""

from __future__ import annotations

import logging
import os
import queue
import threading
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

import numpy as np
from PIL import Image

from models import ModelManifest
from models.captioner import alt_text_compose, captioner_load
from models.loading import pipeline_load, pipeline_setup
from models.safety import safety_classifier_load
from pipeline.config import PipelineConfig
from pipeline.errors import error_text
from pipeline.finalize import Signing, clip_finalize, image_finalize
from pipeline.finalize_pool import FinalizePool, finalize_pool_for
from pipeline.finalize_process import StillJob
from pipeline.generate import Beside, images_generate
from pipeline.video import clips_generate
from prompt_library.specs import Variant
from provenance.credentials import reader_context
from provenance.errors import StorageError
from provenance.keys import signer_create
from provenance.media import WATERMARK_MIN_SIDE
from provenance.mp4 import Clip
from provenance.storage import LocalStorage
from provenance.watermark import watermark_embed
from provenance.watermark_keys import WatermarkKey, watermark_keys_load
from review.intake import GeneratedFile

logger = logging.getLogger("greenlight.pipeline")

# What a batch makes: one image per variant, or one clip per variant of a video template.
Media = Image.Image | Clip


def batch_generate(
    manifest: ModelManifest, variants: Sequence[Variant], *, beside: Beside | None = None
) -> list[Media]:
    """Generate a batch with the model loaded once per worker process: one image per variant
    (one pipeline call), or one clip per variant when the template's output is a video.
    ``beside``: the previous batch's finalising, running meanwhile on cores the model gives up
    until it is done (``FinalizePlan.yields``); clips wait for it then and have every core."""
    pipe = pipeline_load(manifest)
    if variants and variants[0].output.is_video:
        if beside is not None and beside.cores:
            beside.wait()
        return list(clips_generate(pipe, manifest, variants))
    return list(images_generate(pipe, manifest, variants, beside=beside))


@dataclass(frozen=True)
class FinalizePlan:
    """How a run's post-processing (watermark, sign, store) shares the machine with generation:
    ``overlap`` finalises batch i-1 while batch i generates (else each batch is finalised after it
    is generated, before the next starts), ``threads`` assets at once, ``nice`` lowers the
    finalising threads' priority below generation's (Linux schedules threads apart), ``yields``
    torch threads the next batch's generation gives up while the previous batch is finalised
    beside it, taking them back once that is done (``pipeline.generate.Beside``)."""

    overlap: bool
    threads: int
    nice: int = 0
    reason: str = ""
    yields: int = 0

    @property
    def alone(self) -> int:
        """Assets finalised at once where nothing generates meanwhile (the last batch, a worker
        that finishes each batch before the next): the plan's threads and the cores generation
        would give up; the processes a finalising pool for this plan starts."""
        return self.threads + self.yields


def finalize_plan(*, device: str, cores: int | None = None, generation_threads: int | None = None) -> FinalizePlan:
    """The plan for a worker whose model runs on ``device`` with ``generation_threads`` torch
    threads (default: torch's) on ``cores`` cores (default: those this process may use).

    * An accelerator: generation needs about one core to feed it, so the other cores finalise
      the previous batch meanwhile; the GPU never waits for the CPU.
    * A CPU with cores the model does not use: those cores finalise the previous batch meanwhile.
    * A CPU whose cores all run the model (the default): the previous batch is finalised on one
      core while the next one generates, the model giving that core's torch thread up until it is
      done (``yields``), then generating on every core. Torch's OpenMP threads spin at their
      barriers, so work beside a generation that keeps all its threads finds no idle core: measured
      on 2 cores (embedded model, batch 8, 2 torch threads, post-processing at 512²), finalising
      beside generation in a thread at nice 19 took 11.7 s for 64 images against the raw loop's
      8.8 s, and with the finalising pool's processes a served campaign of 256 variants took 43.1
      to 47.2 s overlapping against 41.1 and 42.1 s between batches. Handing the core over
      instead: a batch's cycle 1,679 ms against 1,906 ms between batches (``Beside``), and
      ``bench.pipeline`` (256 variants) gave campaign/raw 0.902-0.935 in six runs against
      0.879-0.907 in four between batches (``--finalize after``).
    * One core: each batch is finalised between two batches.
    """
    cores = cores or len(os.sched_getaffinity(0))
    if device != "cpu":
        left = max(1, cores - 1)
        return FinalizePlan(overlap=True, threads=left, reason=f"{device}: {left} core(s) finalise while it generates")
    if generation_threads is None:
        import torch

        generation_threads = torch.get_num_threads()
    left = cores - generation_threads
    if left >= 1:
        return FinalizePlan(
            overlap=True, threads=left, reason=f"cpu: {left} core(s) the model does not use finalise meanwhile"
        )
    if cores >= 2 and generation_threads >= 2:
        return FinalizePlan(
            overlap=True,
            threads=1,
            yields=1,
            reason=f"cpu: the model uses all {cores} core(s); it gives one up while the previous batch is "
            "finalised there",
        )
    return FinalizePlan(
        overlap=False, threads=cores, reason=f"cpu: the model uses all {cores} core(s); finalise between batches"
    )


def model_finalize_plan(manifest: ModelManifest) -> FinalizePlan:
    """The post-processing plan of a run or a worker whose model is ``manifest``: ``finalize_plan``
    for the device the model is set up on (loading it, if this process has not). The one place a
    run (``pipeline.run``) and a warm worker (``pipeline.work``) get their plan from."""
    return finalize_plan(device=pipeline_setup(manifest).plan.device)


def thread_priority_lower(nice: int) -> None:
    """Lower the calling thread's priority by ``nice`` (Linux schedules threads apart, and the
    threads it starts inherit it; elsewhere a no-op), so that it runs on what generation leaves:
    the initializer of a plan's finalising thread (``FinalizePlan.nice``)."""
    if not nice:
        return
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), os.getpriority(os.PRIO_PROCESS, 0) + nice)
    except (AttributeError, OSError):  # not Linux, or not allowed: the plan still holds, unniced
        logger.debug("could not lower the finalising thread's priority by %d", nice)


def worker_warm(manifests: Sequence[ModelManifest], config: PipelineConfig) -> FinalizePlan:
    """What a long-lived worker pays once, at start, instead of in its first run: load each
    model (``pipeline_load`` keeps it for the process), open the signer and trust context once
    (the signing files are read and checked), and mark one noise image (the watermark builds its
    codebook on first use). Returns the post-processing plan for the first model's device."""
    plan = finalize_plan(device="cpu")
    for index, manifest in enumerate(manifests):
        pipeline_load(manifest)
        if index == 0:
            plan = model_finalize_plan(manifest)
    mark_key = watermark_keys_load(config.watermark_keys).current
    grain = np.random.default_rng(0).integers(64, 192, (WATERMARK_MIN_SIDE, WATERMARK_MIN_SIDE, 3), dtype=np.uint8)
    with signer_create(config.signing), reader_context(config.signing):
        watermark_embed(Image.fromarray(grain), 1, key=mark_key.secret)
    return plan


@dataclass(frozen=True)
class Judged:
    """What the batch's models say of its media before it is finalised: each one's caption (""
    for none) and safety verdict ({} where its template names no classifier), or the
    classifier's error, with which every asset of the batch then fails."""

    captions: list[str]
    verdicts: list[dict[str, object]]
    error: str = ""


def batch_judge(variants: Sequence[Variant], media: Sequence[Media], config: PipelineConfig) -> Judged:
    """Caption and score a batch (``batch_captions``, ``batch_safety``): model work, so a run or a
    worker calls it on the thread that generates before finalising the batch elsewhere (torch's
    threads belong to the thread that calls it: ``pipeline.work``)."""
    captions = batch_captions(media, config)
    try:
        verdicts = batch_safety(variants, media, config)
    except Exception as exc:
        logger.exception("safety classifier failed on a batch of %d", len(variants))
        return Judged(captions, [], error_text(exc))
    return Judged(captions, verdicts)


def batch_finalize(
    variants: Sequence[Variant],
    serials: Sequence[int],
    media: Sequence[Media],
    config: PipelineConfig,
    *,
    mark_ids: Sequence[int],
    threads: int = 1,
    judged: Judged | None = None,
) -> tuple[list[GeneratedFile], list[tuple[str, str]]]:
    """Watermark (each asset's mark id, with the installation's current watermark key), sign and
    store each image or clip of a batch, with its caption and safety verdict (``judged``, else
    ``batch_judge`` here). A failure is returned with its variant, not raised, so one bad file
    does not lose the rest of the batch.

    ``threads`` (``finalize_plan``) finalise that many assets at once, each thread with its own
    signer and trust context, opened once for the batch (c2pa's native handles are not shared
    between threads), taking the batch's assets one at a time as it is free. Where this process
    started a finalising pool for ``config`` (a warm worker: ``pipeline.finalize_pool``), a batch
    of stills is finalised in its processes instead, ``threads`` of them at once. Results keep
    the batch's order. The batch's files (the pool's too) are made durable together at the end
    (``LocalStorage.sync``), before anything is handed over; if that fails, so does every asset
    of the batch."""
    if threads < 1:
        raise ValueError(f"threads = {threads}: finalising needs at least one thread")
    judged = judged or batch_judge(variants, media, config)
    if judged.error:  # never handed over unscored: each asset records the failure
        return [], [(variant.key, judged.error) for variant in variants]
    captions, verdicts = judged.captions, judged.verdicts
    mark_key = watermark_keys_load(config.watermark_keys).current
    items = list(zip(variants, serials, mark_ids, media, captions, verdicts, strict=True))
    workers = min(threads, len(items))
    storage = LocalStorage(config.storage_root, deferred=True)  # shared: its writes are listed, not synced
    warm_pool = finalize_pool_for(config)
    if warm_pool is not None and all(isinstance(item, Image.Image) for item in media):
        results = [_pool_finalize(warm_pool, items, mark_key, storage, width=workers)]
    elif workers <= 1:
        results = [_assets_finalize(items, config, mark_key, storage)]
    else:
        # Each thread takes the next asset when it is free (an asset that needs a stronger mark
        # does not hold back a fixed share of the batch behind it).
        pending: queue.SimpleQueue[_Item] = queue.SimpleQueue()
        for one in items:
            pending.put(one)
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="asset-finalize") as pool:
            results = list(
                pool.map(lambda _: _assets_finalize(_drained(pending), config, mark_key, storage), range(workers))
            )
    by_key = {key: outcome for result in results for key, outcome in result}
    try:
        storage.sync()
    except StorageError as exc:  # not durable: nothing of this batch may be handed over
        logger.exception("syncing a batch of %d finalised assets failed", len(items))
        by_key = {key: outcome if isinstance(outcome, str) else error_text(exc) for key, outcome in by_key.items()}
    done: list[GeneratedFile] = []
    failed: list[tuple[str, str]] = []
    for variant in variants:
        outcome = by_key[variant.key]
        if isinstance(outcome, str):
            failed.append((variant.key, outcome))
        else:
            done.append(outcome)
    return done, failed


# variant, serial, mark id, image or clip, caption, safety verdict
_Item = tuple[Variant, int, int, Media, str, dict[str, object]]


def _drained(pending: queue.SimpleQueue[_Item]) -> Iterator[_Item]:
    """The items of ``pending`` as this thread takes them, until none is left."""
    while True:
        try:
            yield pending.get_nowait()
        except queue.Empty:
            return


def _assets_finalize(
    items: Iterable[_Item], config: PipelineConfig, mark_key: WatermarkKey, storage: LocalStorage
) -> list[tuple[str, GeneratedFile | str]]:
    """Finalise ``items`` in turn with one signer and one trust context, into ``storage`` (the
    batch's, synced by the caller): each variant's key with its file, or with the error text
    recorded on its asset."""
    outcomes: list[tuple[str, GeneratedFile | str]] = []
    with signer_create(config.signing) as signer, reader_context(config.signing, verify_after_sign=False) as context:
        signing = Signing(signer=signer, context=context, watermark=mark_key)
        for variant, serial, mark_id, item, caption, verdict in items:
            try:
                if isinstance(item, Clip):
                    file = clip_finalize(
                        variant, serial=serial, mark_id=mark_id, clip=item, signing=signing, storage=storage
                    )
                else:
                    file = image_finalize(
                        variant,
                        serial=serial,
                        mark_id=mark_id,
                        image=item,
                        signing=signing,
                        storage=storage,
                        safety=verdict,
                    )
                outcomes.append((variant.key, _captioned(file, variant, caption)))
            except Exception as exc:  # recorded on the asset row by the caller
                logger.exception("finalising asset %s failed", serial)
                outcomes.append((variant.key, error_text(exc)))
    return outcomes


def _pool_finalize(
    pool: FinalizePool, items: Sequence[_Item], mark_key: WatermarkKey, storage: LocalStorage, *, width: int
) -> list[tuple[str, GeneratedFile | str]]:
    """Finalise a batch of stills in the process's finalising pool (``pipeline.finalize_pool``),
    ``width`` at once at most: as ``_assets_finalize`` does, the files the pool's processes wrote
    listed in ``storage`` for the batch's sync."""
    jobs = [
        StillJob(variant=variant, serial=serial, mark_id=mark_id, image=image, safety=verdict)
        for variant, serial, mark_id, image, _, verdict in items
        if isinstance(image, Image.Image)
    ]
    outcomes: list[tuple[str, GeneratedFile | str]] = []
    for (key, outcome, written), (variant, *_, caption, _) in zip(
        pool.finalize(jobs, mark_key, width=width), items, strict=True
    ):
        storage.adopt(written)
        outcomes.append((key, outcome if isinstance(outcome, str) else _captioned(outcome, variant, caption)))
    return outcomes


def _captioned(file: GeneratedFile, variant: Variant, caption: str) -> GeneratedFile:
    """The file with the captioner's caption added to its alt text, if there is one."""
    return replace(file, alt_text=alt_text_compose(variant.alt_text, caption)) if caption else file


def batch_safety(
    variants: Sequence[Variant], media: Sequence[Media], config: PipelineConfig
) -> list[dict[str, object]]:
    """Each image's safety verdict from its template's classifier, in one batch (a batch is one
    template version): {name, manifest_hash, threshold, score, flagged}; {} where none is named."""
    first = variants[0] if variants else None
    if first is None or not first.params.safety or first.output.is_video:
        return [{} for _ in media]
    name, pinned, threshold = first.params.safety
    classifier = safety_classifier_load(name, manifests_dir=config.models_dir, pinned=pinned)
    stills = [item for item in media if isinstance(item, Image.Image)]
    scores = classifier.scores(stills)
    return [
        {"name": name, "manifest_hash": pinned, "threshold": threshold, "score": score, "flagged": score >= threshold}
        for score in scores
    ]


def batch_captions(media: Sequence[Media], config: PipelineConfig) -> list[str]:
    """The captioning model's caption of each image (a clip's first frame), in one batch; empty
    strings when no captioner is configured or it fails (the template's alt text then stands)."""
    if not config.captioner:
        return [""] * len(media)
    stills = [item.frames[0] if isinstance(item, Clip) else item for item in media]
    try:
        return captioner_load(config.captioner, manifests_dir=config.models_dir).captions(stills)
    except Exception:  # alt text falls back to the template's; the asset is not lost over a caption
        logger.exception("captioner %r failed; alt text stays the template's", config.captioner)
        return [""] * len(media)
