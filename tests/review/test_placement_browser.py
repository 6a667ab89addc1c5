"""End-to-end in a real browser: the demo's product-placement campaign (the shipped mug photo
inpainted into three scenes on the embedded model) reaches review, and each asset's page shows the
photo it was drawn from next to Content Credentials that hold."""

from __future__ import annotations

from pathlib import Path

import pytest
from pytest_django.live_server_helper import LiveServer

from pipeline.config import config_from_settings
from pipeline.run import campaign_run
from prompt_library.services import library_load
from review.models import Asset
from tests.factories import make_user
from tests.fixture_types import SettingsWrapper
from tests.review.test_dashboard_browser import browser_available, browser_page, login, shot, wait_until

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, reset_sequences=True)]
__all__ = ["browser_available"]  # the autouse fixture that skips (or fails in CI) without a browser


@pytest.fixture
def placed(greenlight_settings: SettingsWrapper, library_dir: Path) -> list[Asset]:
    library_load()
    summary = campaign_run(campaign="demo-placement", batch_size=3, config=config_from_settings())
    assert (summary.generated, summary.failed) == (3, 0), summary.failures
    return list(Asset.objects.filter(campaign__name="demo-placement").order_by("id"))


def test_each_placed_asset_shows_its_source_photo_and_trusted_credentials(
    live_server: LiveServer, placed: list[Asset]
) -> None:
    make_user(username="rita", is_staff=True)
    sha256 = placed[0].generation_record["source_image"]
    with browser_page() as page:
        login(page, live_server, "rita")
        for asset in placed:
            page.goto(f"{live_server.url}/assets/{asset.pk}/")
            source = page.locator("#source-image")
            assert "inpainting" in source.inner_text() and "from the photo's transparency" in source.inner_text()
            assert source.locator("img").get_attribute("src") == f"/sources/{sha256}"
            wait_until(
                page,
                "() => { const i = document.querySelector('#source-image img'); "
                "return i.complete && i.naturalWidth === 512; }",
            )
            assert "trusted" in page.inner_text("#c2pa-state")
            shot(page, f"placement-{asset.pk}")
        # A source that does not exist is a 404, never a 500.
        for missing in ("0" * 64, "not-a-hash"):
            response = page.goto(f"{live_server.url}/sources/{missing}")
            assert response is not None and response.status == 404
