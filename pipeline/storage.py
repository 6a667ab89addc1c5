"""File storage under a root folder; writes are atomic so a crash never leaves half a file."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path, PurePosixPath

from pipeline.errors import StorageError


class LocalStorage:
    """Files addressed by relative POSIX paths under `root`."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path(self, relative: str) -> Path:
        """The absolute path of a stored file; refuses paths that escape the root."""
        rel = PurePosixPath(relative)
        if rel.is_absolute() or ".." in rel.parts or not rel.parts:
            raise StorageError(f"storage path {relative!r} must be relative and stay inside the storage root")
        return self.root.joinpath(*rel.parts)

    def write(self, relative: str, data: bytes) -> str:
        """Write `data` atomically (temporary file, fsync, rename); returns its sha256."""
        target = self.path(relative)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
            try:
                with os.fdopen(fd, "wb") as fh:
                    fh.write(data)
                    fh.flush()
                    os.fsync(fh.fileno())
                os.replace(tmp, target)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError as exc:
            raise StorageError(f"cannot write {target}: {exc.strerror or exc}") from exc
        return hashlib.sha256(data).hexdigest()

    def read(self, relative: str) -> bytes:
        try:
            return self.path(relative).read_bytes()
        except OSError as exc:
            raise StorageError(f"cannot read {self.path(relative)}: {exc.strerror or exc}") from exc

    def exists(self, relative: str) -> bool:
        return self.path(relative).is_file()

    def delete(self, relative: str) -> None:
        self.path(relative).unlink(missing_ok=True)
