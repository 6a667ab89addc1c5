"""Checking a model folder against its manifest's sha256 pins."""

from __future__ import annotations

from pathlib import Path

import pytest

from models.errors import ManifestError, ModelIntegrityError
from models.integrity import manifest_verify
from models.registry import manifest_load, template_load


def test_the_shipped_manifest_loads_and_its_files_match_their_pins() -> None:
    manifest = manifest_load("embedded-tiny")
    assert manifest.pipeline_class == "StableDiffusionPipeline"
    assert manifest.defaults.width % manifest.vae_scale_factor == 0
    assert "unet/diffusion_pytorch_model.safetensors" in manifest.files
    assert len(manifest.manifest_hash) == 64
    manifest_verify(manifest)


def test_a_missing_file_is_refused(model_copy: Path) -> None:
    (model_copy.parent / "embedded-tiny" / "tokenizer" / "tokenizer.json").unlink()
    with pytest.raises(ModelIntegrityError) as err:
        manifest_verify(manifest_load("embedded-tiny", manifests_dir=model_copy))
    assert err.value.file == "tokenizer/tokenizer.json" and err.value.actual is None


def test_files_the_manifest_does_not_pin_are_ignored(model_copy: Path) -> None:
    (model_copy.parent / "embedded-tiny" / "unet" / "notes.txt").write_text("not a weight")
    manifest_verify(manifest_load("embedded-tiny", manifests_dir=model_copy))


def test_an_unpinned_template_has_nothing_to_verify_and_is_refused_with_the_pin_command() -> None:
    with pytest.raises(ManifestError) as err:
        manifest_verify(template_load("sdxl-turbo"))
    assert "unpinned template" in str(err.value) and "python -m models.pin sdxl-turbo" in str(err.value)
