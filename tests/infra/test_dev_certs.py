"""Development signing chains: they pass the checks, keep their key private, and expire."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ed25519
from PIL import Image

from infra.dev_certs import dev_chain_create
from provenance.credentials import c2pa_read, c2pa_sign, reader_context
from provenance.errors import SigningError
from provenance.keys import SigningFiles, signer_create, signing_files_check
from tests.provenance.samples import manifest_for


def test_dev_chain_passes_the_check_and_keeps_its_key_private(signing_files: SigningFiles) -> None:
    signing_files_check(signing_files)

    assert signing_files.key.stat().st_mode & 0o777 == 0o600
    assert len(x509.load_pem_x509_certificates(signing_files.chain.read_bytes())) == 2


def test_dev_chain_create_refuses_to_overwrite(tmp_path: Path) -> None:
    files = dev_chain_create(tmp_path / "keys")
    first_key = files.key.read_bytes()

    with pytest.raises(SigningError, match="already exists") as refused:
        dev_chain_create(tmp_path / "keys")
    assert refused.value.path is not None and str(refused.value.path) in str(refused.value)
    assert files.key.read_bytes() == first_key

    dev_chain_create(tmp_path / "keys", overwrite=True)
    assert files.key.read_bytes() != first_key
    signing_files_check(files)


def test_dev_chain_expires_after_its_days(signing_files: SigningFiles) -> None:
    later = datetime.now(UTC) + timedelta(days=400)

    with pytest.raises(SigningError, match="expired on"):
        signing_files_check(signing_files, now=later)


@pytest.mark.parametrize(("algorithm", "alg"), [("ed25519", "Ed25519"), ("es256", "ES256")])
def test_dev_chain_of_each_algorithm_signs_files_that_read_back_trusted(
    tmp_path: Path, algorithm: str, alg: str
) -> None:
    files = dev_chain_create(tmp_path / "keys", algorithm=algorithm)
    signing_files_check(files)
    picture = io.BytesIO()
    Image.new("RGB", (64, 64), (40, 90, 160)).save(picture, "PNG")

    with signer_create(files) as signer, reader_context(files) as context:
        signed = c2pa_sign(
            picture.getvalue(), mime="image/png", manifest=manifest_for(), signer=signer, context=context
        )
        report = c2pa_read(signed, mime="image/png", context=context)

    assert report.state == "trusted", report
    assert report.store is not None
    assert report.store["manifests"][report.active_label]["signature_info"]["alg"].lower() == alg.lower()


def test_dev_chain_is_ed25519_unless_asked_otherwise(signing_files: SigningFiles) -> None:
    chain = x509.load_pem_x509_certificates(signing_files.chain.read_bytes())
    root = x509.load_pem_x509_certificates(signing_files.trust_anchors.read_bytes())[0]

    assert all(isinstance(cert.public_key(), ed25519.Ed25519PublicKey) for cert in [*chain, root])


def test_dev_chain_of_an_unknown_algorithm_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SigningError, match="is ed25519 or es256, not 'rsa'"):
        dev_chain_create(tmp_path / "keys", algorithm="rsa")
    assert not (tmp_path / "keys").exists()
