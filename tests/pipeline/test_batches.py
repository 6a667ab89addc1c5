"""One batch: one clip per variant from a video model (a tiny random-weight Wan pipeline, pinned
like a downloaded checkpoint), and alt text extended by a captioning model as files are finalised."""

from __future__ import annotations

import random
from dataclasses import replace
from pathlib import Path

import pytest

from models import VIDEO_ROLE
from models.captioner import alt_text_compose, captioner_load
from models.training.catalog_domain import Combo, catalog_draw
from pipeline.batches import batch_finalize, batch_generate
from pipeline.config import config_from_settings
from pipeline.preflight import version_preflight
from prompt_library.selectors import campaign_plan_get, prompt_version_get
from prompt_library.services import library_load
from provenance.mp4 import Clip
from tests.factories import clip_campaign_write
from tests.fixture_types import SettingsWrapper
from tests.pipeline.tiny_wan import WAN_CLIP, WAN_PARAMS

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_torch_thread: None) -> None:
    """Every test here runs on one torch thread (tests/conftest.py)."""


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
    done, failed = batch_finalize(variants, [101, 102, 103], images, config, mark_ids=[9101, 9102, 9103])
    assert failed == []
    captions = captioner_load("tiny-captioner", manifests_dir=captioner_dir).captions(images)
    for file, variant, caption in zip(done, variants, captions, strict=True):
        assert file.alt_text == alt_text_compose(variant.alt_text, caption)
        assert file.alt_text.startswith("Catalog photo: a ")
    # Without a captioner the variant's own alt text stands.
    plain, _ = batch_finalize(variants[:1], [104], images[:1], replace(config, captioner=""), mark_ids=[9104])
    assert plain[0].alt_text == ""
