"""Storage: the local folder and an fsspec URL (S3 through a local S3-compatible endpoint)."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

import pytest

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
