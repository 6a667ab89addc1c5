"""End-to-end: a reviewer in a real browser (Debian's chromium driven by Playwright).

While Playwright's sync API runs, its event loop runs in this thread, and Django would give ORM
calls made meanwhile a connection of their own; so the test reads the page while the browser is
open and checks the database after it has closed.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from pytest_django.live_server_helper import LiveServer

from review.models import Asset
from review.states import AssetState
from tests.factories import make_user

if TYPE_CHECKING:
    from playwright.sync_api import Page

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SCREENSHOTS = os.environ.get("GREENLIGHT_SCREENSHOTS")
pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, reset_sequences=True)]


def browser_missing() -> str | None:
    """Why these tests cannot drive a browser here, or None when they can."""
    if importlib.util.find_spec("playwright") is None:
        return "playwright is not installed (make install installs the dev dependencies)"
    if not Path(CHROMIUM).exists():
        return f"Debian's chromium is not installed at {CHROMIUM} (make chromium installs it)"
    return None


@pytest.fixture(autouse=True)
def browser_available() -> None:
    """In CI (the CI variable set) a missing browser fails every test here; elsewhere it skips them."""
    missing = browser_missing()
    if missing is None:
        return
    if os.environ.get("CI"):
        pytest.fail(f"CI runs the browser tests, but {missing}", pytrace=False)
    pytest.skip(missing)


@contextmanager
def browser_page() -> Iterator[Page]:
    from playwright.sync_api import sync_playwright  # imported here: without it the tests skip or fail above

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        page = browser.new_context(viewport={"width": 1280, "height": 860}).new_page()
        page.set_default_timeout(15_000)
        try:
            yield page
        finally:
            browser.close()


def wait_until(page: Page, predicate: str, arg: object = None, *, timeout: float = 15.0) -> None:
    """Poll a JavaScript predicate (an arrow function) until it holds. Playwright's own
    `wait_for_function` compiles its predicate with `new Function`, which the dashboard's
    Content-Security-Policy (no 'unsafe-eval') refuses; `evaluate` is not affected."""
    deadline = time.monotonic() + timeout
    while not page.evaluate(predicate, arg):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {predicate}")
        page.wait_for_timeout(50)


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
    page.wait_for_load_state("domcontentloaded")  # the deferred keys.js has run: shortcuts answer


@pytest.fixture
def reviewable_assets(catalog_assets: list[Asset]) -> list[Asset]:
    """The browser tests take the README's screenshots: products of the demo's model, not the
    stand-in's colour fields."""
    return catalog_assets


def test_reviewer_logs_in_approves_rejects_and_publishes(
    live_server: LiveServer, reviewable_assets: list[Asset]
) -> None:
    make_user(username="rita", is_staff=True)
    first, second = reviewable_assets[:2]
    with browser_page() as page:
        login(page, live_server, "rita")
        assert page.locator(".tile").count() == len(reviewable_assets)
        # Every thumbnail actually loaded (naturalWidth is 0 for a broken image).
        wait_until(
            page,
            "() => Array.from(document.querySelectorAll('.tile img')).every(i => i.complete && i.naturalWidth > 0)",
        )
        shot(page, "queue")

        page.click("#claim-next")  # claims the oldest asset in review and opens it
        page.wait_for_url(f"**/assets/{first.pk}/")
        assert "Claimed by rita" in page.inner_text("#claim")
        assert "trusted" in page.inner_text("#c2pa-state")
        assert f"mark id {first.mark_id} ✓" in page.inner_text("#watermark")
        shot(page, "asset")

        page.click("#approve")
        page.wait_for_url(f"**/assets/{second.pk}/")  # on to the next asset in review
        assert f"Approved asset {first.pk}." in page.inner_text(".message")

        page.select_option("select[name=reason]", "visual_artifact")
        page.fill("form:has(#reject) textarea[name=comment]", "smudged label")
        page.click("#reject")
        page.wait_for_selector(".message")
        assert f"Rejected asset {second.pk}." in page.inner_text(".message")

        page.goto(f"{live_server.url}/assets/{first.pk}/")
        assert page.inner_text("#state") == "Approved"
        page.click("#publish")
        page.wait_for_selector(".message")
        assert f"Published asset {first.pk}" in page.inner_text(".message")
        assert page.inner_text("#state") == "Published"
        shot(page, "published")

        page.click("text=Audit log")
        page.wait_for_selector("table.audit")
        assert "published" in page.inner_text("table.audit")
        shot(page, "audit")

    assert Asset.objects.get(pk=first.pk).state == AssetState.PUBLISHED
    assert Asset.objects.get(pk=first.pk).publications.count() == 2
    rejected = Asset.objects.get(pk=second.pk)
    assert rejected.state == AssetState.REJECTED
    assert rejected.decisions.get().comment == "smudged label"


def test_reviewer_works_with_the_keyboard_and_in_bulk(live_server: LiveServer, reviewable_assets: list[Asset]) -> None:
    make_user(username="kim", roles=("reviewer",))
    a1, a2, a3, a4 = reviewable_assets
    with browser_page() as page:
        login(page, live_server, "kim")
        page.keyboard.press("?")
        assert page.locator("#shortcuts").is_visible()
        shot(page, "shortcuts")
        page.keyboard.press("Escape")
        # j moves, x selects: the two oldest, approved together.
        for key in ("j", "x", "j", "x"):
            page.keyboard.press(key)
        assert page.inner_text("#selected-count") == "2 selected"
        shot(page, "bulk")
        page.click("#bulk-approve")
        page.wait_for_selector(".message")
        assert f"Approved 2 asset(s): {a1.pk}, {a2.pk}." in page.inner_text("main")
        # n claims the next asset; a approves it and claims the one after.
        page.keyboard.press("n")
        page.wait_for_url(f"**/assets/{a3.pk}/")
        page.keyboard.press("a")
        page.wait_for_url(f"**/assets/{a4.pk}/")
        # r opens the reason picker; 2 picks "visual artifact" and sends the rejection.
        page.keyboard.press("r")
        assert page.locator("#reasons").is_visible()
        page.keyboard.press("2")
        page.wait_for_selector(".message")
        assert f"Rejected asset {a4.pk}." in page.inner_text(".message")
        # A reviewer has no publish button on an approved asset.
        page.goto(f"{live_server.url}/assets/{a1.pk}/")
        assert page.inner_text("#state") == "Approved"
        assert page.locator("#publish").count() == 0
        # Sending the publish form anyway (with a valid CSRF token) is refused by the server.
        status = page.evaluate(
            """async (url) => {
                const token = document.querySelector("input[name=csrfmiddlewaretoken]").value;
                const body = new URLSearchParams({csrfmiddlewaretoken: token});
                return (await fetch(url, {method: "POST", body, credentials: "same-origin"})).status;
            }""",
            f"{live_server.url}/assets/{a1.pk}/publish",
        )
        assert status == 403

    states = dict(Asset.objects.filter(pk__in=[a.pk for a in reviewable_assets]).values_list("pk", "state"))
    assert states == {a1.pk: "approved", a2.pk: "approved", a3.pk: "approved", a4.pk: "rejected"}
    assert Asset.objects.get(pk=a4.pk).decisions.get().reason == "visual_artifact"


def test_an_expired_lease_returns_the_asset_to_the_next_reviewer(
    live_server: LiveServer, reviewable_assets: list[Asset]
) -> None:
    from datetime import timedelta

    from django.utils import timezone

    from review.services import LEASE, review_task_claim

    first = reviewable_assets[0]
    rita = make_user(username="rita")
    make_user(username="kim", roles=("reviewer",))
    # Rita claimed the oldest asset long ago and walked away: her lease has run out.
    assert review_task_claim(reviewer=rita, now=timezone.now() - LEASE - timedelta(minutes=1)) is not None
    with browser_page() as page:
        login(page, live_server, "kim")
        assert "claimed by rita" not in page.inner_text(".grid")
        page.click("#claim-next")
        page.wait_for_url(f"**/assets/{first.pk}/")
        assert "Claimed by kim" in page.inner_text("#claim")
    claimed = Asset.objects.select_related("claimed_by").get(pk=first.pk)
    assert claimed.claimed_by is not None and claimed.claimed_by.username == "kim"


def test_a_clip_plays_on_its_asset_page(live_server: LiveServer, reviewable_clip: Asset) -> None:
    clip = reviewable_clip
    make_user(username="vic", roles=("reviewer",))
    master_statuses: list[int] = []
    with browser_page() as page:
        page.on(
            "response",
            lambda r: master_statuses.append(r.status) if r.url.endswith(f"/assets/{clip.pk}/master") else None,
        )
        login(page, live_server, "vic")
        assert "video · 1.0 s" in page.inner_text(f'.tile[data-serial="{clip.pk}"]')
        shot(page, "clip-queue")
        # Debian's chromium decodes H.264 (its ffmpeg is built with the proprietary codecs): no
        # other proxy format is needed for the dashboard.
        for codecs in ("avc1.42E01E", "avc1.640015"):  # baseline, and the High profile x264 writes
            can = page.evaluate("t => document.createElement('video').canPlayType(t)", f'video/mp4; codecs="{codecs}"')
            assert can == "probably", codecs

        page.goto(f"{live_server.url}/assets/{clip.pk}/")
        assert "trusted" in page.inner_text("#c2pa-state")
        assert f"mark id {clip.mark_id} ✓" in page.inner_text("#watermark")
        assert page.get_attribute("#player", "aria-label") == clip.alt_text
        page.evaluate("() => document.querySelector('#player').play()")  # muted: no gesture needed
        wait_until(page, "() => document.querySelector('#player').readyState >= 2")
        facts = page.evaluate(
            """() => { const v = document.querySelector('#player');
                return {duration: v.duration, width: v.videoWidth, height: v.videoHeight, error: v.error,
                        time: v.currentTime}; }"""
        )
        assert facts["error"] is None and (facts["width"], facts["height"]) == (256, 256)
        assert facts["duration"] == pytest.approx(1.0, abs=0.05)
        # It plays: the clock moves (forward, or round again: it loops).
        wait_until(
            page,
            "t => { const now = document.querySelector('#player').currentTime; return now > t + 0.2 || now < t; }",
            facts["time"],
        )
        shot(page, "clip")
    # Chromium asked for the clip by byte range and was answered with the range.
    assert 206 in master_statuses, master_statuses
