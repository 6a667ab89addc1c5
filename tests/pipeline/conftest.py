"""Pipeline fixtures: a signer and a context on the session's development chain (tests/conftest.py),
and the shipped embedded model."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from models.registry import ModelManifest
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


@pytest.fixture(scope="session")
def embedded() -> tuple[Any, ModelManifest]:
    """The shipped embedded model (pipeline and manifest), verified and loaded once, on the CPU."""
    from models.registry import manifest_load, pipeline_load  # torch: only when a test needs the model

    manifest = manifest_load("embedded")
    return pipeline_load(manifest, device="cpu"), manifest
