"""One batch of a campaign run, made by a long-lived worker on a warm model.

A worker process keeps a `Warm` state: its name, the pipeline configuration, the models it has
loaded (`models.cache.PipelineCache`, least recently used out) and the template versions it has
checked. `batch_work` takes a batch's assets under a lease (`review.intake.run_batch_take`: none
when the run is paused or cancelled, or another live worker holds them), generates them with the
pipeline's own batch functions, watermarks, signs and stores them, and hands them over; the
hand-over is idempotent on the asset key, so a batch made again after its worker died is counted
once. Files of assets cancelled while the batch was being made are removed, so nothing is left
half-written.

Post-processing shares the machine with generation as a run's does: each model's plan comes from
``pipeline.batches.model_finalize_plan`` (the same as ``pipeline.run``'s), which says whether a
batch is finished beside the next one's generation and on how many threads.

A worker makes its batches in one long-lived thread of its own, the *model thread*
(``Warm.on_model_thread``): the model is loaded and every batch generated there, whichever thread
its task arrived on. Torch's CPU kernels run on an OpenMP team that belongs to the thread that
calls them, and libgomp stops its threads spinning between kernels once a process holds more
OpenMP threads than there are cores: a second thread calling torch (a task runner's, after the
model was loaded in the main one) made batches up to twice as slow on 2 cores (a 20-step batch
of 8 on the embedded model, measured in one process: 1.1-1.7 s in the main thread, 1.8-2.3 s in
another thread after the main one had generated).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TypeVar

from models import ModelManifest, manifest_load
from models.cache import PipelineCache
from pipeline.batches import (
    FinalizePlan,
    Judged,
    Media,
    batch_finalize,
    batch_generate,
    batch_judge,
    model_finalize_plan,
    thread_priority_lower,
)
from pipeline.config import PipelineConfig
from pipeline.errors import error_text
from pipeline.generate import Beside
from pipeline.preflight import version_preflight
from prompt_library.selectors import prompt_version_get
from provenance.storage import LocalStorage
from review.intake import TakenAsset, run_batch_hand_over, run_batch_take

logger = logging.getLogger("greenlight.worker")

_T = TypeVar("_T")


@dataclass
class Warm:
    """What a worker process keeps between batches."""

    name: str
    config: PipelineConfig
    lease_seconds: float
    cache: PipelineCache = field(default_factory=PipelineCache)
    checked: dict[tuple[str, int], ModelManifest] = field(default_factory=dict)
    current: set[int] = field(default_factory=set)  # serials being made: the heartbeat renews their leases
    batches_done: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    # May a batch be finished (finalised and handed over) in one thread of its own while the next
    # one is generated? It is where this allows it and the model's post-processing plan says so
    # (an accelerator, or CPU cores the model does not use): generation never waits for the CPU work.
    overlap: bool = False
    # The post-processing plan for every model (tests, benches); None: each model's own
    # (``model_finalize_plan``), found once and kept in ``plans`` by manifest hash.
    finalize: FinalizePlan | None = None
    plans: dict[str, FinalizePlan] = field(default_factory=dict)
    pending: Future[BatchOutcome] | None = None
    _finisher: ThreadPoolExecutor | None = None
    # Batches made at once (the worker's --limit): the model threads. One on a CPU (see the module).
    model_threads: int = 1
    _model_pool: ThreadPoolExecutor | None = None

    def on_model_thread(self, function: Callable[..., _T], /, *args: object, **kwargs: object) -> _T:
        """``function(*args, **kwargs)`` run in one of the worker's model threads (see the
        module), its result returned or its exception raised here; callers from other threads
        wait their turn. From a model thread it is a plain call."""
        if getattr(_MODEL_THREAD, "on", False):
            return function(*args, **kwargs)
        with self.lock:
            if self._model_pool is None:
                self._model_pool = ThreadPoolExecutor(
                    max_workers=self.model_threads, thread_name_prefix="model", initializer=_model_thread_mark
                )
            pool = self._model_pool
        return pool.submit(function, *args, **kwargs).result()

    def finisher(self, nice: int = 0) -> ThreadPoolExecutor:
        """The one thread batches are finished in, made at the first overlapping plan's priority."""
        if self._finisher is None:
            self._finisher = ThreadPoolExecutor(
                max_workers=1, thread_name_prefix="batch-finish", initializer=thread_priority_lower, initargs=(nice,)
            )
        return self._finisher

    def plan(self, manifest: ModelManifest) -> FinalizePlan:
        """The post-processing plan for batches of ``manifest``'s model (call it with the model
        loaded: it reads the device the model was set up on)."""
        if self.finalize is not None:
            return self.finalize
        plan = self.plans.get(manifest.manifest_hash)
        if plan is None:
            plan = self.plans[manifest.manifest_hash] = model_finalize_plan(manifest)
            logger.info("worker=%s model=%s post-processing plan: %s", self.name, manifest.name, plan.reason or plan)
        return plan

    def flush(self) -> None:
        """Wait until the batch being finished (if any) is handed over."""
        pending, self.pending = self.pending, None
        if pending is not None:
            try:
                pending.result()
            except Exception:  # logged where it happened; its assets' leases lapse and are retried
                logger.exception("worker=%s finishing a batch failed", self.name)

    def manifest(self, template: str, number: int) -> ModelManifest:
        """The model of a template version, checked once per worker (`version_preflight`) and made
        the most recently used of the warm models (loading it, evicting another if need be)."""
        known = self.checked.get((template, number))
        if known is not None:
            self.cache.get(known)
            return known
        version = prompt_version_get(template=template, number=number)
        self.cache.get(manifest_load(version.model_name, manifests_dir=self.config.models_dir))
        manifest = version_preflight(version, self.config)
        self.checked[(template, number)] = manifest
        return manifest


_MODEL_THREAD = threading.local()


def _model_thread_mark() -> None:
    _MODEL_THREAD.on = True


@dataclass(frozen=True)
class BatchOutcome:
    """What one work item did: how many assets it took, handed over, recorded as failed, and how
    many stored files it removed because nobody uses them."""

    run_id: int
    worker: str
    asked: int
    taken: int
    handed: int
    failed: int
    removed: int
    seconds: float

    def line(self) -> str:
        return (
            f"run={self.run_id} worker={self.worker} batch asked={self.asked} taken={self.taken} "
            f"handed={self.handed} failed={self.failed} removed={self.removed} seconds={self.seconds:.2f}"
        )


def batch_work(*, run_id: int, serials: Sequence[int], warm: Warm) -> BatchOutcome:
    """Make what is still to be made of one batch of a run, and hand it over (see the module).

    Where `warm.overlap` allows it and every model of the batch has an overlapping plan
    (`Warm.plan`), the batch is generated here and finalised (watermark, sign, store, hand over)
    in the worker's one finishing thread, while the next batch is generated: this returns once
    the previous batch is finished and this one's finishing has started (its outcome is logged
    when it ends). Otherwise it is finished here, after the previous one. Either way it is
    finalised on the plan's threads, and its leases are renewed until it is handed over.
    """
    started = time.perf_counter()
    taken = run_batch_take(run_id=run_id, serials=serials, worker=warm.name, lease_seconds=warm.lease_seconds)
    if not taken:
        logger.info("run=%s worker=%s batch skipped: nothing to take of %d", run_id, warm.name, len(serials))
        return BatchOutcome(run_id, warm.name, len(serials), 0, 0, 0, 0, time.perf_counter() - started)
    with warm.lock:
        warm.current.update(t.serial for t in taken)
    try:
        generated = _generate(run_id, taken, warm)
    except BaseException:
        _release(warm, taken)
        raise
    plans = [group.plan for group in generated if group.plan is not None]
    warm.flush()  # batches are handed over in order, and at most one finishes beside generation
    if not (warm.overlap and plans and all(plan.overlap for plan in plans)):
        return _finish(run_id, len(serials), taken, generated, warm, started, alone=True)
    finisher = warm.finisher(nice=plans[0].nice)
    warm.pending = finisher.submit(_finish, run_id, len(serials), taken, generated, warm, started, alone=False)
    return BatchOutcome(run_id, warm.name, len(serials), len(taken), 0, 0, 0, time.perf_counter() - started)


@dataclass(frozen=True)
class _Generated:
    """One template version's part of a batch: its assets and their post-processing plan (None
    where the model could not be had), then either their images or clips, each one's share of
    the generation time and their captions and safety verdicts, or the error that stopped them."""

    items: list[TakenAsset]
    plan: FinalizePlan | None
    media: Sequence[Media] | None = None
    seconds_each: float | None = None
    judged: Judged | None = None
    error: str = ""


def _generate(run_id: int, taken: Sequence[TakenAsset], warm: Warm) -> list[_Generated]:
    """One model call per template version of the batch, on the warm pipeline."""
    groups: dict[tuple[str, int], list[TakenAsset]] = {}
    for item in taken:
        groups.setdefault((item.variant.template, item.variant.template_version), []).append(item)
    out: list[_Generated] = []
    for (template, number), items in groups.items():
        plan = None
        try:
            manifest = warm.manifest(template, number)
            plan = warm.plan(manifest)  # the model is loaded now (``Warm.manifest``)
            generate_started = time.perf_counter()
            # The batch before, finalised meanwhile (on the cores the model gives up: plan.yields).
            pending = warm.pending
            beside = Beside(pending, plan.yields) if pending is not None else None
            variants = [t.variant for t in items]
            media = batch_generate(manifest, variants, beside=beside)
            # Each asset's share of the generation time (the dashboard's cost).
            seconds_each = (time.perf_counter() - generate_started) / max(1, len(items))
            judged = batch_judge(variants, media, warm.config)  # model work: on the model thread
            out.append(_Generated(items, plan, media, seconds_each, judged))
        except Exception as exc:  # the whole group failed: recorded on each of its assets
            logger.exception("run=%s worker=%s batch of %d failed to generate", run_id, warm.name, len(items))
            out.append(_Generated(items, plan, error=error_text(exc)))
    return out


def _release(warm: Warm, taken: Sequence[TakenAsset]) -> None:
    with warm.lock:
        warm.current.difference_update(t.serial for t in taken)
        warm.batches_done += 1


def _finish(
    run_id: int,
    asked: int,
    taken: Sequence[TakenAsset],
    generated: list[_Generated],
    warm: Warm,
    started: float,
    *,
    alone: bool,
) -> BatchOutcome:
    try:
        handed, failed, removed = _make(run_id, generated, warm, alone=alone)
    finally:
        _release(warm, taken)
    outcome = BatchOutcome(run_id, warm.name, asked, len(taken), handed, failed, removed, time.perf_counter() - started)
    logger.info(outcome.line())
    return outcome


def _make(run_id: int, generated: list[_Generated], warm: Warm, *, alone: bool) -> tuple[int, int, int]:
    """Finalise and hand over what was generated, one template version at a time; ``alone``:
    nothing generates meanwhile, so the cores a plan leaves to generation finalise too."""
    handed = failed = removed = 0
    storage = LocalStorage(warm.config.storage_root)
    for group in generated:
        items, plan = group.items, group.plan
        serials = [t.serial for t in items]
        variants = [t.variant for t in items]
        try:
            if group.media is None or plan is None:
                raise _GenerationFailed(group.error)
            files, failures = batch_finalize(
                variants,
                serials,
                group.media,
                warm.config,
                mark_ids=[t.mark_id for t in items],
                threads=plan.alone if alone else plan.threads,
                judged=group.judged,
            )
        except _GenerationFailed:
            files, failures = [], [(v.key, group.error) for v in variants]
        except Exception as exc:  # the whole group failed: recorded on each of its assets
            logger.exception("run=%s worker=%s batch of %d failed to finalise", run_id, warm.name, len(items))
            text = error_text(exc)
            files, failures = [], [(v.key, text) for v in variants]
        result = run_batch_hand_over(
            run_id=run_id, worker=warm.name, files=files, failures=failures, generation_seconds=group.seconds_each
        )
        for file in result.unused:  # its asset was cancelled (or made elsewhere) meanwhile
            for path in (file.file_path, file.thumb_path):
                if path and storage.exists(path):
                    storage.delete(path)
                    removed += 1
        by_key = {t.variant.key: t.serial for t in items}
        for file in files:
            if by_key[file.key] in result.handed:
                logger.info("run=%s serial=%s worker=%s handed over", run_id, by_key[file.key], warm.name)
        for serial in result.failed:
            logger.warning("run=%s serial=%s worker=%s failed", run_id, serial, warm.name)
        handed += len(result.handed)
        failed += len(result.failed)
    return handed, failed, removed


class _GenerationFailed(Exception):
    """A group whose generation failed (its error already recorded as text)."""
