"""Image-to-video from a template: ``mode: image-to-video`` animates the template's source photo
with a video family that has it (a tiny random LTX-Video, whose ``LTXImageToVideoPipeline`` is
built from the loaded components), end to end: registered, generated as an MP4, watermarked,
signed with the photo credited as an ingredient, in review, the photo shown on the asset page."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from django.test import Client
from PIL import Image

from models import MANIFESTS_DIR, manifest_load
from models.loading import pipeline_load
from models.pin import manifest_pin
from pipeline.config import config_from_settings
from pipeline.errors import GenerationInputError
from pipeline.run import campaign_run
from pipeline.video import variant_video_request, video_make
from prompt_library.errors import LibraryFileError
from prompt_library.selectors import campaign_plan_get
from prompt_library.services import library_load
from provenance.credentials import c2pa_read, reader_context
from provenance.mp4 import mp4_clip, mp4_watermark_frames
from provenance.watermark import watermark_read_frames
from provenance.watermark_keys import WatermarkKey
from review.models import Asset
from review.states import AssetState
from tests.factories import library_empty, make_user
from tests.fixture_types import SettingsWrapper
from tests.models import tiny_pipelines

PHOTO = "sources/red-mug-cutout.png"
TEMPLATE = """name: catalog-turntable
description: The product photo, brought to life.
prompt: "a {colour} mug turning slowly"
alt_text: "Clip: the {colour} mug from the catalog photo, moving"
variables: [colour]
mode: image-to-video
source_image: SOURCE
model: MODEL
# 64 px, upscaled 4x: the tiny model's frames drawn at 32 px and upscaled 8x are too flat to carry the mark
params: {steps: 2, guidance: 3.0, width: 64, height: 64}
output: {width: 256, height: 256, format: mp4, fps: 8, seconds: 1}
"""
CAMPAIGN = """name: turntable
template: catalog-turntable
template_version: 1
variables: {colour: [red]}
seeds: [3]
"""


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_torch_thread: None) -> None:
    """Every test here runs on one torch thread (tests/conftest.py)."""


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random LTX-Video (image-to-video) and a tiny Wan (text-to-video only), pinned, and
    the shipped embedded image model (keyframe clips from text only)."""
    root = tmp_path_factory.mktemp("i2v-models")
    embedded = (MANIFESTS_DIR / "embedded.yaml").read_text()
    (root / "embedded.yaml").write_text(
        embedded.replace("folder: ../embedded", f"folder: {MANIFESTS_DIR.parent / 'embedded'}")
    )
    for name, build, template in (
        ("tiny-ltx", tiny_pipelines.ltx_build, "ltx-video"),
        ("tiny-wan", tiny_pipelines.wan_build, "wan2.1-t2v-1.3b"),
    ):
        folder = tiny_pipelines.pipeline_save(build(), root / name)
        manifest_pin(MANIFESTS_DIR / "templates" / f"{template}.yaml", folder, name=name, manifests_dir=root)
    return root


@pytest.fixture
def turntable_library(greenlight_settings: SettingsWrapper, models_dir: Path, library_dir: Path) -> Path:
    greenlight_settings.GREENLIGHT_MODELS_DIR = models_dir
    library_empty(library_dir)
    _template(library_dir, model="tiny-ltx")
    (library_dir / "campaigns" / "turntable.yaml").write_text(CAMPAIGN)
    return library_dir


def _template(library: Path, *, model: str, source: str = PHOTO, version: int = 1) -> None:
    folder = library / "templates" / "catalog-turntable"
    folder.mkdir(exist_ok=True)
    (folder / f"v{version}.yaml").write_text(TEMPLATE.replace("SOURCE", source).replace("MODEL", model))


@pytest.mark.django_db
def test_an_image_to_video_template_animates_its_photo_into_a_signed_clip_in_review(
    turntable_library: Path, models_dir: Path, mark_key: WatermarkKey
) -> None:
    sha256 = hashlib.sha256((turntable_library / PHOTO).read_bytes()).hexdigest()
    library_load()
    variant = campaign_plan_get(name="turntable").variants[0]
    assert (variant.mode, variant.source_image, variant.strength) == ("image-to-video", sha256, None)
    config = config_from_settings()
    summary = campaign_run(campaign="turntable", batch_size=1, config=config)
    assert (summary.generated, summary.failed) == (1, 0), summary.failures

    asset = Asset.objects.get()
    assert asset.state == AssetState.IN_REVIEW
    record = asset.generation_record
    assert (record["mode"], record["source_image"]) == ("image-to-video", sha256) and "strength" not in record
    assert (record["frames"], record["fps"]) == (9, 8)  # 1 s at 8 fps, shaped to LTX's 8k + 1
    data = (config.storage_root / asset.file_path).read_bytes()
    clip = mp4_clip(data)
    assert (len(clip.frames), clip.fps, clip.size) == (9, 8, (256, 256))
    # Watermarked with the asset's mark, as verify reads a clip ...
    assert watermark_read_frames(mp4_watermark_frames(data), key=mark_key.secret).serial == asset.mark_id
    # ... and signed, crediting the photo it animates.
    with reader_context(config.signing) as context:
        report = c2pa_read(data, mime="video/mp4", context=context)
    assert report.state == "trusted", report.validation_codes
    ingredients = (report.manifest or {}).get("ingredients", [])
    assert [(i.get("title"), i.get("relationship")) for i in ingredients] == [("red-mug-cutout.png", "inputTo")]
    # The asset page shows the source photo.
    client = Client()
    client.force_login(make_user(username="rita", roles=("reviewer",)))
    page = client.get(f"/assets/{asset.pk}/").content.decode()
    assert 'id="source-image"' in page and f"/sources/{sha256}" in page


@pytest.mark.django_db
def test_the_photo_decides_the_clip_and_enters_the_key(turntable_library: Path, models_dir: Path) -> None:
    library_load()
    red = campaign_plan_get(name="turntable").variants[0]
    Image.new("RGB", (320, 240), (20, 40, 220)).save(turntable_library / "sources" / "blue.png")
    _template(turntable_library, model="tiny-ltx", source="sources/blue.png", version=2)
    campaign = turntable_library / "campaigns" / "turntable.yaml"
    campaign.write_text(CAMPAIGN.replace("template_version: 1", "template_version: 2"))
    library_load()
    blue = campaign_plan_get(name="turntable").variants[0]
    assert blue.key != red.key and blue.source_image != red.source_image
    manifest = manifest_load("tiny-ltx", manifests_dir=models_dir)
    pipe = pipeline_load(manifest, device="cpu")
    red_request = variant_video_request(red, manifest)
    assert isinstance(red_request.init_image, Image.Image)  # the stored photo, on white
    assert red_request.init_image.size == Image.open(turntable_library / PHOTO).size
    from_red = [np.asarray(f, np.float32) for f in video_make(pipe, manifest, red_request)]
    from_blue = [np.asarray(f, np.float32) for f in video_make(pipe, manifest, variant_video_request(blue, manifest))]
    assert np.mean([np.abs(a - b).mean() for a, b in zip(from_red, from_blue, strict=True)]) > 0.5


@pytest.mark.django_db
def test_image_to_video_is_refused_at_load_for_a_family_without_it(turntable_library: Path) -> None:
    _template(turntable_library, model="tiny-wan")
    with pytest.raises(
        LibraryFileError, match=r"'tiny-wan' \(wan\) has no image-to-video \(families with it: ltx-video\)"
    ):
        library_load()
    _template(turntable_library, model="embedded")  # an image model makes keyframe clips from text
    with pytest.raises(LibraryFileError, match=r"'embedded' \(stable-diffusion\) has no image-to-video"):
        library_load()


@pytest.mark.django_db
def test_an_image_to_video_variant_without_its_photo_is_refused_naming_the_field(
    turntable_library: Path, models_dir: Path
) -> None:
    from dataclasses import replace

    library_load()
    variant = replace(campaign_plan_get(name="turntable").variants[0], source_image="")
    with pytest.raises(GenerationInputError, match=r"^source_image = .*: image-to-video needs a source photo"):
        variant_video_request(variant, manifest_load("tiny-ltx", manifests_dir=models_dir))
