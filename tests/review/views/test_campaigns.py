"""The Campaigns page: a schedule written in a campaign file is shown with its next run, runs are
started, paused, resumed and cancelled through the page (operators only), and a run's progress
is read as JSON."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from django.test import Client
from django.urls import reverse

from prompt_library.errors import PromptLibraryError
from prompt_library.models import Campaign
from prompt_library.services import library_load
from review.models import AuditEvent, Run
from review.views.campaigns import schedule_next
from tests.factories import make_user
from tests.fixture_types import SettingsWrapper

pytestmark = pytest.mark.django_db

SUBMITTED: list[int] = []


def submit_record(*, run_id: int, priority: int) -> str:
    SUBMITTED.append(run_id)
    return "recorded"


@pytest.fixture
def scheduled(greenlight_settings: SettingsWrapper, library_dir: Path) -> Path:
    """The shipped library with demo-spring scheduled for Mondays 06:00 in Berlin, at priority 2,
    and demo-catalog scheduled but inactive."""
    greenlight_settings.GREENLIGHT_CAMPAIGN_RUN_SUBMIT = f"{__name__}.submit_record"
    SUBMITTED.clear()
    spring = library_dir / "campaigns" / "demo-spring.yaml"
    spring.write_text(spring.read_text() + 'schedule: {cron: "0 6 * * 1", timezone: Europe/Berlin}\npriority: 2\n')
    catalog = library_dir / "campaigns" / "demo-catalog.yaml"
    catalog.write_text(catalog.read_text() + 'schedule:\n  cron: "30 7 * * *"\nactive: false\n')
    library_load()
    return library_dir


def test_a_schedule_from_the_campaign_file_is_on_the_campaigns_page_with_its_next_run(
    scheduled: Path, client: Client
) -> None:
    spring = Campaign.objects.get(name="demo-spring")
    assert (spring.schedule_cron, spring.schedule_timezone, spring.schedule_active, spring.priority) == (
        "0 6 * * 1",
        "Europe/Berlin",
        True,
        2,
    )
    # Next Monday 06:00 Berlin time (CET in January: 05:00 UTC).
    after = datetime(2027, 1, 6, 12, 0, tzinfo=UTC)  # a Wednesday
    assert schedule_next(spring, after) == datetime(2027, 1, 11, 5, 0, tzinfo=UTC)
    catalog = Campaign.objects.get(name="demo-catalog")
    assert (catalog.schedule_cron, catalog.schedule_timezone, catalog.schedule_active) == ("30 7 * * *", "UTC", False)
    assert schedule_next(catalog) is None  # inactive: no next run

    client.force_login(make_user(("operator",)))
    page = client.get(reverse("review:campaigns")).content.decode()
    assert "<code>0 6 * * 1</code> Europe/Berlin" in page
    assert '<code>30 7 * * *</code> UTC <span class="badge">paused</span>' in page
    nxt = schedule_next(spring)
    assert nxt is not None and nxt.strftime("%Y-%m-%d %H:%M") in page
    assert 'name="run-now"' in page and "catalog-hero v1" in page


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ('schedule: {cron: "0 6 * *", timezone: UTC}', "schedule.cron"),
        ('schedule: {cron: "0 6 * * funday"}', "schedule.cron"),
        ('schedule: {cron: "0 6 * * 1", timezone: Mars/Olympus}', "schedule.timezone"),
        ('schedule: {cron: "0 6 * * 1", when: now}', "schedule.when"),
        ("active: maybe", "active"),
        ("priority: 11", "priority"),
    ],
)
def test_a_bad_schedule_or_priority_is_refused_naming_the_field(
    greenlight_settings: SettingsWrapper, library_dir: Path, text: str, field: str
) -> None:
    spring = library_dir / "campaigns" / "demo-spring.yaml"
    spring.write_text(spring.read_text() + text + "\n")
    with pytest.raises(PromptLibraryError, match=f"'{field}'"):
        library_load()
    assert not Campaign.objects.exists()


def test_run_now_pause_resume_and_cancel_through_the_page(scheduled: Path, client: Client) -> None:
    operator = make_user(("operator",))
    client.force_login(operator)
    response = client.post(reverse("review:campaign_run", args=["demo-spring"]))
    assert response.status_code == 302
    run = Run.objects.get()
    assert (run.state, run.total, run.priority, SUBMITTED) == ("queued", 12, 2, [run.pk])
    page = client.get(reverse("review:campaigns")).content.decode()
    assert f'data-run="{run.pk}"' in page and 'name="pause"' in page
    for action, state in (("pause", "paused"), ("resume", "queued"), ("cancel", "cancelled")):
        assert client.post(reverse("review:run_action", args=[run.pk, action])).status_code == 302
        run.refresh_from_db()
        assert run.state == state
    progress = client.get(reverse("review:run_progress", args=[run.pk])).json()
    assert (progress["state"], progress["cancelled"], progress["left"], progress["percent"]) == (
        "cancelled",
        12,
        0,
        100,
    )
    runs = AuditEvent.objects.filter(asset=None, actor=operator, action__startswith="run_")
    assert list(runs.order_by("id").values_list("action", flat=True)) == [
        "run_started",
        "run_paused",
        "run_resumed",
        "run_cancelled",
    ]


def test_a_reviewer_sees_the_page_but_cannot_start_or_stop_runs(scheduled: Path, client: Client) -> None:
    client.force_login(make_user(("reviewer",)))
    page = client.get(reverse("review:campaigns")).content.decode()
    assert "demo-spring" in page and 'name="run-now"' not in page
    assert client.post(reverse("review:campaign_run", args=["demo-spring"])).status_code == 403
    assert not Run.objects.exists()


def test_unknown_runs_campaigns_and_actions_are_404(scheduled: Path, client: Client) -> None:
    client.force_login(make_user(("operator",)))
    assert client.get(reverse("review:run_progress", args=[999])).status_code == 404
    assert client.post(reverse("review:campaign_run", args=["no-such"])).status_code == 404
    assert client.post(reverse("review:run_action", args=[999, "pause"])).status_code == 404
    assert client.post("/runs/1/explode").status_code == 404
    assert client.get(reverse("review:campaign_run", args=["demo-spring"])).status_code == 405


def test_the_health_endpoint_answers_without_a_login_and_counts_live_workers(client: Client) -> None:
    from datetime import timedelta

    from django.utils import timezone

    from review.models import WorkerHeartbeat

    WorkerHeartbeat.objects.create(name="w1", seen_at=timezone.now())
    WorkerHeartbeat.objects.create(name="w2", seen_at=timezone.now() - timedelta(minutes=5))
    response = client.get(reverse("review:healthz"))
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": True, "workers_alive": 1}
