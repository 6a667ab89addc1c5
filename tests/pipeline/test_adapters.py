"""Brand adapters: a tiny random LoRA for the embedded model, pinned by its manifest, named in a
template with a scale. It changes the image; its hash is in the key; new weights make new assets."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml

from models import MANIFESTS_DIR, ModelIntegrityError, manifest_load
from models.adapters import adapter_manifest_load, adapter_pin
from models.errors import ManifestError
from models.loading import adapters_apply, pipeline_load
from pipeline.errors import GenerationError
from pipeline.generate import images_generate
from prompt_library.errors import LibraryFileError
from prompt_library.selectors import campaign_plan_get
from prompt_library.services import library_load
from tests.fixture_types import SettingsWrapper
from tests.models import tiny_pipelines

TEMPLATE = """name: catalog-brand
description: The catalog scene in the brand's adapter.
prompt: "a {colour} mug {scene}"
variables: [colour, scene]
model: brand-base
params: {steps: 8, guidance: 7.0}
output: {width: 256, height: 256, format: png}
"""
CAMPAIGN = """name: brand
template: catalog-brand
template_version: VERSION
variables: {colour: [red], scene: [on a wooden table]}
seeds: [3]
"""


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A models folder with its own copy of the embedded model (its own pipeline in this process,
    so the adapters loaded here never reach other tests) and a tiny random LoRA, pinned."""
    root = tmp_path_factory.mktemp("adapter-models")
    shutil.copytree(MANIFESTS_DIR.parent / "embedded", root / "brand-base")
    data = yaml.safe_load((MANIFESTS_DIR / "embedded.yaml").read_text())
    data |= {"name": "brand-base", "folder": str(root / "brand-base")}
    (root / "brand-base.yaml").write_text(yaml.safe_dump(data))
    lora = tiny_pipelines.tiny_lora_save(root / "brand-base" / "unet", root / "weights" / "brand-red", seed=1)
    adapter_pin("brand-red", lora, family="stable-diffusion", license_name="proprietary", manifests_dir=root)
    return root


@pytest.fixture
def brand_library(greenlight_settings: SettingsWrapper, models_dir: Path, library_dir: Path) -> Path:
    greenlight_settings.GREENLIGHT_MODELS_DIR = models_dir
    folder = library_dir / "templates" / "catalog-brand"
    folder.mkdir()
    (folder / "v1.yaml").write_text(TEMPLATE)
    (folder / "v2.yaml").write_text(TEMPLATE + "lora:\n  - {name: brand-red, scale: 1.0}\n")
    for name in ("catalog-clip", "catalog-hero", "catalog-scene", "catalog-placement"):
        shutil.rmtree(library_dir / "templates" / name)
    for campaign in (library_dir / "campaigns").iterdir():
        campaign.unlink()
    return library_dir


def _plan(library: Path, version: int) -> Any:
    (library / "campaigns" / "brand.yaml").write_text(CAMPAIGN.replace("VERSION", str(version)))
    library_load()
    return campaign_plan_get(name="brand")


@pytest.mark.django_db
def test_a_lora_changes_the_image_and_its_hash_is_in_the_key_and_record(brand_library: Path, models_dir: Path) -> None:
    manifest = manifest_load("brand-base", manifests_dir=models_dir)
    pipe = pipeline_load(manifest, device="cpu")
    plain = _plan(brand_library, 1).variants[0]
    branded = _plan(brand_library, 2).variants[0]
    adapter = adapter_manifest_load("brand-red", manifests_dir=models_dir)
    assert branded.params.adapters == (("brand-red", adapter.manifest_hash, 1.0),)
    assert branded.generation_record()["adapters"] == [
        {"name": "brand-red", "manifest_hash": adapter.manifest_hash, "scale": 1.0}
    ]
    assert "adapters" not in plain.generation_record() and plain.key != branded.key

    before = images_generate(pipe, manifest, [plain])[0]
    with_lora = images_generate(pipe, manifest, [branded])[0]
    again = images_generate(pipe, manifest, [branded])[0]  # loaded once, drawn the same
    after = images_generate(pipe, manifest, [plain])[0]  # switched off for a template without it
    assert with_lora.tobytes() != before.tobytes()
    assert again.tobytes() == with_lora.tobytes()
    assert after.tobytes() == before.tobytes()
    # Scale 0 is the model alone.
    zero = replace(branded, params=replace(branded.params, adapters=(("brand-red", adapter.manifest_hash, 0.0),)))
    assert images_generate(pipe, manifest, [zero])[0].tobytes() == before.tobytes()


@pytest.mark.django_db
def test_new_weights_change_the_hash_so_old_versions_are_refused_and_new_ones_make_new_keys(
    brand_library: Path, models_dir: Path, tmp_path: Path
) -> None:
    manifest = manifest_load("brand-base", manifests_dir=models_dir)
    old = _plan(brand_library, 2).variants[0]
    retrained = tiny_pipelines.tiny_lora_save(models_dir / "brand-base" / "unet", tmp_path / "brand-red-2", seed=2)
    original = (models_dir / "adapters" / "brand-red.yaml").read_text()
    try:
        adapter_pin(
            "brand-red", retrained, family="stable-diffusion", license_name="proprietary", manifests_dir=models_dir
        )
        with pytest.raises(GenerationError, match=r"adapter 'brand-red' has manifest hash .* was loaded with"):
            images_generate(pipeline_load(manifest, device="cpu"), manifest, [old])
        folder = brand_library / "templates" / "catalog-brand"
        (folder / "v3.yaml").write_text((folder / "v2.yaml").read_text())
        new = _plan(brand_library, 3).variants[0]
        assert new.params.adapters[0][1] != old.params.adapters[0][1] and new.key != old.key
    finally:
        (models_dir / "adapters" / "brand-red.yaml").write_text(original)


def test_a_changed_adapter_file_is_refused_before_it_is_loaded(models_dir: Path, tmp_path: Path) -> None:
    shutil.copytree(models_dir / "weights" / "brand-red", tmp_path / "w")
    adapter = adapter_pin(
        "tampered", tmp_path / "w", family="stable-diffusion", license_name="x", manifests_dir=tmp_path
    )
    (tmp_path / "w" / "pytorch_lora_weights.safetensors").write_bytes(b"changed")
    manifest = manifest_load("brand-base", manifests_dir=models_dir)
    with pytest.raises(ModelIntegrityError):
        adapters_apply(pipeline_load(manifest, device="cpu"), [(adapter, 1.0)])


def test_an_adapter_manifest_with_an_unknown_field_or_family_is_refused(models_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "adapters").mkdir()
    good = yaml.safe_load((models_dir / "adapters" / "brand-red.yaml").read_text())
    for change, field in (({"rank": 4}, "rank"), ({"family": "wan"}, "family")):
        (tmp_path / "adapters" / "bad.yaml").write_text(yaml.safe_dump(good | {"name": "bad"} | change))
        with pytest.raises(ManifestError, match=f"field '{field}'"):
            adapter_manifest_load("bad", manifests_dir=tmp_path)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("lora", "message"),
    [
        ("  - {name: nobody, scale: 1.0}", r"field 'lora\[0\].name' is 'nobody': No adapter named 'nobody'"),
        ("  - {name: brand-red, scale: 9}", r"field 'lora\[0\].scale' must be a number from 0 to 4"),
        ("  - {name: brand-red, weight: 1}", r"unknown key 'lora\[0\].weight'"),
    ],
)
def test_a_bad_lora_entry_is_refused_at_load(brand_library: Path, lora: str, message: str) -> None:
    (brand_library / "templates" / "catalog-brand" / "v2.yaml").write_text(TEMPLATE + "lora:\n" + lora + "\n")
    with pytest.raises(LibraryFileError, match=message):
        library_load()
