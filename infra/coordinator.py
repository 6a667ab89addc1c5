"""A campaign run's coordinator: the Prefect flow that hands the run's batches to the workers.

    run_begin -> loop: free the leases of dead workers, send batches no worker holds (while
    fewer than `max_in_flight` are out, and no run that comes first still has batches waiting),
    until nothing is pending, or the run is paused or cancelled.

With a Prefect server (`PREFECT_API_URL`), batches travel as `batch_task(model).delay(...)`: task
runs on the server's task queue for their model, executed by a task worker that holds the model
(`infra.workers`). A task carries up to `batches_per_task` consecutive batches of one model
(`tasks_group`), which the worker makes one after another, each a batch of its own: each task run
costs the server and this process about 0.1 s of CPU, taken from the generation on the machines
they share (docs/deploy.md has the measurements). `max_in_flight` still counts batches
(`sending_default`). Without a server (the demo, a laptop), the coordinator makes each batch
itself in this process. Either way the database
is the record of what is done: a killed coordinator is run again (`manage.py runs resume`) and
sends only what is still pending; a batch sent twice is made once (the lease) and handed over once
(idempotent on the asset key).
"""

from __future__ import annotations

import itertools
import logging
import math
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from prefect import flow
from prefect.runtime import flow_run as current_flow_run

import infra.django_boot  # noqa: F401  (sets up Django before the review models are imported)
from review.intake import (
    RunBatch,
    RunChanges,
    RunStatus,
    run_batches_plan,
    run_begin,
    run_finish_check,
    run_leases_expired_release,
    run_outranked,
    run_status,
)

logger = logging.getLogger("greenlight.coordinator")

COORDINATE_FLOW = "campaign-coordinate"
# Between two announced changes of a run (``RunChanges``), a look every this many seconds.
LISTENING_POLL_SECONDS = 2.0
Dispatch = Callable[[RunBatch], None]


@dataclass(frozen=True)
class CoordinateOutcome:
    run_id: int
    state: str
    batches_sent: int
    assets_resent: int
    seconds: float

    def line(self) -> str:
        return (
            f"run={self.run_id} coordinator ended: {self.state}, {self.batches_sent} batch(es) sent, "
            f"{self.assets_resent} asset(s) sent again after their worker died, {self.seconds:.1f} s"
        )


def coordinate(
    *,
    run_id: int,
    batch_size: int,
    dispatch: Dispatch,
    max_in_flight: int,
    poll_seconds: float = 0.25,
    poll_max_seconds: float = 1.0,
    listening_poll_seconds: float | None = LISTENING_POLL_SECONDS,
    batches_per_task: int = 1,
    flow_run_id: str = "",
    untaken_seconds: float = 300.0,
    on_progress: Callable[[RunStatus], None] | None = None,
) -> CoordinateOutcome:
    """Hand the run's pending batches out until it ends, is paused or cancelled (see the module),
    up to ``batches_per_task`` of them to a task (``tasks_group``; never more than
    ``max_in_flight``, which counts batches).

    Between two looks at the run it waits ``poll_seconds``, twice as long after each look that
    found nothing changed, up to ``poll_max_seconds``, and ``poll_seconds`` again once something
    has; a change announced by the database (a batch handed over, a pause, a cancel:
    ``review.intake.RunChanges``) ends the wait at once. A look costs about 9 ms of this
    process's CPU and 5 ms of the database's (measured on 2 cores). Polling alone, a worker's
    next batch was sent up to a second after its last one was handed over; on 2 cores, where a
    batch of the embedded model takes about a second, the worker then waited for its next batch
    for 2.5-5.4 s of a 41-43 s run, and the looks, four a second after each change, took CPU from
    the generation sharing the machine.

    While the database announces the run's changes (``RunChanges.listening``), the looks between
    announcements are only a safety net and come ``listening_poll_seconds`` apart (None: poll as
    without announcements): a hand-over, a pause or a cancel is looked at when announced; a
    worker whose lease ran out, a run that outranked this one having sent its last batch, or a
    change made behind the database's back, at the next look. Polling from
    a quarter second after each batch sent, a served campaign of 16 batches on 2 cores was looked
    at 63 times, mostly in the middle of the worker's generation; 31 times with a look every 2 s
    between announcements (the coordinator's CPU 2.76 against 2.53 s)."""
    started = time.perf_counter()
    status = run_begin(run_id=run_id, flow_run_id=flow_run_id)
    with RunChanges(run_id) as changes:
        sent: dict[int, float] = {}  # serial -> when its batch was sent
        batches_sent = resent = 0
        wait = poll_seconds
        while status.state == "running":
            if status.pending == 0:
                run_finish_check(run_id=run_id)
                status = run_status(run_id=run_id)
                break
            released = run_leases_expired_release(run_id=run_id)
            if released:
                logger.warning("run=%s serials=%s leases ran out (worker gone): sending them again", run_id, released)
                for serial in released:
                    sent.pop(serial, None)
                resent += len(released)
            plan = run_batches_plan(run_id=run_id, batch_size=batch_size)
            # A batch no worker has taken for `untaken_seconds` (its task run was lost before any
            # worker started it) is sent again; the lease keeps a late copy from making it twice.
            stale = time.monotonic() - untaken_seconds
            for batch in plan:
                if any(sent.get(s, stale) <= stale for s in batch.serials if s in sent):
                    for serial in batch.serials:
                        sent.pop(serial, None)
            plan = [b for b in plan if not any(s in sent for s in b.serials)]
            waiting = sum(len(b.serials) for b in plan)
            in_flight = math.ceil(max(status.pending - waiting, 0) / batch_size)
            changed = bool(released)
            tasks = tasks_group(plan, batches_per_task=min(batches_per_task, max_in_flight), batch_size=batch_size)
            room = max_in_flight - in_flight  # in batches
            sendable = []
            for task in tasks:
                if task.batches > room:
                    break
                sendable.append(task)
                room -= task.batches
            if sendable and not run_outranked(run_id=run_id):
                for task in sendable:
                    dispatch(task)
                    sent.update(dict.fromkeys(task.serials, time.monotonic()))
                    batches_sent += task.batches
                    logger.info("run=%s batch sent: model=%s serials=%s", run_id, task.model_name, list(task.serials))
                changed = True
            elif changes.wait(wait):
                changed = True
            before, status = status.pending, run_status(run_id=run_id)
            if status.pending != before:
                changed = True
                if on_progress is not None:
                    on_progress(status)
            if listening_poll_seconds is not None and changes.listening:
                wait = max(listening_poll_seconds, poll_seconds)
            else:
                wait = poll_seconds if changed else min(wait * 2, max(poll_max_seconds, poll_seconds))
    outcome = CoordinateOutcome(run_id, status.state, batches_sent, resent, time.perf_counter() - started)
    logger.info(outcome.line())
    return outcome


def tasks_group(plan: list[RunBatch], *, batches_per_task: int, batch_size: int) -> list[RunBatch]:
    """The plan's batches as they are sent: up to ``batches_per_task`` consecutive batches of one
    model in one task (its serials made ``batch_size`` at a time), in the plan's order."""
    tasks: list[RunBatch] = []
    for model, runs in itertools.groupby(plan, key=lambda batch: batch.model_name):
        batches = list(runs)
        for at in range(0, len(batches), batches_per_task):
            serials = tuple(s for batch in batches[at : at + batches_per_task] for s in batch.serials)
            tasks.append(RunBatch(batches[0].run_id, model, serials, chunk=batch_size))
    return tasks


def prefect_dispatch(batch: RunBatch) -> None:
    """Send a task of one or more batches to its model's task queue on the Prefect server (a task
    worker makes it)."""
    from infra.batch_tasks import batch_task

    batch_task(batch.model_name).delay(batch.run_id, list(batch.serials), batch.chunk)


def local_dispatch() -> Dispatch:
    """Make each batch here, in this process, on a warm model (no Prefect server needed)."""
    from django.conf import settings

    from pipeline.config import config_from_settings
    from pipeline.work import Warm, batch_work

    warm = Warm(
        name=f"local-{socket.gethostname()}",
        config=config_from_settings(),
        lease_seconds=float(settings.GREENLIGHT_LEASE_SECONDS),
    )

    def make(batch: RunBatch) -> None:
        for serials in batch.chunks():
            _heartbeat(warm, f"run {batch.run_id}: {len(serials)} asset(s)")
            batch_work(run_id=batch.run_id, serials=serials, warm=warm)
        _heartbeat(warm, "")

    return make


def _heartbeat(warm: Any, current: str) -> None:
    """This process, making batches itself, reports as a worker named after its host."""
    from review.intake import worker_heartbeat_record

    worker_heartbeat_record(
        name=warm.name,
        hostname=socket.gethostname(),
        pid=os.getpid(),
        queues=["local"],
        models_loaded=warm.cache.names(),
        batches_done=warm.batches_done,
        current=current,
    )


def dispatch_choose() -> tuple[Dispatch, str]:
    """Task workers when a Prefect server is configured, else this process."""
    from prefect.settings import PREFECT_API_URL

    if PREFECT_API_URL.value():
        return prefect_dispatch, "task workers"
    return local_dispatch(), "this process"


def sending_default(*, max_in_flight: int = 0, batches_per_task: int = 0) -> tuple[int, int]:
    """(batches to a task, batches out at once) for a run's coordinator, each where not given:
    GREENLIGHT_BATCHES_PER_TASK, and two tasks per live worker (one being made, one waiting), at
    least two."""
    from django.conf import settings

    from review.selectors import worker_list

    per_task = batches_per_task or settings.GREENLIGHT_BATCHES_PER_TASK
    tasks = max(2, 2 * sum(1 for w in worker_list() if w.alive))
    return per_task, max_in_flight or tasks * per_task


@flow(name=COORDINATE_FLOW, validate_parameters=True)
def campaign_coordinate(run_id: int, batch_size: int = 8, max_in_flight: int = 0, batches_per_task: int = 0) -> str:
    """Coordinate one campaign run: its batches to the workers, until it ends or is paused."""
    dispatch, where = dispatch_choose()
    per_task, in_flight = sending_default(max_in_flight=max_in_flight, batches_per_task=batches_per_task)
    logger.info("run=%s coordinating, batches made by %s", run_id, where)
    outcome = coordinate(
        run_id=run_id,
        batch_size=batch_size,
        dispatch=dispatch,
        batches_per_task=per_task,
        max_in_flight=in_flight,
        flow_run_id=str(current_flow_run.id or ""),
        on_progress=_progress_artifact(run_id),
    )
    return outcome.line()


# Least time between two moves of a run's progress artifact (its end is always shown): each move
# is a request the Prefect server answers on the machine that may be generating.
PROGRESS_SECONDS = 2.0


def _progress_artifact(run_id: int, *, every: float = PROGRESS_SECONDS) -> Callable[[RunStatus], None]:
    """The flow run's progress artifact in the Prefect UI: made at the first change, then moved at
    most once every ``every`` seconds, and at the run's end."""
    from uuid import UUID

    from prefect.artifacts import create_progress_artifact, update_progress_artifact

    made: list[UUID] = []
    moved = 0.0  # when it was last made or moved (monotonic)

    def report(status: RunStatus) -> None:
        nonlocal moved
        percent = 100.0 * (status.total - status.pending) / status.total if status.total else 100.0
        now = time.monotonic()
        if made and percent < 100.0 and now - moved < every:
            return
        moved = now
        if made:
            update_progress_artifact(made[0], progress=percent)
        else:
            artifact = create_progress_artifact(progress=percent, description=f"run {run_id}: assets made")
            made.append(cast(UUID, artifact))  # sync-or-async dispatch: called from sync code, a UUID

    return report


SCHEDULED_FLOW = "campaign-scheduled"


@flow(name=SCHEDULED_FLOW, validate_parameters=True)
def campaign_scheduled(campaign: str, batch_size: int = 8) -> str:
    """A campaign's schedule fired: start a run of it (as the scheduler) and coordinate it. A
    campaign whose previous run is still open is left to that run."""
    from prompt_library.models import Campaign
    from review.errors import RunRefusedError
    from review.services.runs import campaign_run_start

    row = Campaign.objects.get(name=campaign)
    try:
        run = campaign_run_start(campaign=row, actor=None, submit=False)
    except RunRefusedError as exc:
        logger.warning("campaign %s: scheduled run skipped: %s", campaign, exc)
        return str(exc)
    return campaign_coordinate(run_id=run.pk, batch_size=batch_size)
