"""File storage: a local folder (atomic writes, so a crash never leaves half a file), or any
fsspec URL such as ``s3://bucket/prefix`` for the publish target (an object store's PUT is atomic
per object).

A local write is durable when it returns (the file and its folder entry synced), unless the
storage was opened ``deferred``: then writes are synced together by ``sync()``, which a batch
calls once before it hands its files over. On Linux that is one ``syncfs`` of the storage's
filesystem (one journal commit for the batch); elsewhere an fsync of each file and folder.
Measured for 16 assets (a 400 kB master and a 20 kB thumbnail each, ext4): 13 ms in one sync
against 24 ms syncing each file as it was written.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import hashlib
import os
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any, Protocol

from provenance.errors import StorageError


class Storage(Protocol):
    """Files addressed by relative POSIX paths; what the pipeline and publishing need."""

    def write(self, relative: str, data: bytes) -> str: ...
    def read(self, relative: str) -> bytes: ...
    def exists(self, relative: str) -> bool: ...
    def delete(self, relative: str) -> None: ...
    def location(self, relative: str) -> str: ...


def _relative_check(relative: str) -> PurePosixPath:
    rel = PurePosixPath(relative)
    if rel.is_absolute() or ".." in rel.parts or not rel.parts:
        raise StorageError(f"storage path {relative!r} must be relative and stay inside the storage root")
    return rel


class LocalStorage:
    """Files addressed by relative POSIX paths under `root`.

    ``deferred``: writes are made durable by ``sync()`` rather than one by one (module docstring).
    Several threads may write to one storage (each write is listed with one ``list.append``);
    ``sync()`` runs once they are done.
    """

    def __init__(self, root: Path, *, deferred: bool = False) -> None:
        self.root = Path(root)
        self.deferred = deferred
        self._unsynced: list[Path] = []

    def path(self, relative: str) -> Path:
        """The absolute path of a stored file; refuses paths that escape the root."""
        return self.root.joinpath(*_relative_check(relative).parts)

    def location(self, relative: str) -> str:
        return str(self.path(relative))

    def write(self, relative: str, data: bytes, *, sha256: str | None = None) -> str:
        """Write `data` atomically (temporary file, rename) and durably (the file and its folder
        synced, at once or, ``deferred``, by ``sync()``); returns its sha256.

        ``sha256`` is the digest of ``data`` when the caller already has it (a signed file's,
        from reading it back): returned as is, so the bytes are not hashed a second time."""
        target = self.path(relative)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
            try:
                with os.fdopen(fd, "wb") as fh:
                    fh.write(data)
                    if not self.deferred:
                        fh.flush()
                        os.fsync(fh.fileno())
                os.replace(tmp, target)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
            if self.deferred:
                self._unsynced.append(target)
            else:
                _folder_sync(target.parent)  # the rename itself
        except OSError as exc:
            raise StorageError(f"cannot write {target}: {exc.strerror or exc}") from exc
        return sha256 or hashlib.sha256(data).hexdigest()

    def sync(self) -> None:
        """Make every file written since the last ``sync()`` durable, with its folder entry
        (nothing to do unless ``deferred``). Raises StorageError when the filesystem reports a
        failure: those files may then not survive a crash, and must not be handed over."""
        if not self._unsynced:
            return
        pending, self._unsynced = self._unsynced, []
        try:
            if not _syncfs(self.root):
                for path in pending:
                    _fsync_path(path)
                for folder in {path.parent for path in pending}:
                    _folder_sync(folder)
        except OSError as exc:
            raise StorageError(f"cannot sync {len(pending)} files under {self.root}: {exc.strerror or exc}") from exc

    def written_take(self) -> list[str]:
        """The files written since the last ``sync()`` (or call of this), as absolute paths, no
        longer listed here: for another process's storage on the same root to sync them
        (``adopt``), as a finalising pool's processes hand their files back."""
        taken, self._unsynced = self._unsynced, []
        return [str(path) for path in taken]

    def adopt(self, paths: list[str]) -> None:
        """List files another process wrote under this root (``written_take``) to be made durable
        by this storage's next ``sync()``; refuses a path outside the root."""
        root = self.root.resolve()
        for one in paths:
            path = Path(one)
            if not path.resolve().is_relative_to(root):
                raise StorageError(f"cannot adopt {path}: it is not under the storage root {self.root}")
            self._unsynced.append(path)

    def read(self, relative: str) -> bytes:
        try:
            return self.path(relative).read_bytes()
        except OSError as exc:
            raise StorageError(f"cannot read {self.path(relative)}: {exc.strerror or exc}") from exc

    def exists(self, relative: str) -> bool:
        return self.path(relative).is_file()

    def delete(self, relative: str) -> None:
        self.path(relative).unlink(missing_ok=True)


class FsspecStorage:
    """Files under an fsspec URL (``s3://bucket/prefix``, ``gcs://…``, ``memory://…``).

    `options` go to the filesystem (for S3 through s3fs: ``endpoint_url``, ``key``, ``secret``,
    ``client_kwargs``…; credentials may also come from the usual AWS variables).
    """

    def __init__(self, url: str, options: Mapping[str, Any] | None = None) -> None:
        import fsspec

        try:
            self.fs, root = fsspec.core.url_to_fs(url, **dict(options or {}))
        except (ImportError, ValueError) as exc:
            raise StorageError(f"publish target {url!r} cannot be opened: {exc}") from exc
        self.url = url.rstrip("/")
        self.root = root.rstrip("/")

    def _key(self, relative: str) -> str:
        return f"{self.root}/{_relative_check(relative).as_posix()}"

    def location(self, relative: str) -> str:
        return f"{self.url}/{_relative_check(relative).as_posix()}"

    def write(self, relative: str, data: bytes, *, sha256: str | None = None) -> str:
        """Write `data` as one object (all or nothing); returns its sha256 (``sha256`` where the
        caller gives it, as ``LocalStorage.write``)."""
        try:
            self.fs.pipe_file(self._key(relative), data)
        except (OSError, ValueError) as exc:
            raise StorageError(f"cannot write {self.location(relative)}: {exc}") from exc
        return sha256 or hashlib.sha256(data).hexdigest()

    def read(self, relative: str) -> bytes:
        try:
            data: bytes = self.fs.cat_file(self._key(relative))
        except (OSError, ValueError) as exc:
            raise StorageError(f"cannot read {self.location(relative)}: {exc}") from exc
        return data

    def exists(self, relative: str) -> bool:
        self.fs.invalidate_cache()
        return bool(self.fs.exists(self._key(relative)))

    def delete(self, relative: str) -> None:
        """Remove a file; one that is already gone is fine."""
        try:
            self.fs.rm_file(self._key(relative))
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise StorageError(f"cannot delete {self.location(relative)}: {exc}") from exc


def publish_storage(root: Path, url: str = "", options: Mapping[str, Any] | None = None) -> Storage:
    """The publish target: the fsspec `url` when one is set, else the local folder `root`."""
    return FsspecStorage(url, options) if url else LocalStorage(root)


def _fsync_path(path: Path) -> None:
    """fsync a file or a folder by its path."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _folder_sync(folder: Path) -> None:
    """fsync a folder, so that the names made in it survive a crash (POSIX; elsewhere a folder
    cannot be opened to sync, and the filesystem keeps its names itself)."""
    if os.name == "posix":
        _fsync_path(folder)


@functools.cache
def _libc_syncfs() -> Any:
    """libc's ``syncfs`` (Linux), or None where there is none."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        return libc.syncfs
    except (OSError, AttributeError):
        return None


def _syncfs(root: Path) -> bool:
    """Sync the whole filesystem holding ``root`` (``syncfs``); False where that is not available.
    Raises OSError when the filesystem reports a write failure."""
    syncfs = _libc_syncfs()
    if syncfs is None:
        return False
    fd = os.open(root, os.O_RDONLY)
    try:
        if syncfs(fd) != 0:
            error = ctypes.get_errno()
            raise OSError(error, os.strerror(error))
    finally:
        os.close(fd)
    return True
