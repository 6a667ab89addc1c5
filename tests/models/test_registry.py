"""The model registry: manifests, sha256 pins and the offline, once-per-process loader."""

from __future__ import annotations

import os
import pickle
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any, cast

import pytest
import torch
import yaml

from models.build_tiny_random import CATALOG_WORDS
from models.errors import ManifestError, ModelError, ModelFolderError, ModelIntegrityError, ModelNotFoundError
from models.registry import (
    MANIFESTS_DIR,
    manifest_load,
    manifest_verify,
    manifests_known,
    pipeline_cache_clear,
    pipeline_load,
    template_load,
)


@pytest.fixture
def model_copy(tmp_path: Path) -> Path:
    """A writable copy of the shipped model and its manifest; returns the manifests folder."""
    shutil.copytree(MANIFESTS_DIR, tmp_path / "manifests")
    shutil.copytree(MANIFESTS_DIR.parent / "embedded-tiny", tmp_path / "embedded-tiny")
    return tmp_path / "manifests"


def _manifest_edit(manifests_dir: Path, **changes: object) -> None:
    """Rewrite the copied manifest with top-level fields replaced (None deletes the field)."""
    path = manifests_dir / "embedded-tiny.yaml"
    data = yaml.safe_load(path.read_text())
    for key, value in changes.items():
        if value is None:
            del data[key]
        else:
            data[key] = value
    path.write_text(yaml.safe_dump(data))


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
    _manifest_edit(model_copy, pipeline_class=None)
    with pytest.raises(ManifestError) as err:
        manifest_load("embedded-tiny", manifests_dir=model_copy)
    assert "embedded-tiny.yaml" in str(err.value) and "pipeline_class" in str(err.value)


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"defaults": {"steps": 4, "guidance": 1.0, "width": 60, "height": 64}}, "defaults.width"),
        ({"defaults": {"steps": 0, "guidance": 1.0, "width": 64, "height": 64}}, "defaults.steps"),
        ({"defaults": {"steps": 4, "width": 64, "height": 64}}, "defaults.guidance"),
        ({"files": {"../outside.json": "0" * 64}}, "../outside.json"),
        ({"files": {"unet/config.json": "not-a-digest"}}, "files.unet/config.json"),
        ({"family": "stable-cascade"}, "family"),
        ({"name": "someone-else"}, "name"),
    ],
)
def test_a_malformed_manifest_is_refused_naming_the_field(
    model_copy: Path, changes: dict[str, object], named: str
) -> None:
    _manifest_edit(model_copy, **changes)
    with pytest.raises(ManifestError) as err:
        manifest_load("embedded-tiny", manifests_dir=model_copy)
    assert named in str(err.value)


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


def test_a_missing_file_is_refused(model_copy: Path) -> None:
    (model_copy.parent / "embedded-tiny" / "tokenizer" / "tokenizer.json").unlink()
    with pytest.raises(ModelIntegrityError) as err:
        manifest_verify(manifest_load("embedded-tiny", manifests_dir=model_copy))
    assert err.value.file == "tokenizer/tokenizer.json" and err.value.actual is None


def test_files_the_manifest_does_not_pin_are_ignored(model_copy: Path) -> None:
    (model_copy.parent / "embedded-tiny" / "unet" / "notes.txt").write_text("not a weight")
    manifest_verify(manifest_load("embedded-tiny", manifests_dir=model_copy))


def test_errors_keep_their_context_across_processes() -> None:
    errors: list[ModelError] = [
        ModelNotFoundError("x", known=["embedded-tiny"]),
        ModelNotFoundError("x", known=["sd-turbo"], kind="template"),
        ModelFolderError(Path("models/x"), "has no model_index.json"),
        ManifestError(Path("m.yaml"), "field 'files' is missing"),
        ModelIntegrityError(name="x", manifest_path=Path("m.yaml"), file="a.bin", expected="0" * 64, actual=None),
    ]
    for error in errors:
        copy = pickle.loads(pickle.dumps(error))
        assert type(copy) is type(error) and str(copy) == str(error) and vars(copy) == vars(error)


def test_the_manifest_hash_changes_only_with_the_pins(model_copy: Path) -> None:
    shipped = manifest_load("embedded-tiny")
    copy = manifest_load("embedded-tiny", manifests_dir=model_copy)
    assert copy.manifest_hash == shipped.manifest_hash  # the folder moved, the pins did not
    _manifest_edit(model_copy, files={**copy.files, "unet/config.json": "0" * 64})
    assert manifest_load("embedded-tiny", manifests_dir=model_copy).manifest_hash != shipped.manifest_hash


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
    _manifest_edit(model_copy, pipeline_class="AutoencoderKL")
    with pytest.raises(ManifestError) as err:
        pipeline_load(manifest_load("embedded-tiny", manifests_dir=model_copy), device="cpu")
    assert "pipeline_class" in str(err.value) and "AutoencoderKL" in str(err.value)


def test_catalog_words_are_single_tokens() -> None:
    tokenizer = cast(Any, pipeline_load(manifest_load("embedded-tiny"), device="cpu")).tokenizer
    split = {word: tokenizer.tokenize(word) for word in CATALOG_WORDS if len(tokenizer.tokenize(word)) != 1}
    assert split == {}
    assert tokenizer.tokenize("a red mug on a wooden table") == [
        f"{word}</w>" for word in ("a", "red", "mug", "on", "a", "wooden", "table")
    ]


def test_the_shipped_model_generates_a_different_image_per_seed_and_the_same_for_a_seed() -> None:
    manifest = manifest_load("embedded-tiny")
    pipe = cast(Any, pipeline_load(manifest, device="cpu"))  # DiffusionPipeline.__call__ is per subclass

    def generate(seeds: list[int]) -> torch.Tensor:
        out = pipe(
            prompt=["a red mug"] * len(seeds),
            num_inference_steps=manifest.defaults.steps,
            guidance_scale=manifest.defaults.guidance,
            generator=[torch.Generator().manual_seed(s) for s in seeds],
            output_type="pt",
        )
        return cast(torch.Tensor, out.images)

    images = generate([1, 2])
    assert images.shape == (2, 3, manifest.defaults.height, manifest.defaults.width)
    assert torch.isfinite(images).all()
    assert images.std() > 0.05  # colour noise, not a flat (or black) frame
    assert (images[0] - images[1]).abs().mean() > 0.05
    # The same seed gives the same picture whatever the batch (to float rounding on CPU kernels).
    assert torch.allclose(generate([2, 1])[1], images[0], atol=1e-3)
    assert torch.allclose(generate([1])[0], images[0], atol=1e-3)


@pytest.mark.parametrize(
    ("changes", "field_name", "value"),
    [
        ({"dtype": "float8"}, "'dtype'", "'float8'"),
        ({"dtpye": "float16"}, "'dtpye'", "not a manifest field"),
        ({"role": "upscaler"}, "'role'", "'upscaler'"),
        ({"options": {"max_sequence_length": 77}}, "options.max_sequence_length", "'stable-diffusion'"),
        ({"memory": {"cpu_offload": "yes"}}, "memory.cpu_offload", "'yes'"),
        ({"memory": {"vae_tiling": "sometimes"}}, "memory.vae_tiling", "'sometimes'"),
        ({"variant": "FP16!"}, "'variant'", "'FP16!'"),
        ({"defaults": {"steps": 4, "guidance": 1.0, "width": 64, "height": 64, "frames": 9}}, "defaults.frames", "9"),
        ({"ranges": {"steps": [8, 12]}}, "defaults.steps", "[8, 12]"),
        ({"pipeline_class": "FluxPipeline"}, "'pipeline_class'", "'FluxPipeline'"),
    ],
)
def test_a_bad_new_field_is_refused_naming_field_and_value(
    model_copy: Path, changes: dict[str, object], field_name: str, value: str
) -> None:
    _manifest_edit(model_copy, **changes)
    with pytest.raises(ManifestError) as err:
        manifest_load("embedded-tiny", manifests_dir=model_copy)
    assert field_name in str(err.value) and value in str(err.value)


def test_an_unpinned_template_is_refused_with_the_pin_command(model_copy: Path) -> None:
    # By name, where only the template exists...
    with pytest.raises(ManifestError) as err:
        manifest_load("sdxl-turbo", manifests_dir=model_copy)
    assert "python -m models.pin sdxl-turbo" in str(err.value)
    # ...copied among the pinned manifests, where it is not listed as a model either...
    shutil.copy(model_copy / "templates" / "flux-schnell.yaml", model_copy / "flux-schnell.yaml")
    assert "flux-schnell" not in manifests_known(manifests_dir=model_copy)
    assert "embedded-tiny" in manifests_known(manifests_dir=model_copy)
    with pytest.raises(ManifestError) as err:
        manifest_load("flux-schnell", manifests_dir=model_copy)
    assert "unpinned template" in str(err.value) and "python -m models.pin" in str(err.value)
    # ...and handed to the loader directly.
    with pytest.raises(ManifestError) as err:
        pipeline_load(template_load("flux-schnell"), device="cpu")
    assert "unpinned template" in str(err.value)
    with pytest.raises(ModelNotFoundError) as not_found:
        manifest_load("flux-mega", manifests_dir=model_copy)
    assert "flux-schnell" not in str(not_found.value)


def _wan_template(tmp_path: Path, **defaults: object) -> Path:
    """A copy of the Wan template with ``defaults`` changed (None deletes the key)."""
    data = yaml.safe_load((MANIFESTS_DIR / "templates" / "wan2.1-t2v-1.3b.yaml").read_text())
    for key, value in defaults.items():
        if value is None:
            del data["defaults"][key]
        else:
            data["defaults"][key] = value
    path = tmp_path / "wan2.1-t2v-1.3b.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"frames": None}, "field 'defaults.frames' is missing; role 'video-generator' needs frames and fps"),
        ({"fps": None}, "field 'defaults.fps' is missing"),
        ({"fps": 0}, "field 'defaults.fps' must be a positive integer, got 0"),
        ({"frames": 80}, "field 'defaults.frames' is 80"),
        ({"width": 840}, "field 'defaults.width' is 840, not a multiple of 16"),
    ],
)
def test_a_video_model_needs_frames_and_fps_that_fit_its_family(
    tmp_path: Path, changes: dict[str, object], named: str
) -> None:
    with pytest.raises(ManifestError) as err:
        template_load(_wan_template(tmp_path, **changes))
    assert named in str(err.value)


def test_defaults_expose_frames_and_fps_but_stay_four_keywords_for_callers() -> None:
    from dataclasses import asdict

    wan = template_load("wan2.1-t2v-1.3b")
    assert (wan.defaults.frames, wan.defaults.fps) == (81, 16)
    assert asdict(wan.defaults) == {"steps": 30, "guidance": 5.0, "width": 832, "height": 480}
    image = manifest_load("embedded-tiny").defaults
    assert (image.frames, image.fps) == (None, None)
    assert pickle.loads(pickle.dumps(wan.defaults)) == wan.defaults


def test_a_manifest_reads_its_component_configs_once_and_looks_again_for_a_missing_one(tmp_path: Path) -> None:
    shipped = manifest_load("embedded")
    folder = tmp_path / "embedded"
    manifest = replace(shipped, folder=folder)
    assert dict(manifest.scheduler_config) == {} and manifest.vae_scale_factor == manifest.family_info.vae_scale
    shutil.copytree(shipped.folder, folder)  # the files arrive: looked for again
    assert manifest.scheduler_config["rescale_betas_zero_snr"] is True
    assert manifest.vae_scale_factor == 4
    (folder / "scheduler" / "scheduler_config.json").write_text("{}")
    (folder / "vae" / "config.json").write_text("{}")
    # pinned files: what was read stays (a changed file is the hash check's to refuse)
    assert manifest.scheduler_config["rescale_betas_zero_snr"] is True
    assert manifest.vae_scale_factor == 4
    assert dict(replace(manifest).scheduler_config) == {}  # another manifest object reads afresh
