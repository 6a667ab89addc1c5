"""A clip of the demo, shared as sharing sites share video (its frames halved to 256 px and
encoded again at CRF 28, its Content Credentials gone), still verifies as its asset: its mark read
across its frames, its picture matching the asset's; the same clip never marked gives nothing."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from PIL import Image

from models import manifest_load
from pipeline.batches import batch_finalize, batch_generate
from pipeline.config import config_from_settings
from prompt_library.selectors import campaign_plan_get
from prompt_library.services import library_load
from provenance.mp4 import Clip, mp4_decode, mp4_encode
from review.intake import assets_hand_over, assets_register
from review.models import Asset
from review.verify import file_verify
from tests.fixture_types import SettingsWrapper
from tests.review.helpers import master_bytes

pytestmark = pytest.mark.django_db

SHARED_CRF = 28  # a sharing site's re-encode: well below the master's CRF 18


@dataclass(frozen=True)
class DemoClip:
    asset: Asset
    unmarked: Clip  # the same clip as drawn, before the pipeline marked it


@pytest.fixture
def demo_clip(greenlight_settings: SettingsWrapper, library_dir: Path) -> DemoClip:
    """The demo's first clip (`demo-clips`: catalog-clip v2, 512 px, two seconds at 12 fps) made
    by the pipeline's own steps and handed over for review."""
    library_load()
    variants = campaign_plan_get(name="demo-clips").variants[:1]
    refs = assets_register(variants=variants)
    config = config_from_settings()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a shared CPU: one busy thread beats two contending ones
    try:
        media = batch_generate(manifest_load(variants[0].model_name, manifests_dir=config.models_dir), variants)
    finally:
        torch.set_num_threads(threads)
    (clip,) = media
    assert isinstance(clip, Clip) and clip.size == (512, 512)
    ref = refs[variants[0].key]
    files, failed = batch_finalize(variants, [ref.serial], media, config, mark_ids=[ref.mark_id])
    assert failed == []
    assets_hand_over(files=files)
    return DemoClip(asset=Asset.objects.get(key=variants[0].key), unmarked=clip)


def halved(frame: Image.Image) -> Image.Image:
    return frame.resize((frame.width // 2, frame.height // 2), Image.Resampling.BICUBIC)


def cropped_halved(frame: Image.Image) -> Image.Image:
    """5% cut off each side, then halved: 230 px, under the 256 px the mark is embedded for."""
    cut = frame.width // 20
    small = halved(frame.crop((cut, cut, frame.width - cut, frame.height - cut)))
    return small.crop((0, 0, small.width - small.width % 2, small.height - small.height % 2))


def shared(frames: tuple[Image.Image, ...] | list[Image.Image], edit: Callable[[Image.Image], Image.Image]) -> bytes:
    """Edited frame by frame and encoded again (libx264, CRF 28): the credentials do not survive."""
    return mp4_encode([edit(frame) for frame in frames], 12, crf=SHARED_CRF)


@pytest.mark.parametrize(
    ("edit", "side"), [pytest.param(halved, 256, id="half-size"), pytest.param(cropped_halved, 230, id="cropped")]
)
def test_a_demo_clip_shared_at_half_size_verifies_as_its_asset(
    demo_clip: DemoClip, edit: Callable[[Image.Image], Image.Image], side: int
) -> None:
    asset = demo_clip.asset
    data = shared(mp4_decode(master_bytes(asset)), edit)

    report = file_verify(data=data, filename="shared.mp4")

    assert (report.file.format, report.file.width, report.file.height) == ("mp4", side, side)
    assert report.c2pa.label is None  # no manifest: the watermark and the picture are all there is
    assert report.watermark.found and report.watermark.serial == asset.mark_id
    assert report.outcome == "recovered" and report.matched_by == "watermark"
    assert report.asset is not None and report.asset.serial == asset.pk
    assert report.content_similarity is not None and report.content_similarity >= 0.8


def test_the_same_clip_never_marked_gives_nothing(demo_clip: DemoClip) -> None:
    data = shared(demo_clip.unmarked.frames, halved)

    report = file_verify(data=data, filename="unmarked.mp4")

    assert not report.watermark.found and report.watermark.serial is None
    assert report.outcome == "nothing" and report.asset is None and report.marked_as is None
