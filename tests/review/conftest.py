from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pipeline.config import config_from_settings
from pipeline.finalize import Signing, asset_finalize
from pipeline.signing import reader_context, signer_create
from pipeline.storage import LocalStorage
from prompt_library.selectors import campaign_plan_get
from prompt_library.services import library_load
from review.models import Asset
from review.services import assets_hand_over, assets_register
from review.states import AssetState


def picture(seed: int, size: int = 512) -> Image.Image:
    """A smooth, varied test picture (stands in for a generated image: no model needed here)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size] / size
    channels = [np.sin(x * rng.uniform(2, 9) + y * rng.uniform(1, 7) + rng.uniform(0, 6)) for _ in range(3)]
    return Image.fromarray((np.stack(channels, axis=-1) * 110 + 128).astype(np.uint8))


@pytest.fixture
def reviewable_assets(greenlight_settings, library_dir: Path) -> list[Asset]:  # type: ignore[no-untyped-def]
    """Four assets of the demo campaign in review, with real watermarked, signed files."""
    library_load()
    variants = campaign_plan_get(name="demo-spring").variants[:4]
    refs = assets_register(variants=variants)
    config = config_from_settings()
    storage = LocalStorage(config.storage_root)
    with signer_create(config.signing) as signer:
        signing = Signing(signer=signer, context=reader_context(config.signing))
        files = [
            asset_finalize(v, serial=refs[v.key].serial, image=picture(i), signing=signing, storage=storage)
            for i, v in enumerate(variants)
        ]
    assets_hand_over(files=files)
    assets = list(Asset.objects.filter(key__in=[v.key for v in variants]).order_by("id"))
    assert all(a.state == AssetState.IN_REVIEW for a in assets)
    return assets
