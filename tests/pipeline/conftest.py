"""Pipeline fixtures: the shipped embedded model."""

from __future__ import annotations

from typing import Any

import pytest

from models import ModelManifest


@pytest.fixture(scope="session")
def embedded() -> tuple[Any, ModelManifest]:
    """The shipped embedded model (pipeline and manifest), verified and loaded once, on the CPU."""
    from models import manifest_load, pipeline_load  # torch: only when a test needs the model

    manifest = manifest_load("embedded")
    return pipeline_load(manifest, device="cpu"), manifest
