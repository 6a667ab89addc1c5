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

The processes are spawned (a fresh interpreter each: forking a process that runs torch's
OpenMP threads, Prefect's event loop and open database connections is not safe). They never
touch the database: each gets the pipeline configuration, finalises the assets it is sent, and
returns each one's file (or the error recorded on its asset) with the paths it wrote, which the
caller makes durable with the batch (``LocalStorage.adopt`` then ``sync``). A process that dies
fails the assets it was making, with that error; the pool is then started again for the next
batch.
"""

from __future__ import annotations

import logging
import multiprocessing
import threading
from collections.abc import Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from pipeline.config import PipelineConfig
from pipeline.errors import PipelineError
from pipeline.finalize_process import JobResult, StillJob, process_start, ready, still_finalize
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

    def finalize(self, jobs: Sequence[StillJob], mark_key: WatermarkKey) -> list[JobResult]:
        """Each job's result, in order. Never raises for an asset: a failure, or a process that
        died meanwhile, is that asset's error text."""
        executor = self._running()
        futures: list[Future[JobResult]] = [executor.submit(still_finalize, job, mark_key) for job in jobs]
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
