"""The plain run steps for clips: preflight by model role and output, and one clip per variant
from a video model (a tiny random-weight Wan pipeline, pinned like a downloaded checkpoint)."""

from __future__ import annotations

import random
from dataclasses import replace
from pathlib import Path

import pytest

from models import MANIFESTS_DIR, VIDEO_ROLE, ModelNotFoundError
from models.captioner import alt_text_compose, captioner_load, captioner_pin
from models.catalog_domain import Combo, catalog_draw
from models.pin import manifest_pin
from pipeline.config import config_from_settings
from pipeline.errors import PipelineError
from pipeline.run import batch_finalize, batch_generate, version_preflight
from prompt_library.selectors import campaign_plan_get, prompt_version_get
from prompt_library.services import library_load
from provenance.mp4 import Clip
from tests.factories import clip_campaign_write
from tests.fixture_types import SettingsWrapper
from tests.models import tiny_pipelines

pytestmark = pytest.mark.django_db
WAN_SIDE = 16  # the tiny Wan's smallest drawing size (its size multiple)


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_torch_thread: None) -> None:
    """Every test here runs on one torch thread (tests/conftest.py)."""


@pytest.fixture(scope="module")
def video_models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A models folder holding one video model: the tiny Wan, pinned against the shipped template."""
    root = tmp_path_factory.mktemp("video-models")
    folder = tiny_pipelines.pipeline_save(tiny_pipelines.wan_build(), root / "tiny-wan")
    manifest_pin(MANIFESTS_DIR / "templates" / "wan2.1-t2v-1.3b.yaml", folder, name="tiny-wan", manifests_dir=root)
    return root


@pytest.fixture
def wan_library(greenlight_settings: SettingsWrapper, video_models_dir: Path, tmp_path: Path) -> Path:
    """An empty prompt library on the video models folder (templates are written by each test)."""
    greenlight_settings.GREENLIGHT_MODELS_DIR = video_models_dir
    root = tmp_path / "library"
    (root / "templates").mkdir(parents=True)
    (root / "campaigns").mkdir()
    return root


WAN_PARAMS = {"steps": 2, "guidance": 3.0, "width": WAN_SIDE, "height": WAN_SIDE}
WAN_CLIP = {"width": 256, "height": 256, "format": "mp4", "fps": 8, "seconds": 1}


def test_a_clip_template_on_a_video_model_passes_preflight_and_makes_one_clip_per_variant(
    wan_library: Path,
) -> None:
    clip_campaign_write(wan_library, model="tiny-wan", params=WAN_PARAMS, output=WAN_CLIP, seeds=(1, 2))
    library_load(root=wan_library)
    manifest = version_preflight(prompt_version_get(template="test-clip", number=1), config_from_settings())
    assert manifest.role == VIDEO_ROLE
    variants = campaign_plan_get(name="test-clips").variants[:2]
    clips = [clip for clip in batch_generate(manifest, variants) if isinstance(clip, Clip)]
    assert len(clips) == 2
    for clip in clips:
        # 1 s at 8 fps is 8 frames, shaped to Wan's 4k + 1; drawn at 16 px, returned at the output size.
        assert (len(clip.frames), clip.fps, clip.size) == (9, 8, (256, 256))
    first, second = clips
    assert first.frames[0].tobytes() != second.frames[0].tobytes()  # the seeds differ


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


# --- alt text from a captioning model -----------------------------------------------------------


@pytest.fixture(scope="module")
def captioner_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A models folder holding one captioner: the tiny random image-to-text model, pinned."""
    root = tmp_path_factory.mktemp("captioner-models")
    folder = tiny_pipelines.tiny_captioner_save(root / "tiny-captioner")
    captioner_pin(
        "tiny-captioner", folder, model_class="VisionEncoderDecoderModel", license_name="apache-2.0", manifests_dir=root
    )
    return root


def test_a_captioner_adds_what_it_sees_after_the_templates_alt_text(
    greenlight_settings: SettingsWrapper, library_dir: Path, captioner_dir: Path
) -> None:
    library_load()
    variants = campaign_plan_get(name="demo-catalog").variants[:3]
    images = [
        catalog_draw(Combo("mug", colour, "studio"), rng=random.Random(i)).resize((512, 512))
        for i, colour in enumerate(("red", "blue", "green"))
    ]
    config = replace(config_from_settings(), models_dir=captioner_dir, captioner="tiny-captioner")
    done, failed = batch_finalize(variants, [101, 102, 103], images, config)
    assert failed == []
    captions = captioner_load("tiny-captioner", manifests_dir=captioner_dir).captions(images)
    for file, variant, caption in zip(done, variants, captions, strict=True):
        assert file.alt_text == alt_text_compose(variant.alt_text, caption)
        assert file.alt_text.startswith("Catalog photo: a ")
    # Without a captioner the variant's own alt text stands.
    plain, _ = batch_finalize(variants[:1], [104], images[:1], replace(config, captioner=""))
    assert plain[0].alt_text == ""


def test_an_unknown_captioner_is_refused_before_any_generation(
    greenlight_settings: SettingsWrapper, library_dir: Path, captioner_dir: Path
) -> None:
    library_load()
    version = prompt_version_get(template="catalog-scene", number=1)
    config = replace(config_from_settings(), captioner="blip-large")
    with pytest.raises(ModelNotFoundError, match=r"No captioner named 'blip-large' \(known captioners: none\)"):
        version_preflight(version, config)
