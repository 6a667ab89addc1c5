"""Exceptions raised by the pipeline: one tree, each carrying its context.

    PipelineError
     ├── GenerationError          a variant that could not be generated (.variant_key)
     │    └── GenerationInputError    a request refused before any model work (.field, .value)
     ├── ModelPinError            a template version pins another model manifest than the folder's
     ├── RunRequestError          run parameters a flow would refuse (.field, .value)
     ├── RunFailedError           a run that ended with failed assets (.summary)
     └── RunStoppedError          a run paused or cancelled while a command waited for it (.summary)

Watermarking, signing and storage raise ``provenance.errors.ProvenanceError``. A failed
variant is recorded on its asset whichever tree its error comes from; the message always says
what was wrong and with which file, variant or value.
"""

from __future__ import annotations

import traceback
from typing import TYPE_CHECKING, Any

from PIL import Image

if TYPE_CHECKING:
    from pipeline.summary import RunSummary


class PipelineError(Exception):
    """Base class of every error the pipeline raises on purpose."""


class GenerationError(PipelineError):
    """A variant could not be generated; ``variant_key`` says which one."""

    def __init__(self, message: str, *, variant_key: str | None = None) -> None:
        super().__init__(message)
        self.variant_key = variant_key


class GenerationInputError(GenerationError):
    """A request refused before any model work; ``field`` and ``value`` say what was wrong."""

    def __init__(self, field_name: str, value: object, problem: str, *, variant_key: str | None = None) -> None:
        shown = value if isinstance(value, int | float) else value_shown(value)
        super().__init__(f"{field_name} = {shown}: {problem}", variant_key=variant_key)
        self.field = field_name
        self.value = value


class ModelPinError(PipelineError):
    """The model folder no longer matches the manifest hash a template version pinned."""

    def __init__(self, template: str, version: int, model: str, pinned: str, current: str) -> None:
        self.template, self.version, self.model = template, version, model
        self.pinned, self.current = pinned, current
        super().__init__(
            f"template '{template}' v{version} pins model '{model}' manifest {pinned[:12]}…, "
            f"but its manifest is now {current[:12]}…; publish a new template version for the new model"
        )


class RunRequestError(PipelineError):
    """Run parameters a flow would refuse, found before it starts; ``field`` and ``value`` name
    the first one refused (the message lists them all)."""

    def __init__(self, message: str, *, field_name: str, value: object) -> None:
        super().__init__(message)
        self.field = field_name
        self.value = value


class RunFailedError(PipelineError):
    """A run that went to its end with failed assets (recorded on each); ``summary`` says what it
    did, the message names the first failure."""

    def __init__(self, summary: RunSummary) -> None:
        first = f"; first failure: {summary.failures[0]}" if summary.failures else ""
        super().__init__(f"{summary.line()}{first}")
        self.summary = summary

    def __reduce__(self) -> tuple[Any, ...]:
        # Rebuilt from its summary (the default would call __init__ with the message).
        return (type(self), (self.summary,))


class RunStoppedError(PipelineError):
    """A run paused or cancelled before its end (from the dashboard, the API or ``manage.py
    runs``) while a command waited for it; ``summary`` says what it did by then."""

    def __init__(self, summary: RunSummary, *, run_id: int, state: str) -> None:
        super().__init__(f"{summary.line()}; run {run_id} is {state}: `manage.py runs resume {run_id}` goes on with it")
        self.summary = summary
        self.run_id = run_id
        self.state = state


def value_shown(value: object) -> str:
    """A refused value as a message shows it: short, and never an image's or a file's bytes."""
    if value is None:
        return "(none)"
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    if isinstance(value, Image.Image):
        return f"<{value.mode} image {value.width}x{value.height}>"
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def error_text(exc: BaseException) -> str:
    """How a failure is recorded on its asset row: the message first, then the traceback's end."""
    return f"{type(exc).__name__}: {exc}\n\n" + "".join(traceback.format_exception(exc))[-4000:]
