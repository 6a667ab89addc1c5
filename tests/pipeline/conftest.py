"""Pipeline fixtures: the shipped embedded model, a tiny video model and a tiny captioner."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from models import MANIFESTS_DIR, ModelManifest
from models.captioner import captioner_pin
from models.pin import manifest_pin
from tests.fixture_types import SettingsWrapper
from tests.models import tiny_pipelines


@pytest.fixture(scope="session")
def embedded() -> tuple[Any, ModelManifest]:
    """The shipped embedded model (pipeline and manifest), verified and loaded once, on the CPU."""
    from models import manifest_load  # torch: only when a test needs the model
    from models.loading import pipeline_load

    manifest = manifest_load("embedded")
    return pipeline_load(manifest, device="cpu"), manifest


@pytest.fixture(scope="module")
def video_models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A models folder holding one video model: the tiny Wan, pinned against the shipped template."""
    root = tmp_path_factory.mktemp("video-models")
    folder = tiny_pipelines.pipeline_save(tiny_pipelines.wan_build(), root / "tiny-wan")
    manifest_pin(MANIFESTS_DIR / "templates" / "wan2.1-t2v-1.3b.yaml", folder, name="tiny-wan", manifests_dir=root)
    return root


@pytest.fixture
def wan_library(greenlight_settings: SettingsWrapper, video_models_dir: Path, tmp_path: Path) -> Path:
    """An empty prompt library on the video models folder (templates are written by each test)."""
    greenlight_settings.GREENLIGHT_MODELS_DIR = video_models_dir
    root = tmp_path / "library"
    (root / "templates").mkdir(parents=True)
    (root / "campaigns").mkdir()
    return root


@pytest.fixture(scope="module")
def captioner_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A models folder holding one captioner: the tiny random image-to-text model, pinned."""
    root = tmp_path_factory.mktemp("captioner-models")
    folder = tiny_pipelines.tiny_captioner_save(root / "tiny-captioner")
    captioner_pin(
        "tiny-captioner", folder, model_class="VisionEncoderDecoderModel", license_name="apache-2.0", manifests_dir=root
    )
    return root
