"""Tiny random pipelines of every family, saved and pinned once per test session."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from models.manifest import ModelManifest
from models.pin import manifest_pin
from models.registry import MANIFESTS_DIR
from tests.models import tiny_pipelines

TEMPLATES_DIR = MANIFESTS_DIR / "templates"


@dataclass(frozen=True)
class TinyFamily:
    """A tiny pipeline of one family and the shipped template it is pinned against."""

    key: str
    template: str
    build: Callable[[], Any]


TINY_FAMILIES: dict[str, TinyFamily] = {
    family.key: family
    for family in (
        TinyFamily("sd", "sd-turbo", tiny_pipelines.stable_diffusion_build),
        TinyFamily("sdxl", "sdxl-turbo", tiny_pipelines.stable_diffusion_xl_build),
        TinyFamily("flux", "flux-schnell", tiny_pipelines.flux_build),
        TinyFamily("wan", "wan2.1-t2v-1.3b", tiny_pipelines.wan_build),
        TinyFamily("ltx", "ltx-video", tiny_pipelines.ltx_build),
    )
}


@pytest.fixture(scope="session")
def tiny_folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Each tiny pipeline saved as a diffusers folder, as a download would leave it (read-only use)."""
    root = tmp_path_factory.mktemp("tiny-models")
    return {key: tiny_pipelines.pipeline_save(family.build(), root / key) for key, family in TINY_FAMILIES.items()}


@pytest.fixture(scope="session")
def tiny_manifests(tiny_folders: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, ModelManifest]:
    """Each tiny folder pinned against its family's shipped template, as ``tiny-<key>``."""
    manifests_dir = tmp_path_factory.mktemp("tiny-manifests")
    return {
        key: manifest_pin(
            TEMPLATES_DIR / f"{TINY_FAMILIES[key].template}.yaml",
            folder,
            name=f"tiny-{key}",
            manifests_dir=manifests_dir,
        )
        for key, folder in tiny_folders.items()
    }


@pytest.fixture
def model_copy(tmp_path: Path) -> Path:
    """A writable copy of the shipped model and its manifest; returns the manifests folder."""
    shutil.copytree(MANIFESTS_DIR, tmp_path / "manifests")
    shutil.copytree(MANIFESTS_DIR.parent / "embedded-tiny", tmp_path / "embedded-tiny")
    return tmp_path / "manifests"


def manifest_edit(manifests_dir: Path, **changes: object) -> None:
    """Rewrite the copied manifest with top-level fields replaced (None deletes the field)."""
    path = manifests_dir / "embedded-tiny.yaml"
    data = yaml.safe_load(path.read_text())
    for key, value in changes.items():
        if value is None:
            del data[key]
        else:
            data[key] = value
    path.write_text(yaml.safe_dump(data))
