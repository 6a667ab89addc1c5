"""Loading a pipeline: verified first, offline, once per process and device."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from models.errors import ManifestError, ModelIntegrityError
from models.loading import pipeline_cache_clear, pipeline_load
from models.registry import manifest_load, template_load
from tests.models.conftest import manifest_edit


def test_a_changed_weight_file_is_refused_naming_the_file(model_copy: Path) -> None:
    weights = model_copy.parent / "embedded-tiny" / "vae" / "diffusion_pytorch_model.safetensors"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0x01
    weights.write_bytes(bytes(data))
    manifest = manifest_load("embedded-tiny", manifests_dir=model_copy)
    with pytest.raises(ModelIntegrityError) as err:
        pipeline_load(manifest)
    assert err.value.file == "vae/diffusion_pytorch_model.safetensors"
    assert err.value.actual is not None and err.value.actual != err.value.expected
    assert "Model 'embedded-tiny'" in str(err.value)
    assert "vae/diffusion_pytorch_model.safetensors" in str(err.value)


def test_a_pipeline_is_loaded_once_per_process_and_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    pipeline_cache_clear()
    manifest = manifest_load("embedded-tiny")
    pipe = pipeline_load(manifest, device="cpu")
    assert pipeline_load(manifest, device="cpu") is pipe  # the same object, not a reload
    assert os.environ["HF_HUB_OFFLINE"] == "1"
    pipeline_cache_clear()
    assert pipeline_load(manifest, device="cpu") is not pipe


def test_a_pipeline_class_that_is_not_a_pipeline_is_refused(model_copy: Path) -> None:
    manifest_edit(model_copy, pipeline_class="AutoencoderKL")
    with pytest.raises(ManifestError) as err:
        pipeline_load(manifest_load("embedded-tiny", manifests_dir=model_copy), device="cpu")
    assert "pipeline_class" in str(err.value) and "AutoencoderKL" in str(err.value)


def test_an_unpinned_template_handed_to_the_loader_is_refused_with_the_pin_command() -> None:
    with pytest.raises(ManifestError) as err:
        pipeline_load(template_load("flux-schnell"), device="cpu")
    assert "unpinned template" in str(err.value) and "python -m models.pin flux-schnell" in str(err.value)
