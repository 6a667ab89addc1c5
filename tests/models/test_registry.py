"""Finding and reading manifests by name: every refusal names the file, the field and the value."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from models.errors import ManifestError, ModelNotFoundError
from models.registry import MANIFESTS_DIR, manifest_load, manifests_known, template_load
from tests.models.conftest import manifest_edit


def test_an_unknown_model_is_refused_listing_the_known_ones() -> None:
    with pytest.raises(ModelNotFoundError) as err:
        manifest_load("sdxl-mega")
    assert "sdxl-mega" in str(err.value) and "embedded-tiny" in str(err.value)


def test_a_manifest_missing_a_field_is_refused_naming_file_and_field(model_copy: Path) -> None:
    manifest_edit(model_copy, pipeline_class=None)
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
    manifest_edit(model_copy, **changes)
    with pytest.raises(ManifestError) as err:
        manifest_load("embedded-tiny", manifests_dir=model_copy)
    assert named in str(err.value)


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
    manifest_edit(model_copy, **changes)
    with pytest.raises(ManifestError) as err:
        manifest_load("embedded-tiny", manifests_dir=model_copy)
    assert field_name in str(err.value) and value in str(err.value)


def test_an_unpinned_template_is_refused_with_the_pin_command(model_copy: Path) -> None:
    # By name, where only the template exists...
    with pytest.raises(ManifestError) as err:
        manifest_load("sdxl-turbo", manifests_dir=model_copy)
    assert "python -m models.pin sdxl-turbo" in str(err.value)
    # ...and copied among the pinned manifests, where it is not listed as a model either.
    shutil.copy(model_copy / "templates" / "flux-schnell.yaml", model_copy / "flux-schnell.yaml")
    assert "flux-schnell" not in manifests_known(manifests_dir=model_copy)
    assert "embedded-tiny" in manifests_known(manifests_dir=model_copy)
    with pytest.raises(ManifestError) as err:
        manifest_load("flux-schnell", manifests_dir=model_copy)
    assert "unpinned template" in str(err.value) and "python -m models.pin" in str(err.value)
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
