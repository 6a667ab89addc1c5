"""End-to-end: a reviewer in a real browser (Debian's chromium driven by Playwright)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page
from pytest_django.live_server_helper import LiveServer

from review.models import Asset
from review.states import AssetState
from tests.factories import make_user

# Playwright's sync API runs an event loop in this thread; the test's own ORM calls are fine.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed (make test installs it)"
    ),
]
SCREENSHOTS = os.environ.get("GREENLIGHT_SCREENSHOTS")


@pytest.fixture
def page(live_server: LiveServer) -> Iterator[Page]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        context = browser.new_context(viewport={"width": 1280, "height": 860})
        page = context.new_page()
        page.set_default_timeout(15_000)
        yield page
        browser.close()


def shot(page: Page, name: str) -> None:
    if SCREENSHOTS:
        Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SCREENSHOTS) / f"{name}.png"), full_page=True)


def login(page: Page, live_server: LiveServer, username: str) -> None:
    page.goto(f"{live_server.url}/")
    assert "/login/" in page.url  # anonymous visitors land on the login page
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", "pw-for-tests")
    page.click("button[type=submit]")
    page.wait_for_selector(".grid")


def test_reviewer_logs_in_approves_rejects_and_publishes(
    page: Page, live_server: LiveServer, reviewable_assets: list[Asset]
) -> None:
    make_user(username="rita", is_staff=True)
    login(page, live_server, "rita")
    tiles = page.locator(".tile")
    assert tiles.count() == len(reviewable_assets)
    # Every thumbnail actually loaded (naturalWidth is 0 for a broken image).
    page.wait_for_function(
        "Array.from(document.querySelectorAll('.tile img')).every(i => i.complete && i.naturalWidth > 0)"
    )
    shot(page, "queue")

    first, second = reviewable_assets[:2]
    page.click(f".tile[data-serial='{first.pk}'] a")
    page.wait_for_selector("#c2pa-state")
    assert "trusted" in page.inner_text("#c2pa-state")
    assert f"serial {first.pk}" in page.inner_text("#watermark")
    shot(page, "asset")

    page.click("#approve")
    page.wait_for_url(f"**/assets/{second.pk}/")
    assert Asset.objects.get(pk=first.pk).state == AssetState.APPROVED

    page.select_option("select[name=reason]", "visual_artifact")
    page.fill("form:has(#reject) textarea[name=comment]", "smudged label")
    page.click("#reject")
    page.wait_for_url("**/assets/*/")
    assert Asset.objects.get(pk=second.pk).state == AssetState.REJECTED

    page.goto(f"{live_server.url}/assets/{first.pk}/")
    page.click("#publish")
    page.wait_for_selector(".message")
    assert "Published asset" in page.inner_text(".message")
    assert page.inner_text("#state") == "Published"
    assert Asset.objects.get(pk=first.pk).publications.count() == 2
    shot(page, "published")
