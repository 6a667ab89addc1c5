"""Storage: the local folder and an fsspec URL (S3 through a local S3-compatible endpoint)."""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import Any

import pytest

from provenance import storage as storage_module
from provenance.errors import StorageError
from provenance.storage import FsspecStorage, LocalStorage, publish_storage


def test_local_storage_writes_atomically_and_leaves_no_partial_files(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    digest = storage.write("a/b/file.bin", b"payload")
    assert digest == hashlib.sha256(b"payload").hexdigest()
    assert storage.read("a/b/file.bin") == b"payload"
    assert [p.name for p in (tmp_path / "a" / "b").iterdir()] == ["file.bin"]
    storage.delete("a/b/file.bin")
    storage.delete("a/b/file.bin")  # already gone is fine
    assert not storage.exists("a/b/file.bin")


def synced_paths(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The paths of the files and folders fsynced from here on (the kernel call is still made)."""
    synced: list[str] = []
    real = os.fsync

    def fsync(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real(fd)

    monkeypatch.setattr(storage_module.os, "fsync", fsync)
    return synced


def test_a_write_is_durable_when_it_returns_the_file_and_its_folder_entry_synced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced = synced_paths(monkeypatch)
    LocalStorage(tmp_path).write("masters/ab/one.png", b"payload")
    folder = tmp_path / "masters" / "ab"
    # The temporary file (renamed since) and then the folder that holds the new name.
    assert len(synced) == 2 and synced[0].startswith(str(folder / ".one.png.")) and synced[1] == str(folder)


def test_a_deferred_storage_syncs_a_batch_of_writes_at_once_and_only_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced = synced_paths(monkeypatch)
    filesystems: list[Path] = []
    real_syncfs = storage_module._syncfs

    def syncfs(root: Path) -> bool:
        filesystems.append(root)
        return real_syncfs(root)

    monkeypatch.setattr(storage_module, "_syncfs", syncfs)
    storage = LocalStorage(tmp_path, deferred=True)
    storage.write("masters/ab/one.png", b"one")
    storage.write("thumbnails/ab/one.jpg", b"thumb")
    assert synced == [] and filesystems == []  # nothing synced yet: the batch is not done

    storage.sync()
    assert filesystems == [tmp_path] and synced == []  # one syncfs of the storage's filesystem
    storage.sync()  # nothing new written: nothing to do
    assert filesystems == [tmp_path]
    assert storage.read("masters/ab/one.png") == b"one" and storage.read("thumbnails/ab/one.jpg") == b"thumb"


def test_files_another_process_wrote_are_synced_by_the_storage_that_adopts_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    filesystems: list[Path] = []

    def syncfs(root: Path) -> bool:
        filesystems.append(root)
        return True

    monkeypatch.setattr(storage_module, "_syncfs", syncfs)
    writer = LocalStorage(tmp_path, deferred=True)  # a finalising process's
    writer.write("masters/ab/one.png", b"one")
    written = writer.written_take()
    assert written == [str(tmp_path / "masters" / "ab" / "one.png")] and writer.written_take() == []
    writer.sync()
    assert filesystems == []  # handed over: not the writer's to sync any more

    batch = LocalStorage(tmp_path, deferred=True)
    batch.adopt(written)
    batch.sync()
    assert filesystems == [tmp_path]
    with pytest.raises(StorageError, match="not under the storage root"):
        batch.adopt([str(tmp_path.parent / "elsewhere.png")])


def test_without_syncfs_a_deferred_sync_fsyncs_each_file_and_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(storage_module, "_syncfs", lambda root: False)  # not Linux
    synced = synced_paths(monkeypatch)
    storage = LocalStorage(tmp_path, deferred=True)
    storage.write("a/one.bin", b"1")
    storage.write("a/two.bin", b"2")
    storage.write("b/three.bin", b"3")
    storage.sync()
    expected = [tmp_path / "a" / "one.bin", tmp_path / "a" / "two.bin", tmp_path / "b" / "three.bin"]
    assert synced[:3] == [str(path) for path in expected]
    assert sorted(synced[3:]) == [str(tmp_path / "a"), str(tmp_path / "b")]


def test_a_sync_the_filesystem_refuses_raises_naming_the_files_and_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def failing(root: Path) -> bool:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(storage_module, "_syncfs", failing)
    storage = LocalStorage(tmp_path, deferred=True)
    storage.write("a/one.bin", b"1")
    with pytest.raises(StorageError, match=re.escape(f"cannot sync 1 files under {tmp_path}: Input/output error")):
        storage.sync()


@pytest.mark.parametrize("bad", ["../escape.png", "/etc/passwd", ""])
@pytest.mark.parametrize("kind", ["local", "s3"])
def test_paths_that_leave_the_root_are_refused(bad: str, kind: str, tmp_path: Path, s3_bucket: dict[str, Any]) -> None:
    storage = (
        LocalStorage(tmp_path)
        if kind == "local"
        else FsspecStorage(f"s3://{s3_bucket['bucket']}", s3_bucket["options"])
    )
    with pytest.raises(StorageError, match="must be relative"):
        storage.write(bad, b"x")


def test_s3_storage_round_trips_through_the_endpoint(s3_bucket: dict[str, Any]) -> None:
    storage = publish_storage(Path("/unused"), f"s3://{s3_bucket['bucket']}/assets/", s3_bucket["options"])
    assert isinstance(storage, FsspecStorage)
    digest = storage.write("spring/00000001-web.jpg", b"\xff\xd8jpeg bytes")
    assert digest == hashlib.sha256(b"\xff\xd8jpeg bytes").hexdigest()
    fs = s3_bucket["fs"]
    fs.invalidate_cache()
    assert fs.cat_file(f"{s3_bucket['bucket']}/assets/spring/00000001-web.jpg") == b"\xff\xd8jpeg bytes"
    assert storage.location("spring/00000001-web.jpg") == f"s3://{s3_bucket['bucket']}/assets/spring/00000001-web.jpg"
    assert storage.exists("spring/00000001-web.jpg")
    storage.delete("spring/00000001-web.jpg")
    storage.delete("spring/00000001-web.jpg")
    assert not storage.exists("spring/00000001-web.jpg")


def test_a_missing_bucket_fails_with_the_url_in_the_message(s3_endpoint: str) -> None:
    storage = FsspecStorage("s3://no-such-bucket-here", {"endpoint_url": s3_endpoint, "key": "k", "secret": "s"})
    with pytest.raises(StorageError, match=re.escape("cannot write s3://no-such-bucket-here/x.png")):
        storage.write("x.png", b"data")


def test_an_unknown_protocol_is_refused_clearly() -> None:
    with pytest.raises(StorageError, match="cannot be opened"):
        FsspecStorage("nosuchproto://bucket")
