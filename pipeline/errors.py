"""Exceptions raised by the pipeline: one tree, each carrying its context.

    PipelineError
     ├── SigningError       signing files or a C2PA signing step (.path, .problem)
     ├── WatermarkError     an image that cannot take or give up the watermark
     ├── GenerationError    a variant that could not be generated (.variant_key)
     ├── StorageError       writing or reading an asset's files
     └── ModelPinError      a template version pins another model manifest than the folder's

Catch ``PipelineError`` to record a failed variant and move on; the message
always says what was wrong and with which file, variant or value.
"""

from __future__ import annotations

from pathlib import Path


class PipelineError(Exception):
    """Base class of every error the pipeline raises on purpose."""


class SigningError(PipelineError):
    """Signing files are unusable, or C2PA signing failed.

    ``problem`` is the whole message and names the file where there is one,
    e.g. "Signing certificate var/keys/chain.pem expired on 2025-01-01
    (not valid after)"; ``path`` is that file, or None.
    """

    def __init__(self, problem: str, *, path: Path | None = None) -> None:
        super().__init__(problem)
        self.problem = problem
        self.path = path


class WatermarkError(PipelineError):
    """An image is too small, in the wrong mode, or cannot carry the mark."""


class GenerationError(PipelineError):
    """A variant could not be generated; ``variant_key`` says which one."""

    def __init__(self, message: str, *, variant_key: str | None = None) -> None:
        super().__init__(message)
        self.variant_key = variant_key


class StorageError(PipelineError):
    """An asset's file could not be written or read back."""


class ModelPinError(PipelineError):
    """The model folder no longer matches the manifest hash a template version pinned."""

    def __init__(self, template: str, version: int, model: str, pinned: str, current: str) -> None:
        self.template, self.version, self.model = template, version, model
        self.pinned, self.current = pinned, current
        super().__init__(
            f"template '{template}' v{version} pins model '{model}' manifest {pinned[:12]}…, "
            f"but its manifest is now {current[:12]}…; publish a new template version for the new model"
        )
