"""What a manifest says: its identity hash, its defaults, and the component configs it reads."""

from __future__ import annotations

import pickle
import shutil
from dataclasses import asdict, replace
from pathlib import Path

from models.registry import manifest_load, template_load
from tests.models.conftest import manifest_edit


def test_the_manifest_hash_changes_only_with_the_pins(model_copy: Path) -> None:
    shipped = manifest_load("embedded-tiny")
    copy = manifest_load("embedded-tiny", manifests_dir=model_copy)
    assert copy.manifest_hash == shipped.manifest_hash  # the folder moved, the pins did not
    manifest_edit(model_copy, files={**copy.files, "unet/config.json": "0" * 64})
    assert manifest_load("embedded-tiny", manifests_dir=model_copy).manifest_hash != shipped.manifest_hash


def test_defaults_expose_frames_and_fps_but_stay_four_keywords_for_callers() -> None:
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
