"""Pipeline fixtures: a signer and a context on the session's development chain (tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from pipeline.signing import SigningFiles, reader_context, signer_create


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
