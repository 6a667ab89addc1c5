"""Pinning a downloaded folder against a template: ``python -m models.pin``."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from models.errors import ManifestError, ModelFolderError, ModelIntegrityError, ModelNotFoundError
from models.integrity import sha256_file
from models.loading import pipeline_load
from models.manifest import ModelManifest
from models.pin import main, manifest_pin
from models.registry import MANIFESTS_DIR, manifest_load, manifests_known, template_load, templates_known
from tests.models.conftest import TEMPLATES_DIR

PROJECT_ROOT = MANIFESTS_DIR.parent.parent


@pytest.fixture
def sd_copy(tiny_folders: dict[str, Path], tmp_path: Path) -> Path:
    """A writable copy of the tiny Stable Diffusion folder."""
    return Path(shutil.copytree(tiny_folders["sd"], tmp_path / "download"))


def test_the_shipped_templates_are_complete_and_unpinned() -> None:
    assert templates_known() == [
        "flux-schnell",
        "ltx-video",
        "sd-turbo",
        "sdxl-base",
        "sdxl-turbo",
        "wan2.1-t2v-1.3b",
    ]
    for name in templates_known():
        template = template_load(name)
        assert template.template and not template.files
        assert template.license and template.source.startswith("https://huggingface.co/")
        assert "GB" in template.hardware
    assert set(templates_known()).isdisjoint(manifests_known())  # a template is not a model yet
    wan = template_load("wan2.1-t2v-1.3b")
    assert (wan.role, wan.defaults.frames, wan.defaults.fps, wan.defaults.width, wan.defaults.height) == (
        "video-generator",
        81,
        16,
        832,
        480,
    )
    flux = template_load("flux-schnell")
    assert (flux.dtype, dict(flux.call_options)) == ("bfloat16", {"max_sequence_length": 256})


def test_pinning_hashes_every_file_and_the_manifest_loads_and_verifies(
    tiny_manifests: dict[str, ModelManifest], tiny_folders: dict[str, Path]
) -> None:
    manifest = tiny_manifests["sd"]
    folder = tiny_folders["sd"]
    on_disk = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
    assert set(manifest.files) == on_disk
    assert manifest.files["unet/diffusion_pytorch_model.safetensors"] == sha256_file(
        folder / "unet" / "diffusion_pytorch_model.safetensors"
    )
    assert (manifest.family, manifest.license, manifest.folder) == (
        "stable-diffusion",
        template_load("sd-turbo").license,
        folder,
    )
    assert manifest_load("tiny-sd", manifests_dir=manifest.path.parent) == manifest
    assert "tiny-sd" in manifests_known(manifests_dir=manifest.path.parent)


def test_bookkeeping_files_are_not_pinned(sd_copy: Path, tmp_path: Path) -> None:
    (sd_copy / ".git").mkdir()
    (sd_copy / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (sd_copy / ".cache" / "huggingface").mkdir(parents=True)
    (sd_copy / ".cache" / "huggingface" / "download.metadata").write_text("x")
    (sd_copy / "unet" / "diffusion_pytorch_model.safetensors.lock").write_text("")
    manifest = manifest_pin("sd-turbo", sd_copy, name="sd-copy", manifests_dir=tmp_path / "m")
    assert not [rel for rel in manifest.files if rel.startswith((".git", ".cache")) or rel.endswith(".lock")]
    assert "model_index.json" in manifest.files


def test_a_folder_of_another_pipeline_is_refused_naming_both_classes(sd_copy: Path, tmp_path: Path) -> None:
    with pytest.raises(ModelFolderError) as err:
        manifest_pin("flux-schnell", sd_copy, manifests_dir=tmp_path)
    assert "'StableDiffusionPipeline'" in str(err.value) and "'FluxPipeline'" in str(err.value)
    assert "_class_name" in str(err.value)
    assert not list(tmp_path.glob("*.yaml"))


def test_a_folder_without_model_index_or_with_a_missing_component_is_refused(sd_copy: Path, tmp_path: Path) -> None:
    shutil.rmtree(sd_copy / "text_encoder")
    with pytest.raises(ModelFolderError) as err:
        manifest_pin("sd-turbo", sd_copy, manifests_dir=tmp_path)
    assert "'text_encoder'" in str(err.value)
    (sd_copy / "model_index.json").unlink()
    with pytest.raises(ModelFolderError) as err:
        manifest_pin("sd-turbo", sd_copy, manifests_dir=tmp_path)
    assert "model_index.json" in str(err.value)


def test_an_existing_manifest_is_replaced_only_when_forced(sd_copy: Path, tmp_path: Path) -> None:
    first = manifest_pin("sd-turbo", sd_copy, manifests_dir=tmp_path)
    with pytest.raises(ManifestError) as err:
        manifest_pin("sd-turbo", sd_copy, manifests_dir=tmp_path)
    assert "--force" in str(err.value)
    (sd_copy / "unet" / "config.json").write_text(json.dumps({"changed": True}))
    second = manifest_pin("sd-turbo", sd_copy, manifests_dir=tmp_path, force=True)
    assert second.manifest_hash != first.manifest_hash


def test_an_unknown_template_is_refused_listing_the_known_ones(sd_copy: Path, tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError) as err:
        manifest_pin("sd-mega", sd_copy, manifests_dir=tmp_path)
    assert "No template named 'sd-mega'" in str(err.value) and "sdxl-turbo" in str(err.value)


def test_a_pinned_manifest_refuses_a_folder_changed_after_pinning(sd_copy: Path, tmp_path: Path) -> None:
    manifest = manifest_pin("sd-turbo", sd_copy, name="sd-copy", manifests_dir=tmp_path)
    (sd_copy / "tokenizer" / "tokenizer.json").unlink()
    with pytest.raises(ModelIntegrityError) as err:
        pipeline_load(manifest, device="cpu")
    assert err.value.file == "tokenizer/tokenizer.json" and err.value.actual is None


def test_a_manifest_whose_class_differs_from_its_folder_is_refused_before_loading(
    sd_copy: Path, tmp_path: Path
) -> None:
    manifest_pin("sd-turbo", sd_copy, name="sd-copy", manifests_dir=tmp_path)
    path = tmp_path / "sd-copy.yaml"
    data = yaml.safe_load(path.read_text())
    data.update(family="stable-diffusion-xl", pipeline_class="StableDiffusionXLPipeline")
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ModelFolderError) as err:
        pipeline_load(manifest_load("sd-copy", manifests_dir=tmp_path), device="cpu")
    assert "'StableDiffusionPipeline'" in str(err.value) and "'StableDiffusionXLPipeline'" in str(err.value)


def test_the_command_writes_the_manifest_and_reports_errors(
    sd_copy: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "manifests" / "house-sd.yaml"
    assert main(["sd-turbo", str(sd_copy), "--out", str(out)]) == 0
    assert "house-sd.yaml" in capsys.readouterr().out
    assert manifest_load("house-sd", manifests_dir=out.parent).folder == sd_copy
    assert main(["sdxl-turbo", str(sd_copy), "--out", str(tmp_path / "x.yaml")]) == 1
    assert "error:" in capsys.readouterr().err


def test_python_dash_m_models_pin_runs_as_a_command(sd_copy: Path, tmp_path: Path) -> None:
    out = tmp_path / "cli-sd.yaml"
    result = subprocess.run(
        [sys.executable, "-m", "models.pin", str(TEMPLATES_DIR / "sd-turbo.yaml"), str(sd_copy), "--out", str(out)],
        cwd=PROJECT_ROOT,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "manifest_hash" in result.stdout
    assert manifest_load("cli-sd", manifests_dir=tmp_path).files.keys() >= {"model_index.json"}
