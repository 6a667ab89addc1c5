"""Shared fixtures: a development signing chain, settings pointing at temporary folders, and
assets made by the real pipeline steps (watermark, C2PA signing, storage)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

# Prefect's local mode keeps a database under PREFECT_HOME: never the developer's own.
os.environ.setdefault("PREFECT_HOME", tempfile.mkdtemp(prefix="greenlight-prefect-"))
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
# The live server answers each request in a new thread: keep no connection open after it.
os.environ.setdefault("GREENLIGHT_DB_CONN_MAX_AGE", "0")

import pytest

from pipeline.signing import SigningFiles, dev_chain_create
from tests.fixture_types import SettingsWrapper


@pytest.fixture(scope="session")
def signing_files(tmp_path_factory: pytest.TempPathFactory) -> SigningFiles:
    """A development certificate chain (root -> intermediate -> signer) made once per session."""
    return dev_chain_create(tmp_path_factory.mktemp("keys"))


@pytest.fixture
def greenlight_settings(settings: SettingsWrapper, tmp_path: Path, signing_files: SigningFiles) -> SettingsWrapper:
    """Storage, publish target and signing files in temporary folders for one test."""
    settings.GREENLIGHT_STORAGE_ROOT = tmp_path / "storage"
    settings.GREENLIGHT_PUBLISH_ROOT = tmp_path / "published"
    settings.GREENLIGHT_SIGNING_CHAIN = signing_files.chain
    settings.GREENLIGHT_SIGNING_KEY = signing_files.key
    settings.GREENLIGHT_TRUST_ANCHORS = signing_files.trust_anchors
    return settings


@pytest.fixture
def library_dir(tmp_path: Path, settings: SettingsWrapper) -> Iterator[Path]:
    """A writable copy of the shipped prompt library, used as GREENLIGHT_LIBRARY_DIR."""
    import shutil

    target = tmp_path / "library"
    shutil.copytree(Path(settings.BASE_DIR) / "prompt_library" / "library", target)
    settings.GREENLIGHT_LIBRARY_DIR = target
    yield target
