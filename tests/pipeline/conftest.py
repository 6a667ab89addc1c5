"""Shared fixtures for pipeline tests: a real dev signing chain, signer and context."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from pipeline.signing import SigningFiles, dev_chain_create, reader_context, signer_create


@pytest.fixture(scope="session")
def signing_files(tmp_path_factory: pytest.TempPathFactory) -> SigningFiles:
    """A fresh development chain (root -> intermediate -> signer) in a temporary folder."""
    return dev_chain_create(tmp_path_factory.mktemp("keys"))


@pytest.fixture(scope="session")
def signer(signing_files: SigningFiles) -> Iterator[Any]:
    """One ES256 signer for the whole session, closed at the end."""
    with signer_create(signing_files) as created:
        yield created


@pytest.fixture(scope="session")
def context(signing_files: SigningFiles) -> Iterator[Any]:
    """A c2pa Context trusting the dev root, for Builders and Readers alike."""
    with reader_context(signing_files) as created:
        yield created
