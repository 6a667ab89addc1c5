"""Post-processing in processes of its own: a warm worker's pool for finalising still images.

Finalising an image (watermark, encode, sign, read back, thumbnail, store) is mostly native code,
but about a quarter of it holds the GIL (numpy's small arrays, c2pa-python's stream callbacks,
the manifests' Python): threads of one process then wait on each other. Measured on 2 cores, 32
assets at 512², medians of two runs: one thread 18.2-29.8 ms an asset, two threads 14.1-14.3 ms,
two processes 10.5-11.3 ms. So a long-lived process (a generation worker, or a bench that stands
for one) starts ``FinalizePool`` once, and every batch of stills is finalised there; each process
opens its signer and trust context once, not once a batch. Clips, and processes that started no
pool (a run in a fresh process, the tests of the threads), finalise in threads
(``pipeline.batches.batch_finalize``).

A batch's pixels reach the processes through a block of shared memory that the pool keeps and
reuses (``_PixelBlocks``), each job carrying only where its still lies; the job, its variant
and its result still travel pickled. Measured on 2 cores (256 assets at 512², 8 a batch): pickled
through the pool's pipe, each 786 kB still held its process up between two assets (16 ms a
batch); through a fresh block each batch, the block's first writes cost 5 ms and its unlinking
1 ms; a kept block takes 0.3 ms.

The processes are spawned (a fresh interpreter each: forking a process that runs torch's
OpenMP threads, Prefect's event loop and open database connections is not safe). They never
touch the database: each gets the pipeline configuration, finalises the assets it is sent, and
returns each one's file (or the error recorded on its asset) with the paths it wrote, which the
caller makes durable with the batch (``LocalStorage.adopt`` then ``sync``). A process that dies
fails the assets it was making, with that error; the pool is then started again for the next
batch.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import replace
from multiprocessing.shared_memory import SharedMemory

from PIL import Image

from pipeline.config import PipelineConfig
from pipeline.errors import PipelineError
from pipeline.finalize_process import (
    SHARED_MODES,
    JobResult,
    SharedPixels,
    StillJob,
    block_buffer,
    process_start,
    ready,
    still_finalize,
)
from provenance.watermark_keys import WatermarkKey

logger = logging.getLogger("greenlight.pipeline")


class FinalizePool:
    """``processes`` spawned processes that finalise stills with ``config`` (see the module)."""

    def __init__(self, config: PipelineConfig, processes: int) -> None:
        if processes < 1:
            raise ValueError(f"processes = {processes}: a finalising pool needs at least one")
        self.config = config
        self.processes = processes
        self._lock = threading.Lock()
        self._executor: ProcessPoolExecutor | None = None
        self._blocks = _PixelBlocks()

    def start(self) -> None:
        """Start the processes and wait for their first answers (the warm-up a worker pays once,
        at start, rather than in its first batch). Raises PipelineError when they cannot start
        (their signing files unreadable, say: each process logs why)."""
        executor = self._running()
        try:
            for future in [executor.submit(ready) for _ in range(self.processes)]:
                future.result()
        except BrokenProcessPool as exc:
            self.close()
            raise PipelineError(
                f"the {self.processes} finalising process(es) could not start (their error is logged above): {exc}"
            ) from exc

    def finalize(
        self, jobs: Sequence[StillJob], mark_key: WatermarkKey, *, width: int | None = None
    ) -> list[JobResult]:
        """Each job's result, in order, at most ``width`` of them in the processes at once
        (default: one a process; fewer leave the other cores to a generation beside the batch).
        Never raises for an asset: a failure, or a process that died meanwhile, is that asset's
        error text."""
        width = self.processes if width is None else width
        if width < 1:
            raise ValueError(f"width = {width}: a batch needs at least one process")
        executor = self._running()
        with self._blocks.holding(jobs) as sent:
            futures: list[Future[JobResult]] = []
            for job in sent:
                busy = [future for future in futures if not future.done()]
                if len(busy) >= width:  # the next goes in when one of those is back
                    wait(busy, return_when=FIRST_COMPLETED)
                try:
                    futures.append(executor.submit(still_finalize, job, mark_key))
                except BrokenProcessPool as exc:  # they died before this job reached them: as if with it
                    refused: Future[JobResult] = Future()
                    refused.set_exception(exc)
                    futures.append(refused)
            return self._results(jobs, futures)

    def _results(self, jobs: Sequence[StillJob], futures: Sequence[Future[JobResult]]) -> list[JobResult]:
        """Each job's result once all are in (the block their pixels lie in is then free)."""
        results: list[JobResult] = []
        broken = False
        for job, future in zip(jobs, futures, strict=True):
            try:
                results.append(future.result())
            except BrokenProcessPool as exc:
                broken = True
                results.append((job.variant.key, f"BrokenProcessPool: a finalising process died: {exc}", []))
            except Exception as exc:  # the job could not be sent or returned (pickling)
                results.append((job.variant.key, f"{type(exc).__name__}: {exc}", []))
        if broken:
            logger.error("a finalising process died; the pool is started again for the next batch")
            self.close()
        return results

    def close(self) -> None:
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)
        self._blocks.close()

    def _running(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._executor is None:
                self._executor = ProcessPoolExecutor(
                    max_workers=self.processes,
                    mp_context=multiprocessing.get_context("spawn"),
                    initializer=process_start,
                    initargs=(self.config,),
                )
            return self._executor


class _PixelBlocks:
    """Blocks of shared memory a pool's batches put their stills' pixels in, kept from one batch
    to the next (a fresh block pays for its first writes: module docstring). A block is held by
    one batch at a time, until every job of it is back; at most ``KEPT`` are kept."""

    KEPT = 2

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._free: list[SharedMemory] = []

    @contextmanager
    def holding(self, jobs: Sequence[StillJob]) -> Iterator[list[StillJob]]:
        """The jobs as the processes get them: a still in a mode of ``SHARED_MODES`` (and no
        metadata of its own) replaced by where its pixels lie in a block held meanwhile."""
        raws = [_raw(job.image) for job in jobs]
        need = sum(len(raw) for raw in raws if raw is not None)
        if not need:
            yield list(jobs)
            return
        block = self._take(need)
        try:
            sent, at = [], 0
            for job, raw in zip(jobs, raws, strict=True):
                if raw is None or not isinstance(job.image, Image.Image):
                    sent.append(job)
                    continue
                block_buffer(block)[at : at + len(raw)] = raw
                sent.append(replace(job, image=SharedPixels(block.name, at, job.image.mode, job.image.size)))
                at += len(raw)
            yield sent
        finally:
            self._give(block)

    def close(self) -> None:
        with self._lock:
            blocks, self._free = self._free, []
        for block in blocks:
            _block_drop(block)

    def _take(self, need: int) -> SharedMemory:
        with self._lock:
            for index, block in enumerate(self._free):
                if block.size >= need:
                    return self._free.pop(index)
        return SharedMemory(create=True, size=need)

    def _give(self, block: SharedMemory) -> None:
        with self._lock:
            self._free.append(block)
            self._free.sort(key=lambda one: one.size)  # a batch takes the smallest that holds it
            dropped = self._free[: -self.KEPT]
            del self._free[: -self.KEPT]
        for one in dropped:
            _block_drop(one)


def _raw(image: Image.Image | SharedPixels) -> bytes | None:
    """The still's raw pixels, where they are the whole of it; else None (it goes pickled)."""
    if isinstance(image, Image.Image) and image.mode in SHARED_MODES and not image.info:
        return image.tobytes()
    return None


def _block_drop(block: SharedMemory) -> None:
    block.close()
    with contextlib.suppress(FileNotFoundError):  # already gone (a clean-up of the system's)
        block.unlink()


_POOLS: dict[PipelineConfig, FinalizePool] = {}
_POOLS_LOCK = threading.Lock()


def finalize_pool_start(config: PipelineConfig, processes: int) -> FinalizePool:
    """Start (or return, already started) this process's finalising pool for ``config``; batches
    finalised with that configuration then use it (``finalize_pool_for``). Raises PipelineError
    when its processes cannot start."""
    with _POOLS_LOCK:
        pool = _POOLS.get(config)
        if pool is not None and pool.processes == processes:
            return pool
        old = _POOLS.pop(config, None)
    if old is not None:
        old.close()
    pool = FinalizePool(config, processes)
    pool.start()  # only a pool that started is used: one that cannot leaves batches on threads
    with _POOLS_LOCK:
        _POOLS[config] = pool
    return pool


def finalize_pool_for(config: PipelineConfig) -> FinalizePool | None:
    """The pool started for ``config`` in this process, if any."""
    with _POOLS_LOCK:
        return _POOLS.get(config)


def finalize_pool_stop(config: PipelineConfig) -> None:
    """Stop the pool started for ``config`` (its processes end); batches go back to threads."""
    with _POOLS_LOCK:
        pool = _POOLS.pop(config, None)
    if pool is not None:
        pool.close()
