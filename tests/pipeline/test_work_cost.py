"""A warm worker's batch records each asset's share of its generation time, as a plain run does."""

from __future__ import annotations

from pathlib import Path

import pytest

from infra.coordinator import coordinate, local_dispatch
from prompt_library.models import Campaign
from prompt_library.services import library_load
from review.models import Asset
from review.services.runs import campaign_run_start
from tests.factories import make_user
from tests.fixture_types import SettingsWrapper

pytestmark = pytest.mark.django_db


def submit_nowhere(*, run_id: int, priority: int) -> str:
    """GREENLIGHT_CAMPAIGN_RUN_SUBMIT here: the test coordinates the run itself."""
    return "coordinated by the test"


def test_batches_made_by_workers_carry_their_generation_seconds(
    greenlight_settings: SettingsWrapper, library_dir: Path
) -> None:
    greenlight_settings.GREENLIGHT_CAMPAIGN_RUN_SUBMIT = f"{__name__}.submit_nowhere"
    library_load()
    run = campaign_run_start(campaign=Campaign.objects.get(name="demo-spring"), actor=make_user(("operator",)))
    coordinate(run_id=run.pk, batch_size=6, dispatch=local_dispatch(), max_in_flight=1)
    assets = list(Asset.objects.filter(run=run).order_by("id"))
    assert len(assets) == 12
    assert all(a.generated_at is not None and (a.generation_seconds or 0) > 0 for a in assets)
    assert len({a.generation_seconds for a in assets}) == 2  # one share per batch of six
