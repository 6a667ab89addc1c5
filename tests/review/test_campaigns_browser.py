"""End-to-end: an operator on the Campaigns page in a real browser (Debian's chromium driven by
Playwright) starts a run, watches its progress, pauses it and resumes it to the end. The run is
coordinated in the web process (no Prefect server) and made by the shipped model for real."""

from __future__ import annotations

from pathlib import Path

import pytest
from pytest_django.live_server_helper import LiveServer

from prompt_library.services import library_load
from review.models import Asset, AuditEvent, Run
from review.states import AssetState
from tests.factories import make_user
from tests.fixture_types import SettingsWrapper
from tests.review.test_dashboard_browser import browser_available, browser_page, shot, wait_until

__all__ = ["browser_available"]  # the fixture that skips (or fails, in CI) without a browser
pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, reset_sequences=True)]


def test_operator_runs_a_campaign_watches_progress_pauses_and_resumes_it(
    live_server: LiveServer, greenlight_settings: SettingsWrapper, library_dir: Path
) -> None:
    greenlight_settings.GREENLIGHT_ORCHESTRATOR = "thread"  # the coordinator in the web process
    greenlight_settings.GREENLIGHT_BATCH_SIZE = 2
    spring = library_dir / "campaigns" / "demo-spring.yaml"
    # 30 assets in batches of 2: long enough that the pause lands while the run is still making them.
    spring.write_text(
        spring.read_text().replace("seeds: [1, 2]", "seeds: [1, 2, 3, 4, 5]")
        + 'schedule: {cron: "0 6 * * 1", timezone: Europe/Berlin}\n'
    )
    library_load()
    make_user(username="olga", roles=("operator",))
    with browser_page() as page:
        page.goto(f"{live_server.url}/campaigns/")
        page.fill("input[name=username]", "olga")
        page.fill("input[name=password]", "pw-for-tests")
        page.click("button[type=submit]")
        page.wait_for_selector("#campaigns")
        row = "tr[data-campaign=demo-spring]"
        assert "0 6 * * 1 Europe/Berlin" in page.inner_text(f"{row} .schedule")
        page.click(f"{row} button[name=run-now]")
        page.wait_for_selector(".message")
        assert "Run 1 of demo-spring started: 30 asset(s) to make." in page.inner_text(".message")
        # The page polls the run's progress: wait for a first batch to be handed over.
        wait_until(
            page, "() => Number(document.querySelector('.run[data-run=\"1\"] .done').textContent) >= 2", timeout=180
        )
        assert "images/s" in page.inner_text(".run[data-run='1'] .rate")
        page.click(".run[data-run='1'] button[name=pause]")
        page.wait_for_selector(".message")
        assert "Run 1 is paused." in page.inner_text(".message")
        assert page.get_attribute(".run[data-run='1']", "data-state") == "paused"
        page.wait_for_timeout(3000)  # the batch being made when it paused is handed over
        page.reload()
        shot(page, "campaigns")
        page.click(".run[data-run='1'] button[name=resume]")
        page.wait_for_selector(".message")
        wait_until(
            page, "() => document.querySelector('.run[data-run=\"1\"]').dataset.state === 'succeeded'", timeout=240
        )
        assert page.inner_text(".run[data-run='1'] .left") == "0"
        assert "local-" in page.inner_text("#workers")

    run = Run.objects.get(pk=1)
    assert (run.state, run.done, run.failed, run.left) == ("succeeded", 30, 0, 0)
    assert Asset.objects.filter(run=run, state=AssetState.IN_REVIEW).count() == 30
    actions = list(AuditEvent.objects.filter(asset=None, action__startswith="run_").values_list("action", flat=True))
    assert actions == ["run_started", "run_paused", "run_resumed", "run_finished"]
