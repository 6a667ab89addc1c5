"""Secret watermark keys: made outside the repository, read as a ring (current first, older ones
still read), reached through a KMS/HSM callback, and never shown in a repr, an error or a log."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from django.conf import settings

from provenance.credentials import generated_manifest
from provenance.errors import SigningError, WatermarkKeyError
from provenance.watermark import ALGORITHM, SERIAL_MAX, watermark_embed, watermark_read
from provenance.watermark_keys import (
    WatermarkKeyFiles,
    mark_id_new,
    soft_binding_key_id,
    watermark_key_create,
    watermark_keys_ensure,
    watermark_keys_load,
)
from tests.provenance.samples import product_shot

CALLBACK_KEYS = {"wk-00000000000a": bytes(range(32)), "wk-00000000000b": bytes(range(1, 33))}


def kms_keys() -> tuple[str, dict[str, bytes]]:
    """A stand-in for a KMS client: the current id and every key it holds."""
    return "wk-00000000000b", CALLBACK_KEYS


def test_a_key_is_random_private_to_its_owner_and_never_in_a_repr(tmp_path: Path) -> None:
    key_id = watermark_key_create(tmp_path / "wm")
    other_id = watermark_key_create(tmp_path / "other")
    ring = watermark_keys_load(WatermarkKeyFiles(directory=tmp_path / "wm"))

    assert ring.current.key_id == key_id != other_id
    assert (tmp_path / "wm" / f"{key_id}.key").stat().st_mode & 0o077 == 0
    assert (tmp_path / "wm").stat().st_mode & 0o077 == 0
    assert len(ring.current.secret) == 64
    assert ring.current.secret != watermark_keys_load(WatermarkKeyFiles(directory=tmp_path / "other")).current.secret
    for shown in (repr(ring), str(ring.current), repr(ring.current)):
        assert ring.current.secret not in shown and key_id in shown


def test_a_rotated_ring_marks_with_the_new_key_and_still_reads_the_old(tmp_path: Path) -> None:
    files = WatermarkKeyFiles(directory=tmp_path)
    old = watermark_key_create(tmp_path)
    old_key = watermark_keys_load(files).current
    marked_before = watermark_embed(product_shot(2), 123_456, key=old_key.secret)
    new = watermark_key_create(tmp_path)

    ring = watermark_keys_load(files)

    assert ring.current.key_id == new and ring.key_ids == (new, old)
    by_id = ring.by_id(old)
    assert by_id is not None and watermark_read(marked_before, key=by_id.secret).serial == 123_456
    assert watermark_read(marked_before, key=ring.current.secret).serial is None  # a wrong key reads nothing


def test_missing_or_damaged_keys_are_named_without_their_content(tmp_path: Path) -> None:
    files = WatermarkKeyFiles(directory=tmp_path)
    with pytest.raises(WatermarkKeyError, match="signing_keys_create"):
        watermark_keys_load(files)
    key_id = watermark_key_create(tmp_path)
    secret = watermark_keys_load(files).current.secret
    (tmp_path / "current").write_text("wk-ffffffffffff\n")
    with pytest.raises(WatermarkKeyError, match="names watermark key wk-ffffffffffff"):
        watermark_keys_load(files)
    (tmp_path / "current").write_text(key_id)
    (tmp_path / f"{key_id}.key").write_text(secret + "not hex at all")
    with pytest.raises(WatermarkKeyError) as damaged:
        watermark_keys_load(files)
    assert str(tmp_path / f"{key_id}.key") in str(damaged.value) and secret not in str(damaged.value)
    assert isinstance(damaged.value, SigningError)  # callers that stop on signing problems stop on these


def test_a_callback_hands_over_the_ring_and_its_failures_hide_the_key() -> None:
    ring = watermark_keys_load(WatermarkKeyFiles(directory=Path("/nonexistent"), callback=f"{__name__}:kms_keys"))

    assert ring.key_ids == ("wk-00000000000b", "wk-00000000000a")
    assert ring.current.secret == CALLBACK_KEYS["wk-00000000000b"].hex()
    with pytest.raises(WatermarkKeyError, match="cannot be imported"):
        watermark_keys_load(WatermarkKeyFiles(directory=Path("/nonexistent"), callback="no.such.module:keys"))
    with pytest.raises(WatermarkKeyError, match="is not an import path"):
        watermark_keys_load(WatermarkKeyFiles(directory=Path("/nonexistent"), callback="nocolon"))
    # Never created beside a callback: the keys live in the KMS.
    assert (
        watermark_keys_ensure(WatermarkKeyFiles(directory=Path("/nonexistent"), callback=f"{__name__}:kms_keys"))[1]
        is False
    )


def test_the_soft_binding_names_the_algorithm_and_the_key_id_never_the_key(tmp_path: Path) -> None:
    watermark_key_create(tmp_path)
    key = watermark_keys_load(WatermarkKeyFiles(directory=tmp_path)).current

    manifest = generated_manifest(
        title="t",
        model_name="m",
        model_manifest_hash="h",
        generation_record={"serial": 1},
        watermark_value="01",
        watermark_key_id=key.key_id,
    )

    binding = next(a["data"] for a in manifest["assertions"] if a["label"] == "c2pa.soft-binding")
    assert binding["alg"] == ALGORITHM and soft_binding_key_id(binding["name"]) == key.key_id
    assert key.secret not in str(manifest)


def test_mark_ids_are_random_40_bit_ids() -> None:
    ids = {mark_id_new() for _ in range(1000)}
    assert len(ids) == 1000 and all(0 < i <= SERIAL_MAX for i in ids)
    assert max(ids) > 2**36  # not small sequential numbers


def test_the_default_key_folder_is_outside_the_repository_and_no_key_file_is_tracked() -> None:
    base = Path(settings.BASE_DIR).resolve()
    assert not Path(settings.GREENLIGHT_WATERMARK_KEYS_DIR).resolve().is_relative_to(base) or (
        "GREENLIGHT_WATERMARK_KEYS_DIR" in __import__("os").environ
    )
    tracked = subprocess.run(["git", "ls-files"], cwd=base, capture_output=True, text=True, check=True).stdout.split()
    assert not [path for path in tracked if path.endswith(".key") or Path(path).name == "current"]
