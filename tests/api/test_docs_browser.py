"""The API's docs page in a real browser (Debian's chromium): Swagger UI loads from the project's
own static files and renders every operation under the project's Content-Security-Policy, with
no violation reported."""

from __future__ import annotations

import pytest
from pytest_django.live_server_helper import LiveServer

from tests.review.test_dashboard_browser import browser_available, browser_page  # noqa: F401 (fixture)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_docs_page_renders_every_operation_without_a_csp_violation(live_server: LiveServer) -> None:
    problems: list[str] = []
    external: list[str] = []
    with browser_page() as page:
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        page.on("request", lambda r: external.append(r.url) if not r.url.startswith(live_server.url) else None)
        page.goto(f"{live_server.url}/api/v1/docs")
        page.wait_for_selector(".opblock-summary", timeout=30_000)
        operations = page.locator(".opblock-summary").count()
        title = page.locator(".info .title").inner_text()
    assert title.startswith("Greenlight API")
    assert operations >= 30
    assert external == [] or all(u.startswith("data:") for u in external), external
    assert [p for p in problems if "Content Security Policy" in p or "Content-Security-Policy" in p] == []
