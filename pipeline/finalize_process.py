"""What a finalising pool's processes run (``pipeline.finalize_pool``): kept apart from the pool so
that a spawned process can load it, and the jobs sent to it, before Django is set up (its
``process_start`` sets Django up; the modules that need Django's apps are imported after).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing.shared_memory import SharedMemory
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np
from PIL import Image

from pipeline.config import PipelineConfig
from pipeline.errors import error_text
from prompt_library.specs import Variant
from provenance.watermark import RgbArray
from provenance.watermark_keys import WatermarkKey

if TYPE_CHECKING:
    from review.intake import GeneratedFile

logger = logging.getLogger("greenlight.pipeline")


# The modes whose raw bytes are the whole picture (no palette), with their bytes a pixel: a still
# in one of them travels to a pool process through shared memory, others pickled.
SHARED_MODES = {"L": 1, "RGB": 3, "RGBA": 4}


@dataclass(frozen=True)
class SharedPixels:
    """A still's pixels where the pool left them in a block of shared memory
    (``pipeline.finalize_pool``): its raw bytes from ``offset``, in ``mode`` at ``size``."""

    block: str
    offset: int
    mode: str
    size: tuple[int, int]

    def image(self) -> Image.Image:
        """The still, copied out of the block (which the pool reuses for its next batch)."""
        with self._bytes() as view:
            return Image.frombytes(self.mode, self.size, view)

    def still(self) -> Image.Image | RgbArray:
        """What ``image_finalize`` is given: an RGB still as its array of pixels (copied out of
        the block, and marked without a copy through Pillow and back), another as ``image()``."""
        if self.mode != "RGB":
            return self.image()
        width, height = self.size
        with self._bytes() as view:
            return np.frombuffer(view, dtype=np.uint8).reshape(height, width, 3).copy()

    @contextmanager
    def _bytes(self) -> Iterator[memoryview]:
        block = SharedMemory(name=self.block)
        try:
            length = self.size[0] * self.size[1] * SHARED_MODES[self.mode]
            with block_buffer(block)[self.offset : self.offset + length] as view:
                yield view
        finally:
            block.close()


def block_buffer(block: SharedMemory) -> memoryview:
    """The bytes of an open block of shared memory."""
    if block.buf is None:
        raise ValueError(f"shared memory block {block.name} is closed")
    return block.buf


@dataclass(frozen=True)
class StillJob:
    """One still to finalise in a pool process: what ``image_finalize`` is called with (the
    image itself, or where its pixels lie in shared memory)."""

    variant: Variant
    serial: int
    mark_id: int
    image: Image.Image | SharedPixels
    safety: dict[str, object]


# What a job comes back as: the variant's key with its file or the error text for its asset, and
# the storage paths the process wrote (the caller syncs them with the batch).
JobResult = tuple[str, "GeneratedFile | str", list[str]]

_STATE: dict[str, Any] = {}


def process_start(config: PipelineConfig) -> None:
    """A pool process's start: one thread for OpenCV, Django's apps (the hand-over record's types
    need them; no query is made), then the signer and trust context it signs every asset with,
    and its storage.

    The pool has a process a core, each finalising one asset at a time; OpenCV's own threads
    (as many as cores, by default) then only add their hand-offs. Measured on 2 cores, 32 stills
    of the embedded model at 512², one process: 29.7 ms of CPU an asset with OpenCV's default
    threads, 25.7 ms with one."""
    _parent_watch()
    cv2.setNumThreads(1)
    # What infra.django_boot does; pipeline/ may not import infra/ (the import contracts).
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "infra.settings")
    import django

    django.setup()
    from provenance.credentials import reader_context
    from provenance.keys import signer_create
    from provenance.storage import LocalStorage

    _STATE["signer"] = signer_create(config.signing)
    _STATE["context"] = reader_context(config.signing, verify_after_sign=False)
    _STATE["storage"] = LocalStorage(config.storage_root, deferred=True)


def _parent_watch() -> None:
    """End this process as soon as the process that started it is gone (a worker stopped with
    SIGTERM or killed runs no clean-up of its pool): no finalising process outlives its worker."""
    parent = multiprocessing.parent_process()
    if parent is None:
        return

    def watch() -> None:
        parent.join()  # returns when the parent's end of the pipe closes, however it ended
        os._exit(0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def ready() -> int:
    """This process's id, once its start is done."""
    return os.getpid()


def still_finalize(job: StillJob, mark_key: WatermarkKey) -> JobResult:
    """``image_finalize`` of one job with this process's signer, into its storage; the files it
    wrote are handed back for the batch's sync."""
    from pipeline.finalize import Signing, image_finalize

    storage = _STATE["storage"]
    signing = Signing(signer=_STATE["signer"], context=_STATE["context"], watermark=mark_key)
    outcome: GeneratedFile | str
    try:
        image = job.image if isinstance(job.image, Image.Image) else job.image.still()
        outcome = image_finalize(
            job.variant,
            serial=job.serial,
            mark_id=job.mark_id,
            image=image,
            signing=signing,
            storage=storage,
            safety=job.safety,
        )
    except Exception as exc:  # recorded on the asset row by the caller
        logger.exception("finalising asset %s failed", job.serial)
        outcome = error_text(exc)
    return job.variant.key, outcome, storage.written_take()
