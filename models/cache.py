"""Warm models for a long-lived generation worker: the pipelines it has loaded, least recently
used first out once more than `capacity` models are held.

A worker serves every batch of a model from the one pipeline it loaded; when a batch needs a model
it does not hold and it already holds `capacity`, the model used longest ago is dropped (and its
GPU memory released) before the new one is loaded.
"""

from __future__ import annotations

import gc
import logging
import threading
from collections import OrderedDict
from typing import TYPE_CHECKING

from models.loading import pipeline_forget, pipeline_load
from models.manifest import ModelManifest

if TYPE_CHECKING:
    from diffusers import DiffusionPipeline

logger = logging.getLogger("greenlight.models")


class PipelineCache:
    """An LRU of loaded pipelines, keyed by manifest hash (thread-safe)."""

    def __init__(self, capacity: int = 1) -> None:
        if capacity < 1:
            raise ValueError(f"capacity = {capacity}: a worker holds at least one model")
        self.capacity = capacity
        self._held: OrderedDict[str, ModelManifest] = OrderedDict()
        self._lock = threading.Lock()
        self.loads = 0
        self.evictions = 0

    def get(self, manifest: ModelManifest) -> DiffusionPipeline:
        """`manifest`'s pipeline, loaded once; marks it most recently used and evicts the least
        recently used model(s) beyond capacity first."""
        with self._lock:
            key = manifest.manifest_hash
            if key in self._held:
                self._held.move_to_end(key)
            else:
                while len(self._held) >= self.capacity:
                    _, old = self._held.popitem(last=False)
                    pipeline_forget(old)
                    self.evictions += 1
                    logger.info("evicted model %s (least recently used)", old.name)
                    _memory_release()
                self._held[key] = manifest
                self.loads += 1
            return pipeline_load(manifest)

    def names(self) -> list[str]:
        """The models held, least recently used first."""
        with self._lock:
            return [m.name for m in self._held.values()]


def _memory_release() -> None:
    """Give a dropped pipeline's memory back (the accelerator's cache too, when there is one)."""
    gc.collect()
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency of every model room user
        return
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
