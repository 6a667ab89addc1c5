"""Exceptions raised by provenance: one tree, each carrying its context.

    ProvenanceError
     ├── SigningError       signing files or a C2PA signing step (.path, .problem)
     │    └── WatermarkKeyError  the installation's watermark keys (.path; never the key)
     ├── WatermarkError     an image that cannot take or give up the watermark
     │    └── WatermarkCapacityError  a picture that does not carry this mark id at any strength
     ├── MediaError         a clip or file that cannot be encoded or decoded (.field, .value)
     └── StorageError       writing or reading a stored or published file

The message always says what was wrong and with which file or value.
"""

from __future__ import annotations

from pathlib import Path


class ProvenanceError(Exception):
    """Base class of every error the provenance room raises on purpose."""


class SigningError(ProvenanceError):
    """Signing files are unusable, or C2PA signing failed.

    ``problem`` is the whole message and names the file where there is one,
    e.g. "Signing certificate var/keys/chain.pem expired on 2025-01-01
    (not valid after)"; ``path`` is that file, or None.
    """

    def __init__(self, problem: str, *, path: Path | None = None) -> None:
        super().__init__(problem)
        self.problem = problem
        self.path = path


class WatermarkKeyError(SigningError):
    """The installation's watermark keys are missing or unusable. The message names the folder,
    file or key id, never key material."""


class WatermarkError(ProvenanceError):
    """An image is too small, in the wrong mode, or cannot carry the mark."""


class WatermarkCapacityError(WatermarkError):
    """A picture of a usable size and mode whose mark, for this mark id, does not read back at any
    strength: another mark id may fit (a small, busy picture carries some and not others)."""


class MediaError(ProvenanceError):
    """Frames or a file that cannot be encoded or decoded; ``field`` and ``value`` name the
    argument at fault where there is one."""

    def __init__(self, message: str, *, field: str = "", value: object = None) -> None:
        super().__init__(message)
        self.field = field
        self.value = value


class StorageError(ProvenanceError):
    """A file could not be written or read back."""
