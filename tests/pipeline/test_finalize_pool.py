"""A warm worker's finalising processes: a batch of stills finalised there comes back in order,
signed, marked and synced with the batch; a process that dies fails only the batch it was making."""

from __future__ import annotations

import io
import multiprocessing
import os
import pickle
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import Future
from dataclasses import replace
from multiprocessing.shared_memory import SharedMemory
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from PIL import Image

from models.training.catalog_domain import Combo, catalog_draw
from pipeline import finalize_pool
from pipeline.batches import batch_finalize
from pipeline.config import PipelineConfig, config_from_settings
from pipeline.errors import PipelineError
from pipeline.finalize_pool import _PixelBlocks, finalize_pool_for, finalize_pool_start, finalize_pool_stop
from pipeline.finalize_process import SharedPixels, StillJob
from prompt_library.selectors import campaign_plan_get
from prompt_library.services import library_load
from prompt_library.specs import Variant
from provenance import storage as storage_module
from provenance.credentials import c2pa_read, reader_context
from provenance.storage import LocalStorage
from provenance.watermark import watermark_read
from tests.fixture_types import SettingsWrapper
from tests.provenance.marks import installation_key

pytestmark = pytest.mark.django_db


POOL_PROCESSES: list[int] = []  # the ids of the processes the current test's pool started


@pytest.fixture
def pooled(greenlight_settings: SettingsWrapper, library_dir: Path) -> Iterator[PipelineConfig]:
    """The test's configuration with a pool of two finalising processes started for it."""
    config = config_from_settings()
    before = {child.pid for child in multiprocessing.active_children()}
    finalize_pool_start(config, 2)
    POOL_PROCESSES[:] = [c.pid or 0 for c in multiprocessing.active_children() if c.pid not in before]
    try:
        yield config
    finally:
        finalize_pool_stop(config)


def _mugs(count: int, side: int) -> tuple[tuple[Variant, ...], list[Image.Image]]:
    library_load()
    variants = campaign_plan_get(name="demo-catalog").variants[:count]
    colours = ("red", "blue", "green", "yellow", "white")
    images = [
        catalog_draw(Combo("mug", colours[i % 5], "studio"), rng=random.Random(i)).resize((side, side))
        for i in range(count)
    ]
    return variants, images


def test_a_batch_finalised_in_the_pool_keeps_its_order_and_every_master_verifies(pooled: PipelineConfig) -> None:
    variants, images = _mugs(5, 512)
    images[3] = Image.new("RGB", (100, 100))  # too small to carry the mark: fails alone
    serials, mark_ids = [601, 602, 603, 604, 605], [9601, 9602, 9603, 9604, 9605]

    done, failed = batch_finalize(variants, serials, images, pooled, mark_ids=mark_ids, threads=2)

    assert [file.key for file in done] == [v.key for i, v in enumerate(variants) if i != 3]
    assert [key for key, _ in failed] == [variants[3].key] and "100" in failed[0][1]
    assert all(
        file.generation_record["serial"] == serial for file, serial in zip(done, [601, 602, 603, 605], strict=True)
    )
    storage, key = LocalStorage(pooled.storage_root), installation_key()
    with reader_context(pooled.signing) as context:
        for file, mark_id in zip(done, [9601, 9602, 9603, 9605], strict=True):
            master = storage.read(file.file_path)
            assert c2pa_read(master, mime="image/png", context=context).state == "trusted"
            assert c2pa_read(storage.read(file.thumb_path), mime="image/jpeg", context=context).state == "trusted"
            assert watermark_read(Image.open(io.BytesIO(master)).convert("RGB"), key=key).serial == mark_id
    # Made in the pool's two processes, which are still up for the next batch.
    assert finalize_pool_for(pooled) is not None
    assert {c.pid for c in multiprocessing.active_children()} >= set(POOL_PROCESSES)


@pytest.mark.parametrize("width", [1, 2])
def test_a_batch_takes_no_more_of_the_pools_processes_at_once_than_it_is_given(
    pooled: PipelineConfig, monkeypatch: pytest.MonkeyPatch, width: int
) -> None:
    pool = finalize_pool_for(pooled)
    assert pool is not None and pool.processes == 2
    executor = pool._running()
    sent: list[Future[Any]] = []
    in_flight: list[int] = []  # jobs not back yet, each time one is sent
    submit = executor.submit

    def submit_counted(*args: Any, **kwargs: Any) -> Future[Any]:
        future = submit(*args, **kwargs)
        sent.append(future)
        in_flight.append(sum(not one.done() for one in sent))
        return future

    monkeypatch.setattr(executor, "submit", submit_counted)
    variants, images = _mugs(4, 256)

    done, failed = batch_finalize(
        variants, [621, 622, 623, 624], images, pooled, mark_ids=[9621, 9622, 9623, 9624], threads=width
    )

    assert failed == [] and [file.key for file in done] == [v.key for v in variants]
    assert len(sent) == 4 and max(in_flight) == width


def test_the_files_the_pool_wrote_are_synced_with_the_batch(
    pooled: PipelineConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    variants, images = _mugs(2, 256)

    def failing(root: Path) -> bool:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(storage_module, "_syncfs", failing)
    done, failed = batch_finalize(variants, [611, 612], images, pooled, mark_ids=[9611, 9612])

    assert done == []  # a master and a thumbnail each, written by the pool, all listed for the sync
    assert all("cannot sync 4 files" in text and "No space left on device" in text for _, text in failed)


@pytest.mark.parametrize("noticed", [False, True], ids=["unnoticed", "noticed-before-the-batch"])
def test_a_finalising_process_that_dies_fails_its_batch_and_the_next_batch_is_made(
    pooled: PipelineConfig, noticed: bool
) -> None:
    variants, images = _mugs(4, 256)
    assert len(POOL_PROCESSES) == 2
    for pid in POOL_PROCESSES:  # the pool's processes die (out of memory, say)
        os.kill(pid, signal.SIGKILL)
    if noticed:  # the executor sees them gone before the batch is sent: its submit refuses
        pool = finalize_pool_for(pooled)
        assert pool is not None
        deadline = time.monotonic() + 10
        while not getattr(pool._executor, "_broken", False) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert getattr(pool._executor, "_broken", False)

    done, failed = batch_finalize(variants[:2], [621, 622], images[:2], pooled, mark_ids=[9621, 9622])

    assert done == [] and [key for key, _ in failed] == [v.key for v in variants[:2]]
    assert all("finalising process died" in text for _, text in failed)
    again, failed_again = batch_finalize(variants[2:], [623, 624], images[2:], pooled, mark_ids=[9623, 9624])
    assert failed_again == [] and [file.key for file in again] == [v.key for v in variants[2:]]


POOL_SCRIPT = """
import multiprocessing, os, pickle, sys, time
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "infra.settings")
import django
django.setup()
from pipeline.finalize_pool import finalize_pool_start
finalize_pool_start(pickle.loads(open(sys.argv[1], "rb").read()), 2)
print(" ".join(str(child.pid) for child in multiprocessing.active_children()), flush=True)
time.sleep(600)
"""


def _running(pid: int) -> bool:
    """Whether ``pid`` is a process that has not ended (a zombie no one reaped has ended)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_finalising_processes_end_with_the_worker_that_started_them(pooled: PipelineConfig, tmp_path: Path) -> None:
    config_file = tmp_path / "config.pickle"
    config_file.write_bytes(pickle.dumps(pooled))
    worker = subprocess.Popen(
        [sys.executable, "-c", POOL_SCRIPT, str(config_file)], stdout=subprocess.PIPE, text=True, env=os.environ
    )
    try:
        assert worker.stdout is not None
        children = [int(pid) for pid in worker.stdout.readline().split()]
        assert len(children) == 2 and all(_running(pid) for pid in children)
    finally:
        worker.kill()  # killed: no clean-up of its pool runs
        worker.wait()
    deadline = time.monotonic() + 20
    while any(_running(pid) for pid in children):
        assert time.monotonic() < deadline, "a finalising process outlived its worker"
        time.sleep(0.1)


def test_a_pool_whose_processes_cannot_sign_refuses_to_start_and_batches_stay_on_threads(
    greenlight_settings: SettingsWrapper, library_dir: Path, tmp_path: Path
) -> None:
    config = config_from_settings()
    broken = replace(config, signing=replace(config.signing, key=tmp_path / "missing.key"))

    with pytest.raises(PipelineError, match="finalising process"):
        finalize_pool_start(broken, 2)

    assert finalize_pool_for(broken) is None


def test_stills_travel_in_shared_memory_unchanged_and_others_as_they_are() -> None:
    variant = Variant.__new__(Variant)  # not looked at: only the image travels here
    rgb = Image.frombytes("RGB", (37, 23), random.Random(1).randbytes(37 * 23 * 3))
    grey, rgba = rgb.convert("L"), rgb.convert("RGBA")
    palette = rgb.convert("P")  # its palette is not in its raw bytes
    tagged = rgb.copy()
    tagged.info["icc_profile"] = b"profile"  # nor is its metadata
    jobs = [StillJob(variant, i, i, image, {}) for i, image in enumerate((rgb, grey, palette, rgba, tagged))]
    blocks = _PixelBlocks()
    try:
        with blocks.holding(jobs) as sent:
            shared = [job.image for job in sent if isinstance(job.image, SharedPixels)]
            assert len(shared) == 3 and len({pixels.block for pixels in shared}) == 1  # one block a batch
            assert [pixels.image().tobytes() for pixels in shared] == [i.tobytes() for i in (rgb, grey, rgba)]
            assert [p.image().mode for p in shared] == ["RGB", "L", "RGBA"]
            # What a process finalises: the RGB still as its pixels, a copy the block's reuse leaves alone.
            pixels = shared[0].still()
            assert isinstance(pixels, np.ndarray) and np.array_equal(pixels, np.asarray(rgb))
            assert pixels.flags.owndata and pixels.flags.writeable
            assert [p.still().tobytes() for p in shared[1:]] == [grey.tobytes(), rgba.tobytes()]
            assert sent[2].image is palette and sent[4].image is tagged
            name = shared[0].block
        with blocks.holding(jobs[:1]) as again:  # the next batch reuses the block
            assert isinstance(again[0].image, SharedPixels) and again[0].image.block == name
    finally:
        blocks.close()
    with pytest.raises(FileNotFoundError):
        SharedMemory(name=name)  # gone once the pool closes


def test_a_pool_leaves_no_shared_memory_behind_when_it_stops(
    greenlight_settings: SettingsWrapper, library_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    made: list[str] = []

    class Recorded(SharedMemory):
        def __init__(self, name: str | None = None, create: bool = False, size: int = 0) -> None:
            super().__init__(name=name, create=create, size=size)
            made.append(self.name)

    monkeypatch.setattr(finalize_pool, "SharedMemory", Recorded)
    config = config_from_settings()
    finalize_pool_start(config, 2)
    try:
        variants, images = _mugs(4, 256)
        for first in (0, 2):
            done, failed = batch_finalize(
                variants[first : first + 2],
                [631 + first, 632 + first],
                images[first : first + 2],
                config,
                mark_ids=[9631 + first, 9632 + first],
            )
            assert failed == [] and len(done) == 2
        assert len(made) == 1  # kept from one batch to the next
    finally:
        finalize_pool_stop(config)
    with pytest.raises(FileNotFoundError):
        SharedMemory(name=made[0])


def test_a_finalising_process_runs_opencv_on_one_thread(pooled: PipelineConfig) -> None:
    pool = finalize_pool_for(pooled)
    assert pool is not None
    # A process a core, an asset at a time: OpenCV's default (a thread a core) only adds hand-offs.
    assert [pool._running().submit(cv2.getNumThreads).result() for _ in range(4)] == [1, 1, 1, 1]
