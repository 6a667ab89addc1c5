"""Development signing chains: they pass the checks, keep their key private, and expire."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509

from infra.dev_certs import dev_chain_create
from provenance.errors import SigningError
from provenance.keys import SigningFiles, signing_files_check


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
