"""Exceptions raised by the pipeline: one tree, each carrying its context.

    PipelineError
     ├── GenerationError    a variant that could not be generated (.variant_key)
     └── ModelPinError      a template version pins another model manifest than the folder's

Watermarking, signing and storage raise ``provenance.errors.ProvenanceError``. A failed
variant is recorded on its asset whichever tree its error comes from; the message always says
what was wrong and with which file, variant or value.
"""

from __future__ import annotations


class PipelineError(Exception):
    """Base class of every error the pipeline raises on purpose."""


class GenerationError(PipelineError):
    """A variant could not be generated; ``variant_key`` says which one."""

    def __init__(self, message: str, *, variant_key: str | None = None) -> None:
        super().__init__(message)
        self.variant_key = variant_key


class ModelPinError(PipelineError):
    """The model folder no longer matches the manifest hash a template version pinned."""

    def __init__(self, template: str, version: int, model: str, pinned: str, current: str) -> None:
        self.template, self.version, self.model = template, version, model
        self.pinned, self.current = pinned, current
        super().__init__(
            f"template '{template}' v{version} pins model '{model}' manifest {pinned[:12]}…, "
            f"but its manifest is now {current[:12]}…; publish a new template version for the new model"
        )
