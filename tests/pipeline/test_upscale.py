"""Upscaling as a step of the output spec: a pinned diffusers upscaler (a tiny random
``StableDiffusionUpscalePipeline``) enlarges the model's drawing before Lanczos brings it to the
output's size, and the step is signed as ``c2pa.resized`` with the upscaler's name as its method."""

from __future__ import annotations

import io
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from models import manifest_load
from models.adapters import adapter_manifest_load, adapter_pin
from models.errors import ManifestError
from models.loading import pipeline_load
from models.registry import MANIFESTS_DIR
from models.upscaling import upscaler_manifest_load
from pipeline.config import config_from_settings
from pipeline.generate import images_generate
from pipeline.run import campaign_run
from prompt_library.errors import LibraryFileError
from prompt_library.selectors import campaign_plan_get
from prompt_library.services import library_load
from provenance.credentials import c2pa_read, reader_context
from review.models import Asset
from review.states import AssetState
from tests.factories import library_empty
from tests.fixture_types import SettingsWrapper
from tests.pipeline.tiny_guards import tiny_classifier_save, tiny_upscaler_save

TEMPLATE = """name: catalog-large
description: A product shot enlarged by a super-resolution model.
prompt: "a {colour} mug"
variables: [colour]
model: embedded
params: {steps: 4}
output:
  width: 256
  height: 256
  format: png
  upscale: {name: tiny-x2}
"""


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The embedded model, a pinned tiny upscaler and (to be refused as one) a safety classifier."""
    root = tmp_path_factory.mktemp("upscale-models")
    embedded = (MANIFESTS_DIR / "embedded.yaml").read_text()
    (root / "embedded.yaml").write_text(
        embedded.replace("folder: ../embedded", f"folder: {MANIFESTS_DIR.parent / 'embedded'}")
    )
    adapter_pin(
        "tiny-x2",
        tiny_upscaler_save(root / "weights" / "tiny-x2"),
        family="stable-diffusion-upscale",
        license_name="apache-2.0",
        kind="upscaler",
        weight_name="model_index.json",
        manifests_dir=root,
    )
    adapter_pin(
        "tiny-check",
        tiny_classifier_save(root / "weights" / "tiny-check"),
        family="image-classification",
        license_name="apache-2.0",
        kind="safety",
        weight_name="model.safetensors",
        manifests_dir=root,
    )
    return root


@pytest.fixture
def large_library(greenlight_settings: SettingsWrapper, models_dir: Path, library_dir: Path) -> Path:
    greenlight_settings.GREENLIGHT_MODELS_DIR = models_dir
    library_empty(library_dir)
    (library_dir / "templates" / "catalog-large").mkdir()
    (library_dir / "templates" / "catalog-large" / "v1.yaml").write_text(TEMPLATE)
    (library_dir / "campaigns" / "large.yaml").write_text(
        "name: large\ntemplate: catalog-large\ntemplate_version: 1\nvariables: {colour: [red, blue]}\nseeds: [7]\n"
    )
    return library_dir


@pytest.mark.django_db
def test_an_upscaler_template_enlarges_the_drawing_end_to_end(large_library: Path, models_dir: Path) -> None:
    library_load()
    variant = campaign_plan_get(name="large").variants[0]
    pinned = adapter_manifest_load("tiny-x2", manifests_dir=models_dir).manifest_hash
    assert variant.params.upscaler == ("tiny-x2", pinned)
    assert variant.resize()["method"] == "tiny-x2"
    lanczos = replace(variant, params=replace(variant.params, upscaler=()))
    assert lanczos.resize()["method"] == "lanczos" and lanczos.key != variant.key
    manifest = manifest_load("embedded", manifests_dir=models_dir)
    pipe = pipeline_load(manifest, device="cpu")
    upscaled = images_generate(pipe, manifest, [variant])[0]
    plain = images_generate(pipe, manifest, [lanczos])[0]
    assert upscaled.size == plain.size == (256, 256)
    assert np.abs(np.asarray(upscaled, np.int16) - np.asarray(plain, np.int16)).mean() > 1
    assert images_generate(pipe, manifest, [variant])[0].tobytes() == upscaled.tobytes()

    config = config_from_settings()
    summary = campaign_run(campaign="large", batch_size=2, config=config)
    assert (summary.generated, summary.failed) == (2, 0), summary.failures
    with reader_context(config.signing) as context:
        for asset in Asset.objects.order_by("id"):
            assert asset.state == AssetState.IN_REVIEW
            data = (config.storage_root / asset.file_path).read_bytes()
            assert Image.open(io.BytesIO(data)).size == (256, 256)
            report = c2pa_read(data, mime="image/png", context=context)
            assert report.state == "trusted", report.validation_codes
            resized = [
                a for a in (report.assertion("c2pa.actions.v2") or {})["actions"] if a["action"] == "c2pa.resized"
            ]
            assert [a["parameters"]["method"] for a in resized] == ["tiny-x2"]
            assert asset.generation_record["resized"] == {
                "method": "tiny-x2",
                "from_width": 64,
                "from_height": 64,
                "to_width": 256,
                "to_height": 256,
            }


def test_an_upscaler_whose_files_changed_is_refused(models_dir: Path) -> None:
    with pytest.raises(ManifestError, match="the template version was loaded with"):
        upscaler_manifest_load("tiny-x2", manifests_dir=models_dir, pinned="0" * 64)
    with pytest.raises(ManifestError, match="an upscaler is kind 'upscaler'"):
        upscaler_manifest_load("tiny-check", manifests_dir=models_dir)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("upscale: {name: tiny-x2}", "upscale: {name: tiny-x2, factor: 4}"), r"unknown key 'output.upscale.factor'"),
        (("upscale: {name: tiny-x2}", "upscale: tiny-x2"), r"field 'output.upscale' must be a mapping"),
        (("tiny-x2", "nobody"), r"field 'output.upscale.name' is 'nobody'"),
        (
            ("tiny-x2", "tiny-check"),
            r"field 'output.upscale.name' is 'tiny-check', of kind 'safety'; it must name one of kind 'upscaler'",
        ),
    ],
)
def test_a_bad_upscale_step_is_refused_at_load(large_library: Path, change: tuple[str, str], message: str) -> None:
    (large_library / "templates" / "catalog-large" / "v1.yaml").write_text(TEMPLATE.replace(*change))
    with pytest.raises(LibraryFileError, match=message):
        library_load()
