"""Preflight: what a run checks before it generates anything (the model's role against the
output, the video path's limits, prompt weighting, the captioner)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from models import ModelNotFoundError
from pipeline.config import config_from_settings
from pipeline.errors import PipelineError
from pipeline.preflight import version_preflight
from prompt_library.selectors import prompt_version_get
from prompt_library.services import library_load
from tests.factories import clip_campaign_write
from tests.fixture_types import SettingsWrapper
from tests.pipeline.tiny_wan import WAN_CLIP, WAN_PARAMS

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_torch_thread: None) -> None:
    """Every test here runs on one torch thread (tests/conftest.py)."""


def test_an_image_template_on_a_video_model_is_refused_naming_template_version_and_model(
    wan_library: Path,
) -> None:
    output = {"width": 256, "height": 256, "format": "png"}
    clip_campaign_write(wan_library, model="tiny-wan", params=WAN_PARAMS, output=output)
    library_load(root=wan_library)
    with pytest.raises(PipelineError) as err:
        version_preflight(prompt_version_get(template="test-clip", number=1), config_from_settings())
    said = str(err.value)
    assert "template 'test-clip' v1" in said and "model 'tiny-wan'" in said
    assert "role 'video-generator'" in said and "an image output (png) needs a model with role 'generator'" in said


def test_a_clip_template_on_an_image_model_passes_preflight(
    greenlight_settings: SettingsWrapper, library_dir: Path
) -> None:
    library_load()
    manifest = version_preflight(prompt_version_get(template="catalog-clip", number=1), config_from_settings())
    assert (manifest.name, manifest.role) == ("embedded", "generator")


def test_a_clip_template_the_video_path_cannot_make_is_refused_before_any_variant(wan_library: Path) -> None:
    # Prompt weighting on a video model (compel serves image families only): refused at
    # preflight, naming template, model and field.
    clip_campaign_write(
        wan_library,
        template="weighted-clip",
        campaign="weighted-clips",
        model="tiny-wan",
        params=WAN_PARAMS,
        output=WAN_CLIP,
    )
    path = wan_library / "templates" / "weighted-clip" / "v1.yaml"
    path.write_text(path.read_text().replace("a {colour} {product}", "a ({colour}:1.3) {product}"))
    library_load(root=wan_library)
    with pytest.raises(PipelineError) as err:
        version_preflight(prompt_version_get(template="weighted-clip", number=1), config_from_settings())
    assert "template 'weighted-clip' v1, model 'tiny-wan': prompt = " in str(err.value)
    assert "prompt weighting is not supported for the wan family" in str(err.value)


def test_a_weighted_clip_template_on_an_image_model_passes_preflight(
    greenlight_settings: SettingsWrapper, library_dir: Path
) -> None:
    # Keyframe clips are drawn by the image engine's compel path, as stills are.
    clip_campaign_write(library_dir, template="weighted-clip", campaign="weighted-clips")
    path = library_dir / "templates" / "weighted-clip" / "v1.yaml"
    path.write_text(path.read_text().replace("a {colour} {product}", "a ({colour}:1.3) {product}"))
    library_load()
    manifest = version_preflight(prompt_version_get(template="weighted-clip", number=1), config_from_settings())
    assert manifest.name == "embedded"


def test_an_unknown_captioner_is_refused_before_any_generation(
    greenlight_settings: SettingsWrapper, library_dir: Path, captioner_dir: Path
) -> None:
    library_load()
    version = prompt_version_get(template="catalog-scene", number=1)
    config = replace(config_from_settings(), captioner="blip-large")
    with pytest.raises(ModelNotFoundError, match=r"No captioner named 'blip-large' \(known captioners: none\)"):
        version_preflight(version, config)
