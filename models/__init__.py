"""Find, pin, verify and load the ML checkpoints Greenlight generates with.

The public face: callers outside this package import from here, so the modules behind it can be
split and renamed without touching them. It is free of torch, diffusers and transformers, even
through imports inside functions (the web process reads manifests and sampler names through it);
``models.loading`` is the one door to the heavy libraries: ``pipeline_load``, ``pipeline_setup``
and ``scheduler_build``, for the pipeline's workers.

Behind it, imports point down only: ``families`` (the family table) <- ``manifest`` (the record)
<- ``registry`` (find and read manifests), ``integrity`` (sha256 pins) and ``device`` (device,
dtype, memory savers) <- ``loading`` (the once-per-process loader); ``pin`` and ``captioner`` use
them. ``models.training`` makes the shipped models and is never imported by the product.
"""

from __future__ import annotations

from models.errors import (
    DeviceError,
    ManifestError,
    ModelError,
    ModelFolderError,
    ModelIntegrityError,
    ModelNotFoundError,
    SchedulerError,
)
from models.families import SOURCE_FAMILIES
from models.integrity import manifest_verify
from models.manifest import VIDEO_ROLE, MemoryOptions, ModelManifest
from models.registry import MANIFESTS_DIR, manifest_load, template_load
from models.schedulers import (
    DEFAULT as DEFAULT_SCHEDULER,
)
from models.schedulers import (
    SCHEDULERS,
    scheduler_names,
    scheduler_refusal,
    scheduler_unsuited,
    suited_names,
)

__all__ = [
    "DEFAULT_SCHEDULER",
    "MANIFESTS_DIR",
    "SCHEDULERS",
    "SOURCE_FAMILIES",
    "VIDEO_ROLE",
    "DeviceError",
    "ManifestError",
    "MemoryOptions",
    "ModelError",
    "ModelFolderError",
    "ModelIntegrityError",
    "ModelManifest",
    "ModelNotFoundError",
    "SchedulerError",
    "manifest_load",
    "manifest_verify",
    "scheduler_names",
    "scheduler_refusal",
    "scheduler_unsuited",
    "suited_names",
    "template_load",
]
