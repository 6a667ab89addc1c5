from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest
import torch

from models import manifest_load
from pipeline.batches import batch_finalize, batch_generate
from pipeline.config import config_from_settings
from prompt_library.selectors import campaign_plan_get
from prompt_library.services import library_load
from prompt_library.specs import Variant
from review.intake import assets_hand_over, assets_register
from review.models import Asset, Publication
from review.services import asset_approve, asset_publish
from review.states import AssetState
from tests.factories import clip_campaign_write, make_user
from tests.fixture_types import SettingsWrapper


def _into_review(variants: Sequence[Variant]) -> list[Asset]:
    """Register, generate (the shipped model), watermark, sign, store and hand over `variants`
    with the pipeline's own steps (without Prefect, which tests/pipeline covers)."""
    refs = assets_register(variants=variants)
    config = config_from_settings()
    media = batch_generate(manifest_load(variants[0].model_name, manifests_dir=config.models_dir), variants)
    serials, mark_ids = [refs[v.key].serial for v in variants], [refs[v.key].mark_id for v in variants]
    files, failed = batch_finalize(variants, serials, media, config, mark_ids=mark_ids)
    assert failed == []
    assets_hand_over(files=files)
    assets = list(Asset.objects.filter(key__in=[v.key for v in variants]).order_by("id"))
    assert all(a.state == AssetState.IN_REVIEW for a in assets)
    return assets


@pytest.fixture
def reviewable_assets(greenlight_settings: SettingsWrapper, library_dir: Path) -> list[Asset]:
    """Four assets of the demo campaign in review, made by the pipeline's own steps."""
    library_load()
    return _into_review(campaign_plan_get(name="demo-spring").variants[:4])


@pytest.fixture
def catalog_assets(greenlight_settings: SettingsWrapper, library_dir: Path) -> list[Asset]:
    """Four stills of the demo's own campaign in review, drawn by the trained embedded model (a red
    mug, a red lamp, a blue bottle, a yellow lamp): what the README's screenshots show."""
    library_load()
    variants = campaign_plan_get(name="demo-catalog").variants
    return _into_review([variants[i] for i in (0, 10, 18, 32)])


@pytest.fixture
def reviewable_clip(greenlight_settings: SettingsWrapper, library_dir: Path) -> Asset:
    """One clip in review: a short, cheap keyframe clip of the shipped embedded model (MP4 master,
    an mp4 and a jpeg rendition in its template), made by the pipeline's own steps."""
    clip_campaign_write(library_dir)
    library_load()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a shared CPU: one busy thread beats two contending ones
    try:
        (asset,) = _into_review(campaign_plan_get(name="test-clips").variants[:1])
    finally:
        torch.set_num_threads(threads)
    return asset


@pytest.fixture
def published(reviewable_assets: list[Asset], greenlight_settings: SettingsWrapper) -> tuple[Asset, list[Publication]]:
    """The first reviewable asset, approved by vera and published by paul (web JPEG, thumb WebP)."""
    approved = asset_approve(asset=reviewable_assets[0], reviewer=make_user(username="vera", roles=("reviewer",)))
    publications = asset_publish(asset=approved, user=make_user(username="paul", roles=("publisher",)))
    return Asset.objects.get(pk=approved.pk), publications
