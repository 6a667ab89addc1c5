"""Errors raised by the models package: every refusal is one of these.

::

    ModelError(Exception)               anything the models package refuses
    ├── ModelNotFoundError              no manifest (or template) has     (name, known, kind)
    │                                   that name
    ├── ManifestError                   a manifest is malformed, or is    (path, problem)
    │                                   an unpinned template
    ├── ModelIntegrityError             a pinned file is missing or
    │                                   its sha256 differs                (manifest_path, file,
    │                                                                      expected, actual)
    ├── ModelFolderError                a model folder is not the         (folder, problem)
    │                                   pipeline its manifest or
    │                                   template names
    ├── DeviceError                     the requested device cannot       (setting, value, problem)
    │                                   be used
    ├── SchedulerError                  a sampler does not suit the       (name, problem)
    │                                   model's noise schedule
    ├── CatalogError                    a combination names a kind,       (field, value, known)
    │                                   colour or scene the catalog
    │                                   domain does not draw
    └── TrainingError                   a training setting or folder      (setting, value, problem)
                                        cannot be used
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

_PROJECT_ROOT = Path(__file__).resolve().parent.parent


def display_path(path: Path) -> str:
    """Show ``path`` relative to the project root when it lies inside it, else as given."""
    try:
        return path.resolve().relative_to(_PROJECT_ROOT).as_posix()
    except ValueError:
        return str(path)


def _short(digest: str) -> str:
    return digest[:12] + "…"


class ModelError(Exception):
    """Base class of every error the models package raises."""


class ModelNotFoundError(ModelError):
    """No manifest exists for the requested model name (``kind`` "template": no template does)."""

    def __init__(self, name: str, *, known: Sequence[str], kind: str = "model") -> None:
        self.name = name
        self.known = tuple(known)
        self.kind = kind
        listed = ", ".join(self.known) if self.known else "none"
        super().__init__(f"No {kind} named {name!r} (known {kind}s: {listed})")

    def __reduce__(self) -> tuple[Any, ...]:  # keyword-only context survives pickling
        return (_rebuild, (type(self), (self.name,), {"known": self.known, "kind": self.kind}))


class ManifestError(ModelError):
    """A manifest file is unreadable, malformed or incomplete; ``problem`` names the field."""

    def __init__(self, path: Path, problem: str) -> None:
        self.path = path
        self.problem = problem
        super().__init__(f"Manifest {display_path(path)}: {problem}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), (self.path, self.problem), {}))


class ModelIntegrityError(ModelError):
    """A file pinned by a manifest is missing (``actual`` is None) or has another sha256."""

    def __init__(
        self,
        *,
        name: str,
        manifest_path: Path,
        file: str,
        expected: str,
        actual: str | None,
    ) -> None:
        self.name = name
        self.manifest_path = manifest_path
        self.file = file
        self.expected = expected
        self.actual = actual
        where = f"Model {name!r} ({display_path(manifest_path)})"
        if actual is None:
            detail = f"{file} is missing (the manifest pins sha256 {_short(expected)})"
        else:
            detail = f"{file} sha256 is {_short(actual)} but the manifest pins {_short(expected)}"
        super().__init__(f"{where}: {detail}")

    def __reduce__(self) -> tuple[Any, ...]:
        context = {
            "name": self.name,
            "manifest_path": self.manifest_path,
            "file": self.file,
            "expected": self.expected,
            "actual": self.actual,
        }
        return (_rebuild, (type(self), (), context))


class ModelFolderError(ModelError):
    """A model folder is missing, incomplete, or holds another pipeline than the one expected."""

    def __init__(self, folder: Path, problem: str) -> None:
        self.folder = folder
        self.problem = problem
        super().__init__(f"Model folder {display_path(folder)}: {problem}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), (self.folder, self.problem), {}))


class DeviceError(ModelError):
    """The device asked for (by argument or ``GREENLIGHT_DEVICE``) is malformed or not present."""

    def __init__(self, *, setting: str, value: str, problem: str) -> None:
        self.setting = setting
        self.value = value
        self.problem = problem
        super().__init__(f"{setting} is {value!r}: {problem}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), (), {"setting": self.setting, "value": self.value, "problem": self.problem}))


class SchedulerError(ModelError):
    """A sampler chosen by name does not suit the model's noise schedule (``models.schedulers``)."""

    def __init__(self, *, name: str, problem: str) -> None:
        self.name = name
        self.problem = problem
        super().__init__(f"scheduler = {name!r}: {problem}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), (), {"name": self.name, "problem": self.problem}))


class CatalogError(ModelError):
    """A combination names a kind, colour or scene the procedural catalog domain does not draw."""

    def __init__(self, *, field: str, value: str, known: Sequence[str]) -> None:
        self.field = field
        self.value = value
        self.known = tuple(known)
        super().__init__(f"unknown {field} {value!r} (known: {', '.join(self.known)})")

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), (), {"field": self.field, "value": self.value, "known": self.known}))


class TrainingError(ModelError):
    """A training setting has no meaning, or a folder a training stage reads cannot be used."""

    def __init__(self, *, setting: str, value: str, problem: str) -> None:
        self.setting = setting
        self.value = value
        self.problem = problem
        super().__init__(f"{setting} = {value!r}: {problem}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), (), {"setting": self.setting, "value": self.value, "problem": self.problem}))


def _rebuild(cls: type[ModelError], args: tuple[Any, ...], kwargs: dict[str, Any]) -> ModelError:
    return cls(*args, **kwargs)
