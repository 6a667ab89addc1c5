"""`signing_keys_create --rotate`: a new chain and watermark key, with every earlier root still a
trust anchor and every earlier watermark key still read, so files made before stay verified; and
`verify` names which key signed and which key marked."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from django.core.management import CommandError
from PIL import Image

from provenance.config import provenance_config_from_settings
from provenance.credentials import c2pa_read, c2pa_sign, generated_manifest, reader_context
from provenance.errors import SigningError
from provenance.keys import SigningFiles, signer_create, signing_files_check, tsa_url_check
from provenance.watermark import watermark_embed, watermark_payload
from provenance.watermark_keys import watermark_keys_load
from review.verify import file_verify
from tests.fixture_types import SettingsWrapper
from tests.infra.commands import run
from tests.provenance.samples import product_shot
from tests.provenance.tsa import LocalTsa, timestamped_files


@pytest.fixture
def keys_dir(keys_dir: Path, settings: SettingsWrapper, tmp_path: Path) -> Path:
    """The signing files' folder, with the storage root beside it."""
    settings.GREENLIGHT_STORAGE_ROOT = tmp_path / "storage"
    return keys_dir


def made_now(serial: int) -> bytes:
    """A PNG marked with the current watermark key and signed with the current chain."""
    config = provenance_config_from_settings()
    key = watermark_keys_load(config.watermark_keys).current
    buffer = io.BytesIO()
    watermark_embed(product_shot(serial), serial, key=key.secret).save(buffer, "PNG")
    manifest = generated_manifest(
        title=f"made #{serial}",
        model_name="m",
        model_manifest_hash="h",
        generation_record={"serial": serial},
        watermark_value=watermark_payload(serial),
        watermark_key_id=key.key_id,
    )
    with signer_create(config.signing) as signer, reader_context(config.signing) as context:
        return c2pa_sign(buffer.getvalue(), mime="image/png", manifest=manifest, signer=signer, context=context)


@pytest.mark.django_db
def test_after_a_rotation_old_and_new_files_are_trusted_and_verify_names_each_key(keys_dir: Path) -> None:
    assert "Created watermark key" in run("signing_keys_create")
    old_key = watermark_keys_load(provenance_config_from_settings().watermark_keys).current.key_id
    before = made_now(101)

    said = run("signing_keys_create", "--rotate")

    assert "Rotated the signing chain" in said and "2 roots trusted" in said
    assert f"earlier keys still read: {old_key}" in said
    config = provenance_config_from_settings()
    signing_files_check(config.signing)  # the new chain signs; the old root rides along as an anchor
    retired = list((keys_dir / "retired").glob("*/chain.pem"))
    assert len(retired) == 1 and not list((keys_dir / "retired").glob("*/*.key"))  # the old private key is gone
    new_key = watermark_keys_load(config.watermark_keys).current.key_id
    assert new_key != old_key
    after = made_now(202)
    with reader_context(config.signing) as context:
        for data in (before, after):
            assert c2pa_read(data, mime="image/png", context=context).state == "trusted"

    old, new = file_verify(data=before, filename="before.png"), file_verify(data=after, filename="after.png")

    assert old.c2pa.state == new.c2pa.state == "trusted"
    assert old.c2pa.signed_with is not None and old.c2pa.signed_with.startswith("earlier, retired ")
    assert new.c2pa.signed_with == "current"
    assert (old.watermark.serial, old.watermark.key_id) == (101, old_key)
    assert (new.watermark.serial, new.watermark.key_id) == (202, new_key)
    # A second rotation keeps both earlier roots.
    assert "3 roots trusted" in run("signing_keys_create", "--rotate")
    with reader_context(provenance_config_from_settings().signing) as context:
        assert c2pa_read(before, mime="image/png", context=context).state == "trusted"


def test_rotate_needs_a_chain_and_does_not_go_with_force(keys_dir: Path) -> None:
    with pytest.raises(CommandError, match="Nothing to rotate"):
        run("signing_keys_create", "--rotate")
    with pytest.raises(CommandError, match="do not go together"):
        run("signing_keys_create", "--rotate", "--force")


def test_a_timestamp_authority_is_asked_at_each_sign(signing_files: SigningFiles, tmp_path: Path) -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (90, 120, 150)).save(buffer, "PNG")
    manifest = generated_manifest(
        title="t", model_name="m", model_manifest_hash="h", generation_record={"serial": 1}, watermark_value="01"
    )
    with LocalTsa() as tsa:
        timestamped = timestamped_files(signing_files, tsa, tmp_path / "tsa")
        with signer_create(timestamped) as signer, reader_context(timestamped) as context:
            signed = [
                c2pa_sign(buffer.getvalue(), mime="image/png", manifest=manifest, signer=signer, context=context)
                for _ in range(3)
            ]
            stamps = [c2pa_read(data, mime="image/png", context=context).timestamp() for data in signed]
        assert tsa.requests == 3 and all(stamp is not None for stamp in stamps)
    # Without a TSA nothing is asked and nothing is stamped.
    with signer_create(signing_files) as signer, reader_context(signing_files) as context:
        plain = c2pa_sign(buffer.getvalue(), mime="image/png", manifest=manifest, signer=signer, context=context)
        assert c2pa_read(plain, mime="image/png", context=context).timestamp() is None


@pytest.mark.parametrize("url", ["ftp://tsa.example/", "tsa.example", "http:///nohost", "https://tsa.example/a b"])
def test_a_timestamp_authority_url_that_is_not_http_is_refused_naming_it(url: str) -> None:
    with pytest.raises(SigningError, match="GREENLIGHT_TSA_URL"):
        tsa_url_check(url)
    assert tsa_url_check("") is None and tsa_url_check("https://tsa.example/rfc3161") == "https://tsa.example/rfc3161"
