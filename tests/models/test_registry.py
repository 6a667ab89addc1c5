"""The model registry: manifests, sha256 pins and the offline, once-per-process loader."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, cast

import pytest
import torch
import yaml

from models.errors import ManifestError, ModelIntegrityError, ModelNotFoundError
from models.registry import (
    MANIFESTS_DIR,
    manifest_load,
    manifest_verify,
    pipeline_cache_clear,
    pipeline_load,
)


@pytest.fixture
def model_copy(tmp_path: Path) -> Path:
    """A writable copy of the shipped model and its manifest; returns the manifests folder."""
    shutil.copytree(MANIFESTS_DIR, tmp_path / "manifests")
    shutil.copytree(MANIFESTS_DIR.parent / "embedded-tiny", tmp_path / "embedded-tiny")
    return tmp_path / "manifests"


def test_the_shipped_manifest_loads_and_its_files_match_their_pins() -> None:
    manifest = manifest_load("embedded-tiny")
    assert manifest.pipeline_class == "StableDiffusionPipeline"
    assert manifest.defaults.width % manifest.vae_scale_factor == 0
    assert "unet/diffusion_pytorch_model.safetensors" in manifest.files
    assert len(manifest.manifest_hash) == 64
    manifest_verify(manifest)


def test_an_unknown_model_is_refused_listing_the_known_ones() -> None:
    with pytest.raises(ModelNotFoundError) as err:
        manifest_load("sdxl-mega")
    assert "sdxl-mega" in str(err.value) and "embedded-tiny" in str(err.value)


def test_a_manifest_missing_a_field_is_refused_naming_file_and_field(model_copy: Path) -> None:
    path = model_copy / "embedded-tiny.yaml"
    data = yaml.safe_load(path.read_text())
    del data["pipeline_class"]
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ManifestError) as err:
        manifest_load("embedded-tiny", manifests_dir=model_copy)
    assert "embedded-tiny.yaml" in str(err.value) and "pipeline_class" in str(err.value)


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
    assert "vae/diffusion_pytorch_model.safetensors" in str(err.value)


def test_a_missing_file_is_refused(model_copy: Path) -> None:
    (model_copy.parent / "embedded-tiny" / "tokenizer" / "tokenizer.json").unlink()
    with pytest.raises(ModelIntegrityError) as err:
        manifest_verify(manifest_load("embedded-tiny", manifests_dir=model_copy))
    assert err.value.file == "tokenizer/tokenizer.json" and err.value.actual is None


def test_the_manifest_hash_changes_only_with_the_pins(model_copy: Path) -> None:
    shipped = manifest_load("embedded-tiny")
    copy = manifest_load("embedded-tiny", manifests_dir=model_copy)
    assert copy.manifest_hash == shipped.manifest_hash  # the folder moved, the pins did not
    path = model_copy / "embedded-tiny.yaml"
    data = yaml.safe_load(path.read_text())
    data["files"]["unet/config.json"] = "0" * 64
    path.write_text(yaml.safe_dump(data))
    assert manifest_load("embedded-tiny", manifests_dir=model_copy).manifest_hash != shipped.manifest_hash


def test_a_pipeline_is_loaded_once_per_process_and_generates_per_seed() -> None:
    pipeline_cache_clear()
    manifest = manifest_load("embedded-tiny")
    pipe = cast(Any, pipeline_load(manifest))  # DiffusionPipeline.__call__ is defined per subclass
    assert id(pipeline_load(manifest)) == id(pipe)  # the same object, not a reload

    def generate(seeds: list[int]) -> torch.Tensor:
        out = pipe(
            prompt=["a red mug"] * len(seeds),
            num_inference_steps=2,
            guidance_scale=1.0,
            generator=[torch.Generator().manual_seed(s) for s in seeds],
            output_type="pt",
        )
        return out.images

    images = generate([1, 2])
    assert images.shape == (2, 3, manifest.defaults.height, manifest.defaults.width)
    assert torch.isfinite(images).all()
    assert not torch.equal(images[0], images[1])
    # The same seed gives the same picture whatever the batch (to float rounding on CPU kernels).
    assert torch.allclose(generate([1])[0], images[0], atol=1e-3)
