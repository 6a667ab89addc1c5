"""Campaign run services: who may start, pause, resume and cancel a run, which states allow
what, and that every change is in the audit log. Generation itself is covered in
tests/infra/test_coordinator.py; here the run is submitted to a recorder."""

from __future__ import annotations

from pathlib import Path

import pytest

from prompt_library.models import Campaign
from prompt_library.services import library_load
from review.audit import AuditAction
from review.errors import ReviewInputError, RoleRequiredError, RunRefusedError
from review.models import Asset, AuditEvent, Run
from review.selectors import run_list, run_progress
from review.services.runs import campaign_run_start, run_cancel, run_pause, run_resume
from review.states import AssetState
from tests.factories import make_user
from tests.fixture_types import SettingsWrapper

pytestmark = pytest.mark.django_db

SUBMITTED: list[tuple[int, int]] = []


def submit_record(*, run_id: int, priority: int) -> str:
    """GREENLIGHT_CAMPAIGN_RUN_SUBMIT for these tests: remember the run, start nothing."""
    SUBMITTED.append((run_id, priority))
    return "recorded"


@pytest.fixture
def recorded(greenlight_settings: SettingsWrapper, library_dir: Path) -> list[tuple[int, int]]:
    greenlight_settings.GREENLIGHT_CAMPAIGN_RUN_SUBMIT = f"{__name__}.submit_record"
    SUBMITTED.clear()
    library_load()
    return SUBMITTED


def test_an_operator_starts_a_run_that_registers_every_variant_and_is_submitted_once(
    recorded: list[tuple[int, int]],
) -> None:
    operator = make_user(("operator",))
    campaign = Campaign.objects.get(name="demo-spring")
    run = campaign_run_start(campaign=campaign, actor=operator)
    assert (run.state, run.total, run.priority, run.started_by) == (Run.State.QUEUED, 12, 5, operator)
    assert recorded == [(run.pk, 5)]
    assert Asset.objects.filter(run=run, state=AssetState.PENDING).count() == 12
    started = AuditEvent.objects.get(action=AuditAction.RUN_STARTED)
    assert started.detail["run"] == run.pk and started.detail["total"] == 12 and started.actor == operator
    progress = run_progress(run=run)
    assert (progress.done, progress.failed, progress.left, progress.started_by) == (0, 0, 12, operator.username)
    assert list(run_list(campaign="demo-spring")) == [run]
    # A second start while it is open is refused, naming the run.
    with pytest.raises(RunRefusedError, match=f"Run {run.pk} is queued"):
        campaign_run_start(campaign=campaign, actor=operator)


def test_a_reviewer_may_not_start_pause_or_cancel_a_run(recorded: list[tuple[int, int]]) -> None:
    reviewer = make_user(("reviewer",))
    campaign = Campaign.objects.get(name="demo-spring")
    with pytest.raises(RoleRequiredError, match="operator"):
        campaign_run_start(campaign=campaign, actor=reviewer)
    run = campaign_run_start(campaign=campaign, actor=make_user(("admin",), username="boss"))
    for service in (run_pause, run_cancel, run_resume):
        with pytest.raises(RoleRequiredError, match=r"review\.run_campaign"):
            service(run=run, actor=reviewer)


@pytest.mark.parametrize("priority", [-1, 10, "1", True, 2.5])
def test_a_priority_outside_0_to_9_is_refused_naming_field_and_value(
    recorded: list[tuple[int, int]], priority: object
) -> None:
    with pytest.raises(ReviewInputError, match="priority") as caught:
        campaign_run_start(
            campaign=Campaign.objects.get(name="demo-spring"),
            actor=make_user(("operator",)),
            priority=priority,  # type: ignore[arg-type]
        )
    assert caught.value.value == priority
    assert not Run.objects.exists()


def test_pause_resume_and_cancel_move_the_run_and_its_unmade_assets_with_audit_events(
    recorded: list[tuple[int, int]],
) -> None:
    operator = make_user(("operator",))
    run = campaign_run_start(campaign=Campaign.objects.get(name="demo-spring"), actor=operator, priority=3)
    assert run_pause(run=run, actor=operator).state == Run.State.PAUSED
    with pytest.raises(RunRefusedError, match="only a queued or running run can be paused"):
        run_pause(run=run, actor=operator)
    resumed = run_resume(run=run, actor=operator)
    assert resumed.state == Run.State.QUEUED and recorded == [(run.pk, 3), (run.pk, 3)]
    cancelled = run_cancel(run=run, actor=operator)
    assert (cancelled.state, cancelled.cancelled, cancelled.left) == (Run.State.CANCELLED, 12, 0)
    assert cancelled.finished_at is not None
    assert set(Asset.objects.filter(run=run).values_list("state", flat=True)) == {AssetState.CANCELLED}
    assert AuditEvent.objects.filter(action=AuditAction.GENERATION_CANCELLED, to_state="cancelled").count() == 12
    # Resuming a cancelled run puts its cancelled assets back, each with its own event.
    again = run_resume(run=run, actor=operator)
    assert (again.state, again.cancelled, again.left) == (Run.State.QUEUED, 0, 12)
    assert AuditEvent.objects.filter(action=AuditAction.REQUEUED, from_state="cancelled").count() == 12
    actions = list(AuditEvent.objects.filter(asset=None).order_by("id").values_list("action", flat=True))
    assert actions == ["run_started", "run_paused", "run_resumed", "run_cancelled", "run_resumed"]


def test_a_request_with_a_deadline_runs_at_priority_0_and_a_campaign_at_its_own(
    recorded: list[tuple[int, int]],
) -> None:
    from django.utils import timezone

    operator = make_user(("operator",))
    request = Campaign.objects.get(name="demo-catalog")
    request.kind, request.deadline = Campaign.Kind.REQUEST, timezone.now()
    request.save()
    scheduled = Campaign.objects.get(name="demo-spring")
    scheduled.priority = 7
    scheduled.save()
    assert campaign_run_start(campaign=request, actor=operator).priority == 0
    assert campaign_run_start(campaign=scheduled, actor=operator).priority == 7


def test_a_finished_run_cannot_be_paused_resumed_or_cancelled(recorded: list[tuple[int, int]]) -> None:
    operator = make_user(("operator",))
    run = campaign_run_start(campaign=Campaign.objects.get(name="demo-spring"), actor=operator)
    Run.objects.filter(pk=run.pk).update(state=Run.State.SUCCEEDED)
    with pytest.raises(RunRefusedError, match="a finished run cannot be resumed"):
        run_resume(run=run, actor=operator)
    with pytest.raises(RunRefusedError, match="only a queued, running or paused run can be cancelled"):
        run_cancel(run=run, actor=operator)
    with pytest.raises(RunRefusedError, match="only a queued or running run can be paused"):
        run_pause(run=run, actor=operator)
    # A new run of the campaign may start: the finished one is not open.
    assert campaign_run_start(campaign=Campaign.objects.get(name="demo-spring"), actor=operator).total == 12
