"""One batch of a campaign run, made by a long-lived worker on a warm model.

A worker process keeps a `Warm` state: its name, the pipeline configuration, the models it has
loaded (`models.cache.PipelineCache`, least recently used out) and the template versions it has
checked. `batch_work` takes a batch's assets under a lease (`review.intake.run_batch_take`: none
when the run is paused or cancelled, or another live worker holds them), generates them with the
pipeline's own batch functions, watermarks, signs and stores them, and hands them over; the
hand-over is idempotent on the asset key, so a batch made again after its worker died is counted
once. Files of assets cancelled while the batch was being made are removed, so nothing is left
half-written.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from models import ModelManifest, manifest_load
from models.cache import PipelineCache
from pipeline.batches import batch_finalize, batch_generate, error_text
from pipeline.config import PipelineConfig
from pipeline.preflight import version_preflight
from prompt_library.selectors import prompt_version_get
from provenance.storage import LocalStorage
from review.intake import TakenAsset, run_batch_hand_over, run_batch_take

logger = logging.getLogger("greenlight.worker")


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
    """Make what is still to be made of one batch of a run, and hand it over (see the module)."""
    started = time.perf_counter()
    taken = run_batch_take(run_id=run_id, serials=serials, worker=warm.name, lease_seconds=warm.lease_seconds)
    if not taken:
        logger.info("run=%s worker=%s batch skipped: nothing to take of %d", run_id, warm.name, len(serials))
        return BatchOutcome(run_id, warm.name, len(serials), 0, 0, 0, 0, time.perf_counter() - started)
    with warm.lock:
        warm.current.update(t.serial for t in taken)
    try:
        handed, failed, removed = _make(run_id, taken, warm)
    finally:
        with warm.lock:
            warm.current.difference_update(t.serial for t in taken)
            warm.batches_done += 1
    outcome = BatchOutcome(
        run_id, warm.name, len(serials), len(taken), handed, failed, removed, time.perf_counter() - started
    )
    logger.info(outcome.line())
    return outcome


def _make(run_id: int, taken: Sequence[TakenAsset], warm: Warm) -> tuple[int, int, int]:
    """Generate, finalise and hand over the taken assets, one model call per template version."""
    groups: dict[tuple[str, int], list[TakenAsset]] = {}
    for item in taken:
        groups.setdefault((item.variant.template, item.variant.template_version), []).append(item)
    handed = failed = removed = 0
    storage = LocalStorage(warm.config.storage_root)
    for (template, number), items in groups.items():
        serials = [t.serial for t in items]
        variants = [t.variant for t in items]
        try:
            manifest = warm.manifest(template, number)
            media = batch_generate(manifest, variants)
            files, failures = batch_finalize(variants, serials, media, warm.config, mark_ids=[t.mark_id for t in items])
        except Exception as exc:  # the whole group failed: recorded on each of its assets
            logger.exception("run=%s worker=%s batch of %d failed", run_id, warm.name, len(items))
            error = error_text(exc)
            files, failures = [], [(v.key, error) for v in variants]
        result = run_batch_hand_over(run_id=run_id, worker=warm.name, files=files, failures=failures)
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
