"""A run records each asset's share of its batch's generation time, for the dashboard's cost."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.config import config_from_settings
from pipeline.run import campaign_run
from prompt_library.services import library_load
from review.models import Asset
from tests.fixture_types import SettingsWrapper

pytestmark = pytest.mark.django_db


def test_each_asset_carries_its_share_of_its_batch_generation_seconds(
    greenlight_settings: SettingsWrapper, library_dir: Path
) -> None:
    library_load()
    summary = campaign_run(campaign="demo-spring", batch_size=4, config=config_from_settings())
    assert (summary.generated, summary.batches) == (12, 3)
    assets = list(Asset.objects.order_by("id"))
    assert all(a.generated_at is not None and a.generation_seconds and a.generation_seconds > 0 for a in assets)
    # One share per batch of four: the batch's seconds over its assets.
    shares = [a.generation_seconds for a in assets]
    assert [len(set(shares[i : i + 4])) for i in (0, 4, 8)] == [1, 1, 1]
    assert sum(s or 0 for s in shares) < summary.seconds
