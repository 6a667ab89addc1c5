"""`make demo` adds a requester account and one sample request, made before the dashboard starts,
so a newcomer can walk the requester's whole path; running it again keeps both."""

from __future__ import annotations

from io import StringIO
from pathlib import Path

import pytest

from infra.management.commands.demo import DEMO_REQUESTER, Command
from prompt_library.services import library_load
from review.models import Asset
from review.requests.models import AssetRequest
from review.states import AssetState
from tests.fixture_types import SettingsWrapper


@pytest.mark.django_db
def test_the_demo_adds_a_requester_and_a_generated_sample_request(
    greenlight_settings: SettingsWrapper, library_dir: Path, one_torch_thread: None
) -> None:
    library_load()
    out = StringIO()
    command = Command(stdout=out)
    command._sample_request("demo-pw")
    made = AssetRequest.objects.select_related("requester").get()
    assert made.requester.username == DEMO_REQUESTER and made.requester.check_password("demo-pw")
    assert made.requester.has_perm("review.request_asset") and not made.requester.has_perm("review.review_asset")
    states = list(Asset.objects.filter(campaign=made.campaign).values_list("state", flat=True))
    assert states == [AssetState.IN_REVIEW] * 3  # generated before the command returned
    command._sample_request("demo-pw")
    assert AssetRequest.objects.count() == 1 and "Kept user 'marketing'" in out.getvalue()
