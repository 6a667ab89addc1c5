"""Fixtures of the infra tests: the signing files' settings pointed at a fresh folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fixture_types import SettingsWrapper


@pytest.fixture
def keys_dir(settings: SettingsWrapper, tmp_path: Path) -> Path:
    """An empty folder the signing chain, key, trust anchors and watermark keys are set to live in."""
    keys = tmp_path / "keys"
    settings.GREENLIGHT_SIGNING_CHAIN = keys / "chain.pem"
    settings.GREENLIGHT_SIGNING_KEY = keys / "signer.key"
    settings.GREENLIGHT_TRUST_ANCHORS = keys / "root.pem"
    settings.GREENLIGHT_WATERMARK_KEYS_DIR = keys / "watermark"
    return keys
