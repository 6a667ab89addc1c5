"""A campaign run's coordinator with batches made in this process (no Prefect server): the
shipped model, real signing, PostgreSQL, files on disk. Runs end, cancel and resume with every
asset made exactly once; a run that comes first overtakes one already running."""

from __future__ import annotations

import itertools
import os
import socket
import threading
import time
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.db import connection

from infra.coordinator import coordinate, local_dispatch, sending_default, tasks_group
from prompt_library.models import Campaign
from prompt_library.services import library_load
from review.audit import AuditAction
from review.intake import RunBatch, run_batch_hand_over
from review.models import Asset, AuditEvent, Run, WorkerHeartbeat
from review.services.runs import campaign_run_start, run_cancel, run_resume
from review.states import AssetState
from tests.factories import make_user
from tests.fixture_types import SettingsWrapper

SUBMITTED: list[int] = []


def submit_record(*, run_id: int, priority: int) -> str:
    """GREENLIGHT_CAMPAIGN_RUN_SUBMIT here: the test coordinates the run itself."""
    SUBMITTED.append(run_id)
    return "recorded"


@pytest.fixture
def loaded(greenlight_settings: SettingsWrapper, library_dir: Path) -> SettingsWrapper:
    greenlight_settings.GREENLIGHT_CAMPAIGN_RUN_SUBMIT = f"{__name__}.submit_record"
    greenlight_settings.GREENLIGHT_LEASE_SECONDS = 30
    SUBMITTED.clear()
    library_load()
    return greenlight_settings


def coordinator_idle(
    monkeypatch: pytest.MonkeyPatch, *, listening_poll_seconds: float | None
) -> tuple[User, Run, list[RunBatch], list[tuple[float, int]], threading.Thread]:
    """A run of demo-spring started by an operator, and its coordinator in a thread: one batch in
    flight at a time, sent to a list (a worker that makes nothing), polling from 0.1 s up to 0.4 s
    (``listening_poll_seconds`` between announcements), its looks recorded (``looks_recorded``)."""
    operator = make_user(("operator",))
    run = campaign_run_start(campaign=Campaign.objects.get(name="demo-spring"), actor=operator)
    sent: list[RunBatch] = []
    looks = looks_recorded(monkeypatch)
    coordinator = coordinate_in_thread(
        run_id=run.pk,
        batch_size=4,
        dispatch=sent.append,
        max_in_flight=1,
        poll_seconds=0.1,
        poll_max_seconds=0.4,
        listening_poll_seconds=listening_poll_seconds,
    )
    return operator, run, sent, looks, coordinator


def looks_recorded(monkeypatch: pytest.MonkeyPatch) -> list[tuple[float, int]]:
    """Each look the coordinator makes at its run from now on: when, and the pending count it saw."""
    import infra.coordinator

    looks: list[tuple[float, int]] = []
    status = infra.coordinator.run_status

    def looked(**kwargs: int) -> object:
        seen = status(**kwargs)  # type: ignore[arg-type]
        looks.append((time.monotonic(), seen.pending))
        return seen

    monkeypatch.setattr(infra.coordinator, "run_status", looked)
    return looks


def coordinate_in_thread(**kwargs: object) -> threading.Thread:
    """`coordinate(**kwargs)` in a thread of its own, which closes its database connection after."""

    def target() -> None:
        try:
            coordinate(**kwargs)  # type: ignore[arg-type]
        finally:
            connection.close()

    thread = threading.Thread(target=target)
    thread.start()
    return thread


def stored(settings: SettingsWrapper) -> set[str]:
    """The generated files in storage (the library's source images, under sources/, are not)."""
    root = Path(settings.GREENLIGHT_STORAGE_ROOT)
    files = {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()} if root.exists() else set()
    return {f for f in files if not f.startswith("sources/")}


def referenced() -> set[str]:
    return {p for a in Asset.objects.all() for p in (a.file_path, a.thumb_path) if p}


def made_once(run: Run) -> None:
    """Every asset of the run in review was generated exactly once (one `generated` event)."""
    for asset in Asset.objects.filter(run=run, state=AssetState.IN_REVIEW):
        assert AuditEvent.objects.filter(asset=asset, action=AuditAction.GENERATED).count() == 1


def test_batches_travel_in_tasks_of_up_to_n_consecutive_batches_of_one_model() -> None:
    plan = [
        RunBatch(7, "embedded", (1, 2)),
        RunBatch(7, "embedded", (3, 4)),
        RunBatch(7, "embedded", (5, 6)),
        RunBatch(7, "tiny", (8, 9)),
        RunBatch(7, "embedded", (10,)),
    ]
    tasks = tasks_group(plan, batches_per_task=2, batch_size=2)
    assert [(t.model_name, t.serials, t.chunk) for t in tasks] == [
        ("embedded", (1, 2, 3, 4), 2),
        ("embedded", (5, 6), 2),
        ("tiny", (8, 9), 2),
        ("embedded", (10,), 2),
    ]
    assert [t.chunks() for t in tasks[:2]] == [[(1, 2), (3, 4)], [(5, 6)]]
    assert [t.serials for t in tasks_group(plan, batches_per_task=1, batch_size=2)] == [b.serials for b in plan]
    assert tasks_group([], batches_per_task=2, batch_size=2) == []
    assert RunBatch(7, "embedded", (1, 2, 3)).chunks() == [(1, 2, 3)]  # no chunk: one batch
    assert [t.batches for t in tasks[:2]] == [len(t.chunks()) for t in tasks[:2]] == [2, 1]
    assert RunBatch(7, "embedded", (1, 2, 3)).batches == 1
    assert RunBatch(7, "embedded", (), chunk=2).batches == len(RunBatch(7, "embedded", (), chunk=2).chunks()) == 0


@pytest.mark.django_db
def test_a_coordinator_sends_the_configured_batches_to_a_task_and_two_tasks_per_live_worker(
    loaded: SettingsWrapper,
) -> None:
    loaded.GREENLIGHT_BATCHES_PER_TASK = 3
    assert sending_default() == (3, 6)  # no live worker: two tasks all the same
    for name in ("w1", "w2", "w3"):
        WorkerHeartbeat.objects.create(name=name, hostname="h", pid=1, queues=[], models_loaded=[])
    assert sending_default() == (3, 18)
    assert sending_default(batches_per_task=1) == (1, 6)
    assert sending_default(max_in_flight=4) == (3, 4)


@pytest.mark.django_db
def test_a_run_sent_in_tasks_of_two_batches_is_made_batch_by_batch_and_every_variant_once(
    loaded: SettingsWrapper,
) -> None:
    operator = make_user(("operator",))
    run = campaign_run_start(campaign=Campaign.objects.get(name="demo-spring"), actor=operator)
    make = local_dispatch()
    sent: list[tuple[RunBatch, int]] = []  # each task, and how many of the run's assets were still to make

    def dispatch(task: RunBatch) -> None:
        sent.append((task, Asset.objects.filter(run=run, state=AssetState.PENDING).count()))
        make(task)

    outcome = coordinate(
        run_id=run.pk, batch_size=3, dispatch=dispatch, max_in_flight=4, batches_per_task=2, poll_seconds=0.05
    )
    run.refresh_from_db()
    assert (outcome.state, outcome.batches_sent, run.state, run.done) == ("succeeded", 4, "succeeded", 12)
    assert [(len(task.serials), task.chunk, pending) for task, pending in sent] == [(6, 3, 12), (6, 3, 6)]
    beat = WorkerHeartbeat.objects.get(name=f"local-{socket.gethostname()}")
    assert beat.batches_done == 4  # made and handed over batch by batch
    made_once(run)


@pytest.mark.django_db
def test_a_run_coordinated_here_makes_every_variant_once_and_ends_succeeded(loaded: SettingsWrapper) -> None:
    operator = make_user(("operator",))
    run = campaign_run_start(campaign=Campaign.objects.get(name="demo-spring"), actor=operator)
    outcome = coordinate(run_id=run.pk, batch_size=4, dispatch=local_dispatch(), max_in_flight=2)
    worker = f"local-{socket.gethostname()}"  # this process, as its heartbeat names it
    beat = WorkerHeartbeat.objects.get(name=worker)
    assert (beat.batches_done, beat.current, beat.pid) == (3, "", os.getpid())
    run.refresh_from_db()
    assert (outcome.state, outcome.batches_sent, outcome.assets_resent) == ("succeeded", 3, 0)
    assert (run.state, run.done, run.failed, run.left, run.workers) == ("succeeded", 12, 0, 0, {worker: 12})
    assert run.started_at is not None and run.finished_at is not None
    made_once(run)
    assert stored(loaded) == referenced() and len(referenced()) == 24
    finished = AuditEvent.objects.get(action=AuditAction.RUN_FINISHED)
    assert finished.detail["done"] == 12 and finished.to_state == "succeeded"
    # Coordinating it again finds nothing to do.
    assert coordinate(run_id=run.pk, batch_size=4, dispatch=local_dispatch(), max_in_flight=2).batches_sent == 0


@pytest.mark.django_db
def test_cancel_after_a_batch_then_resume_makes_only_what_is_left(loaded: SettingsWrapper) -> None:
    operator = make_user(("operator",))
    run = campaign_run_start(campaign=Campaign.objects.get(name="demo-spring"), actor=operator)
    make = local_dispatch()

    def make_then_cancel(batch: RunBatch) -> None:
        make(batch)
        if Run.objects.get(pk=run.pk).state == Run.State.RUNNING:
            run_cancel(run=run, actor=operator)

    first = coordinate(run_id=run.pk, batch_size=4, dispatch=make_then_cancel, max_in_flight=1)
    run.refresh_from_db()
    assert (first.state, first.batches_sent) == ("cancelled", 1)
    assert (run.done, run.cancelled, run.left) == (4, 8, 0)
    assert Asset.objects.filter(run=run, state=AssetState.CANCELLED).count() == 8
    assert stored(loaded) == referenced() and len(referenced()) == 8  # nothing of the cancelled

    resumed = run_resume(run=run, actor=operator)
    assert [run.pk, run.pk] == SUBMITTED and (resumed.left, resumed.done) == (8, 4)
    second = coordinate(run_id=run.pk, batch_size=4, dispatch=local_dispatch(), max_in_flight=1)
    run.refresh_from_db()
    assert (second.state, second.batches_sent) == ("succeeded", 2)
    assert (run.done, run.cancelled, run.failed) == (12, 0, 0)
    made_once(run)
    assert Asset.objects.filter(run=run).count() == 12 and stored(loaded) == referenced()


@pytest.mark.django_db(transaction=True)
def test_a_cancel_landing_mid_batch_hands_nothing_over_and_leaves_no_files(loaded: SettingsWrapper) -> None:
    operator = make_user(("operator",))
    run = campaign_run_start(campaign=Campaign.objects.get(name="demo-spring"), actor=operator)
    worker = coordinate_in_thread(run_id=run.pk, batch_size=12, dispatch=local_dispatch(), max_in_flight=1)
    deadline = time.monotonic() + 60
    while not Asset.objects.filter(run=run).exclude(gen_worker="").exists():  # the batch is taken
        assert time.monotonic() < deadline
        time.sleep(0.01)
    run_cancel(run=run, actor=operator)
    worker.join(timeout=120)
    run.refresh_from_db()
    assert (run.state, run.done, run.cancelled) == ("cancelled", 0, 12)
    assert stored(loaded) == set() and referenced() == set()
    assert not AuditEvent.objects.filter(action=AuditAction.GENERATED).exists()


@pytest.mark.django_db(transaction=True)
def test_a_request_with_a_deadline_overtakes_a_scheduled_campaign_already_running(loaded: SettingsWrapper) -> None:
    from django.utils import timezone

    operator = make_user(("operator",))
    scheduled = campaign_run_start(campaign=Campaign.objects.get(name="demo-catalog"), actor=operator)
    request = Campaign.objects.get(name="demo-spring")
    request.kind, request.deadline = Campaign.Kind.REQUEST, timezone.now()
    request.save()
    order: list[int] = []
    make = local_dispatch()
    lock = threading.Lock()  # one worker: one batch made at a time

    def one_worker(batch: RunBatch) -> None:
        with lock:
            order.append(batch.run_id)
            make(batch)

    first = coordinate_in_thread(run_id=scheduled.pk, batch_size=4, dispatch=one_worker, max_in_flight=1)
    while not order:  # the campaign is running its first batch
        time.sleep(0.01)
    urgent = campaign_run_start(campaign=request, actor=operator)
    assert urgent.priority == 0 and scheduled.priority == 5
    coordinate(run_id=urgent.pk, batch_size=4, dispatch=one_worker, max_in_flight=1)
    first.join(timeout=300)
    # After the batch it was making, the campaign waited until the request was all made.
    assert order[0] == scheduled.pk and order[-1] == scheduled.pk
    urgent_at = [i for i, r in enumerate(order) if r == urgent.pk]
    assert urgent_at == list(range(urgent_at[0], urgent_at[0] + 3)) and urgent_at[0] <= 2
    assert Run.objects.get(pk=urgent.pk).state == "succeeded"
    assert Run.objects.get(pk=scheduled.pk).state == "succeeded"


@pytest.mark.django_db(transaction=True)
def test_an_idle_coordinator_looks_less_often_until_something_changes(
    loaded: SettingsWrapper, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A worker that takes its batch and makes nothing for a while: the coordinator has nothing to do.
    # The change below is made behind the database's back (no announcement): polling alone finds it.
    operator, run, sent, looks, coordinator = coordinator_idle(monkeypatch, listening_poll_seconds=None)
    deadline = time.monotonic() + 30
    while len(looks) < 6:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    # The worker hands one asset over (failed): the next look sees it.
    Asset.objects.filter(pk=sent[0].serials[0]).update(state=AssetState.FAILED)
    while not any(pending == 11 for _, pending in looks):
        assert time.monotonic() < deadline
        time.sleep(0.02)
    changed_at = next(i for i, (_, pending) in enumerate(looks) if pending == 11)
    while len(looks) < changed_at + 3:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    run_cancel(run=run, actor=operator)
    coordinator.join(timeout=30)

    assert len(sent) == 1
    gaps = [later - earlier for (earlier, _), (later, _) in itertools.pairwise(looks)]
    idle = gaps[:changed_at]
    # Twice as long after each look that found nothing new, up to the most it waits ...
    assert idle[0] < 0.25 and max(idle) >= 0.35 and all(gap < 0.4 + 0.2 for gap in idle), idle
    assert all(later >= earlier - 0.05 for earlier, later in itertools.pairwise(idle)), idle
    # ... and soon again once a look has found something.
    assert gaps[changed_at] < 0.25, (gaps, changed_at)


@pytest.mark.django_db(transaction=True)
def test_a_hand_over_has_the_next_batch_sent_at_once_and_a_cancel_ends_the_coordinator(
    loaded: SettingsWrapper,
) -> None:
    """Between its looks the coordinator waits on the run's change notifications: with a poll of
    30 s, a batch handed over still has the next one sent within moments, and a cancel ends it."""
    operator = make_user(("operator",))
    run = campaign_run_start(campaign=Campaign.objects.get(name="demo-spring"), actor=operator)
    sent: list[RunBatch] = []
    coordinator = coordinate_in_thread(
        run_id=run.pk, batch_size=4, dispatch=sent.append, max_in_flight=1, poll_seconds=30, poll_max_seconds=30
    )
    deadline = time.monotonic() + 30
    while not sent:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    time.sleep(0.5)  # the coordinator is now waiting out its 30 s poll
    first = Asset.objects.filter(pk__in=sent[0].serials)
    failures = [(key, "the worker's model broke") for key in first.values_list("key", flat=True)]
    handed_at = time.monotonic()
    run_batch_hand_over(run_id=run.pk, worker="bench", files=[], failures=failures)
    while len(sent) < 2:
        assert time.monotonic() < handed_at + 10, "the next batch waited for the poll"
        time.sleep(0.02)
    assert set(sent[1].serials).isdisjoint(sent[0].serials)
    time.sleep(0.5)
    cancelled_at = time.monotonic()
    run_cancel(run=run, actor=operator)
    coordinator.join(timeout=20)
    assert not coordinator.is_alive() and time.monotonic() - cancelled_at < 10
    assert Run.objects.get(pk=run.pk).state == "cancelled"


@pytest.mark.django_db(transaction=True)
def test_while_changes_are_announced_the_looks_between_them_are_a_slow_safety_net(
    loaded: SettingsWrapper, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With ``listening_poll_seconds`` and the run's changes announced, a coordinator whose batch
    is being made looks every that many seconds, not from a tenth of a second up; a hand-over
    still has the next batch sent at once."""
    operator, run, sent, looks, coordinator = coordinator_idle(monkeypatch, listening_poll_seconds=1.0)
    deadline = time.monotonic() + 30
    while not sent:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    first_sent = time.monotonic()
    time.sleep(2.5)
    idle = [at for at, _ in looks if at > first_sent]
    assert 1 <= len(idle) <= 4, f"{len(idle)} looks in 2.5 s"  # polling alone: 0.1, 0.2, 0.4, 0.4 ... 7 or more
    failures = [(key, "broke") for key in Asset.objects.filter(pk__in=sent[0].serials).values_list("key", flat=True)]
    handed_at = time.monotonic()
    run_batch_hand_over(run_id=run.pk, worker="bench", files=[], failures=failures)
    while len(sent) < 2:
        assert time.monotonic() < handed_at + 0.9, "the next batch waited for the poll"
        time.sleep(0.02)
    run_cancel(run=run, actor=operator)
    coordinator.join(timeout=20)
    assert not coordinator.is_alive()
