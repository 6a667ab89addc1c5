"""End-to-end in a real browser (Debian's chromium, Playwright): a requester submits a brief, the
run completes on the embedded model (the dashboard's own background coordinator), a reviewer
approves two assets and rejects one with a reason, the requester sees the decisions, downloads
the zip, and every file in it verifies trusted.

As in tests/review/test_dashboard_browser.py, the database is read after the browser has closed.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from django.utils import timezone
from pytest_django.live_server_helper import LiveServer

from prompt_library.services import library_load
from review.models import Asset
from review.requests.models import AssetRequest
from review.states import AssetState
from review.verify import file_verify
from tests.factories import make_user
from tests.fixture_types import SettingsWrapper
from tests.review.test_dashboard_browser import CHROMIUM, browser_available, shot, wait_until

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

__all__ = ["browser_available"]  # its autouse fixture skips (or, in CI, fails) without a browser
pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, reset_sequences=True)]
GENERATION_TIMEOUT = 240.0  # seconds: Prefect's local server starts, then the embedded model draws


@contextmanager
def browser() -> Iterator[Browser]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        launched = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            yield launched
        finally:
            launched.close()


def signed_in(chromium: Browser, live_server: LiveServer, username: str, path: str) -> Page:
    page = chromium.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True).new_page()
    page.set_default_timeout(20_000)
    page.goto(f"{live_server.url}/login/?next={path}")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", "pw-for-tests")
    page.click("button[type=submit]")
    page.wait_for_url(f"**{path}")
    return page


def test_a_requester_asks_watches_and_takes_the_approved_files_away(
    live_server: LiveServer, greenlight_settings: SettingsWrapper, library_dir: Path, tmp_path: Path
) -> None:
    greenlight_settings.GREENLIGHT_ORCHESTRATOR = "thread"
    library_load()
    make_user(username="maria", roles=("requester",), email="maria@example.com")
    make_user(username="vera", roles=("reviewer",), email="vera@example.com")
    deadline = timezone.now() + timedelta(days=2)
    with browser() as chromium:
        # 1. The requester fills a brief; the form counts the variants before it is sent.
        page = signed_in(chromium, live_server, "maria", "/requests/new?template=catalog-scene")
        page.fill("textarea[name=var_colour]", "red")
        page.fill("textarea[name=var_product]", "mug")
        page.fill("textarea[name=var_scene]", "on a wooden table")
        page.fill("input[name=variants_per_combination]", "3")
        page.fill("input[name=deadline]", deadline.strftime("%Y-%m-%dT%H:%M"))
        page.fill("input[name=title]", "Red mugs for the spring mailing")
        page.fill("textarea[name=notes]", "The mug must be clearly red; reject muddy colours.")
        page.uncheck("input[name=renditions][value=thumb]")
        assert page.inner_text("#variant-total") == "3"
        page.fill("textarea[name=var_colour]", "red\nblue")
        assert page.inner_text("#variant-total") == "6"  # counted live, before submitting
        page.fill("textarea[name=var_colour]", "red")
        shot(page, "request-new")
        page.click("#submit-brief")
        page.wait_for_url("**/requests/*/")
        request_url = page.url
        assert "Request" in page.inner_text(".message")
        assert page.inner_text("[data-count=total]") == "3"
        shot(page, "request-progress")
        # 2. The run completes in the background; the page follows it without a reload.
        wait_until(
            page,
            "() => document.querySelector('[data-count=in_review]').textContent === '3'"
            " && Array.from(document.querySelectorAll('#assets img')).length === 3"
            " && Array.from(document.querySelectorAll('#assets img')).every(i => i.complete && i.naturalWidth > 0)",
            timeout=GENERATION_TIMEOUT,
        )
        assert page.evaluate("() => Number(document.getElementById('request').dataset.polled)") >= 2
        serials = [int(s) for s in page.eval_on_selector_all("#assets li", "els => els.map(e => e.dataset.serial)")]
        assert len(serials) == 3

        # 3. A reviewer sees the notes and deadline, approves two and rejects one with a reason.
        review = signed_in(chromium, live_server, "vera", "/")
        assert "due" in review.inner_text(".request-tag")
        for serial in serials[:2]:
            review.goto(f"{live_server.url}/assets/{serial}/")
            assert "reject muddy colours" in review.inner_text("#request-brief")
            review.click("#approve")
            review.wait_for_selector(".message")
        review.goto(f"{live_server.url}/assets/{serials[2]}/")
        review.select_option("select[name=reason]", "off_brand")
        review.fill("form:has(#reject) textarea[name=comment]", "colour reads brown, not red")
        review.click("#reject")
        review.wait_for_selector(".message")

        # 4. The requester sees the decisions (no reload) and downloads the approved files.
        wait_until(page, "() => document.querySelector('[data-count=approved]').textContent === '2'", timeout=30)
        wait_until(page, "() => document.querySelector('[data-count=rejected]').textContent === '1'", timeout=30)
        rejected = page.inner_text(f"#assets li[data-serial='{serials[2]}'] .decisions")
        assert "vera rejected: Off-brand" in rejected and "colour reads brown, not red" in rejected
        page.goto(request_url)  # the delivered request as it is shown on arrival
        shot(page, "request-delivered")
        with page.expect_download() as download_info:
            page.click("#download")
        saved = tmp_path / "approved.zip"
        download_info.value.save_as(saved)

    archive = zipfile.ZipFile(io.BytesIO(saved.read_bytes()))
    files = sorted(n for n in archive.namelist() if n not in ("manifest.csv", "README.txt"))
    assert files == sorted(f"{s:08d}-web.jpg" for s in serials[:2])
    for name in files:
        report = file_verify(data=archive.read(name), filename=name)
        assert report.c2pa.state == "trusted", report.verdict
        assert report.asset is not None and report.asset.serial == int(name[:8])
    made = AssetRequest.objects.get()
    states = sorted(Asset.objects.filter(campaign=made.campaign).values_list("state", flat=True))
    assert states == [AssetState.APPROVED, AssetState.APPROVED, AssetState.REJECTED]
    assert made.deadline is not None and abs((made.deadline - deadline).total_seconds()) < 60
