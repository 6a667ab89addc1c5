"""Campaign runs: start one, pause, resume or cancel it. Every change is checked against the
`review.run_campaign` permission (the operator role), made in one transaction with its audit
event, and the generation itself is handed to the orchestrator (`review.orchestrator`) once that
transaction has committed: no web request ever generates.

A run's assets are the variants it registered (or found pending, failed or cancelled): a cancel
marks those not made yet `cancelled`, a resume puts them back to `pending`, and the workers make
only assets still pending, so resuming or re-running finishes exactly what is left.
"""

from __future__ import annotations

import logging
from typing import Any

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from prompt_library.models import Campaign
from prompt_library.selectors import campaign_plan_get
from review.audit import AuditAction
from review.bulk import rows_insert
from review.errors import ReviewInputError, RunRefusedError
from review.events import asset_move, audit_event_build
from review.intake import assets_register, run_changed_notify, run_counts_refresh
from review.models import Asset, Run
from review.orchestrator import run_submit
from review.roles import REQUEST, RUN, role_require
from review.states import AssetState

logger = logging.getLogger("greenlight.runs")

PRIORITY_MAX = 9
DEADLINE_PRIORITY = 0  # a request with a deadline runs before every scheduled campaign
# The assets a run (re)queues: not made yet, made and failed, or cancelled by an earlier run.
REQUEUE = (AssetState.PENDING, AssetState.FAILED, AssetState.CANCELLED)
UNMADE = (AssetState.PENDING, AssetState.FAILED)


def run_priority(*, campaign: Campaign, priority: int | None = None) -> int:
    """The priority a run of `campaign` gets (lower runs first): the one asked for, else 0 for a
    request with a deadline, else the campaign's own."""
    if priority is not None:
        if isinstance(priority, bool) or not isinstance(priority, int) or not 0 <= priority <= PRIORITY_MAX:
            raise ReviewInputError("priority", priority, f"must be a whole number from 0 to {PRIORITY_MAX}")
        return priority
    if campaign.kind == Campaign.Kind.REQUEST and campaign.deadline is not None:
        return DEADLINE_PRIORITY
    return min(campaign.priority, PRIORITY_MAX)


def campaign_run_start(
    *, campaign: Campaign, actor: User | None, priority: int | None = None, submit: bool = True
) -> Run:
    """Register the campaign's variants not made yet, put them (and any it left pending, failed or
    cancelled before) into a new run, and submit the run (`submit=False`: the caller coordinates
    it itself, as a scheduled flow run does). `actor` None is the scheduler.

    Refused while another run of the same campaign is still queued, running or paused (resume
    that one instead)."""
    if actor is not None:
        _run_permission_check(actor, campaign)
    level = run_priority(campaign=campaign, priority=priority)
    with transaction.atomic():
        Campaign.objects.select_for_update().get(pk=campaign.pk)  # one start at a time per campaign
        open_run = Run.objects.filter(campaign=campaign, state__in=OPEN).first()
        if open_run is not None:
            raise RunRefusedError(open_run.pk, open_run.state, f"campaign {campaign.name} has this run open: resume it")
        plan = campaign_plan_get(name=campaign.name)
        refs = assets_register(variants=plan.variants)
        todo = [ref.serial for ref in refs.values() if ref.state in REQUEUE]
        run = Run.objects.create(campaign=campaign, priority=level, started_by=actor, total=len(todo))
        _assets_requeue(run=run, serials=todo, actor=actor)
        _run_event(run, AuditAction.RUN_STARTED, actor, total=len(todo), variants=len(plan.variants))
        if not todo:
            _run_close(run, Run.State.SUCCEEDED)
    if submit and run.state == Run.State.QUEUED:
        _submit(run)
    return run


def run_pause(*, run: Run, actor: User) -> Run:
    """Stop handing out the run's batches; batches already being made finish and are kept."""
    role_require(actor, RUN)
    with transaction.atomic():
        locked = _locked(run)
        if locked.state not in (Run.State.QUEUED, Run.State.RUNNING):
            raise RunRefusedError(locked.pk, locked.state, "only a queued or running run can be paused")
        before = locked.state
        locked.state = Run.State.PAUSED
        locked.save(update_fields=["state"])
        _run_event(locked, AuditAction.RUN_PAUSED, actor, was=before)
        run_changed_notify(run_id=locked.pk)  # its coordinator stops sending batches at once
    return locked


def run_resume(*, run: Run, actor: User) -> Run:
    """Go on with a paused run, or run a cancelled one's cancelled assets after all, or start the
    coordinator of a queued or running run again (its process died): only what is left is made,
    and a batch another coordinator already sent is made once (the workers' leases)."""
    role_require(actor, RUN)
    with transaction.atomic():
        locked = _locked(run)
        if not (locked.is_open or locked.state == Run.State.CANCELLED):
            raise RunRefusedError(locked.pk, locked.state, "a finished run cannot be resumed: start a new one")
        if locked.campaign_id is not None and (
            Run.objects.filter(campaign_id=locked.campaign_id, state__in=OPEN).exclude(pk=locked.pk).exists()
        ):
            raise RunRefusedError(locked.pk, locked.state, "another run of its campaign is open")
        before = locked.state
        if before == Run.State.CANCELLED:
            serials = list(locked.assets.filter(state=AssetState.CANCELLED).values_list("id", flat=True))
            _assets_requeue(run=locked, serials=serials, actor=actor)
            locked.finished_at = None
        locked.state = Run.State.QUEUED
        locked.error = ""
        locked.save(update_fields=["state", "finished_at", "error"])
        run_counts_refresh(run_id=locked.pk)
        locked.refresh_from_db()
        _run_event(locked, AuditAction.RUN_RESUMED, actor, was=before)
        if locked.left == 0:
            _run_close(locked, Run.State.FAILED if locked.failed else Run.State.SUCCEEDED)
    if locked.state == Run.State.QUEUED:
        _submit(locked)
    return locked


def _run_permission_check(actor: User, campaign: Campaign | None) -> None:
    """The operator role; or, for a request's campaign, its own requester (who starts and
    cancels the runs of their request from the request's page)."""
    if (
        campaign is not None
        and campaign.kind == Campaign.Kind.REQUEST
        and campaign.requested_by_id == actor.pk
        and actor.has_perm(REQUEST)
    ):
        return
    role_require(actor, RUN)


def run_cancel(*, run: Run, actor: User) -> Run:
    """Stop the run: its assets not made yet become `cancelled` (each with its audit event). A
    batch being made when the cancel lands hands over nothing of them and removes its files."""
    _run_permission_check(actor, run.campaign)
    with transaction.atomic():
        locked = _locked(run)
        if not locked.is_open:
            raise RunRefusedError(locked.pk, locked.state, "only a queued, running or paused run can be cancelled")
        assets = list(
            Asset.objects.select_for_update().filter(run=locked, state__in=UNMADE).order_by("id").only("id", "state")
        )
        events = [
            asset_move(a, AssetState.CANCELLED, AuditAction.GENERATION_CANCELLED, actor=actor, run=locked.pk)
            for a in assets
        ]
        Asset.objects.filter(pk__in=[a.pk for a in assets]).update(
            state=AssetState.CANCELLED, gen_worker="", gen_lease_until=None, updated_at=timezone.now()
        )
        rows_insert(events)
        before = locked.state
        _run_close(locked, Run.State.CANCELLED)
        _run_event(locked, AuditAction.RUN_CANCELLED, actor, was=before, assets=len(assets))
        run_changed_notify(run_id=locked.pk)
    return locked


OPEN = (Run.State.QUEUED, Run.State.RUNNING, Run.State.PAUSED)


def _locked(run: Run) -> Run:
    return Run.objects.select_for_update(of=("self",)).select_related("campaign").get(pk=run.pk)


def _assets_requeue(*, run: Run, serials: list[int], actor: User | None) -> None:
    """Give `serials` to `run`; cancelled ones go back to pending, with their audit events."""
    cancelled = list(
        Asset.objects.select_for_update().filter(pk__in=serials, state=AssetState.CANCELLED).only("id", "state")
    )
    events = [asset_move(a, AssetState.PENDING, AuditAction.REQUEUED, actor=actor, run=run.pk) for a in cancelled]
    Asset.objects.filter(pk__in=[a.pk for a in cancelled]).update(state=AssetState.PENDING)
    rows_insert(events)
    Asset.objects.filter(pk__in=serials).update(run=run, updated_at=timezone.now())


def _run_close(run: Run, state: str) -> None:
    """End the run in `state` with its counts as they stand (inside the caller's transaction)."""
    run_counts_refresh(run_id=run.pk)
    run.refresh_from_db(fields=["done", "failed", "cancelled", "total", "workers"])
    run.state = state
    run.finished_at = timezone.now()
    run.save(update_fields=["state", "finished_at"])


def _run_event(run: Run, action: AuditAction, actor: User | None, **detail: object) -> None:
    """Record a run's audit event: no asset; the run, its campaign and its state in the detail."""
    campaign = run.campaign.name if run.campaign else ""
    facts: dict[str, Any] = {"run": run.pk, "campaign": campaign, **detail}
    audit_event_build(None, action, actor=actor, to_state=run.state, **facts).save()


def _submit(run: Run) -> None:
    """Hand the run to the orchestrator; if that fails the run stays queued with the error shown,
    and a resume (or the next start) submits it again."""
    try:
        where = run_submit(run_id=run.pk, priority=run.priority)
    except Exception as exc:  # the orchestrator is another system: its failure is recorded, not raised
        logger.exception("run %s: submitting failed", run.pk)
        Run.objects.filter(pk=run.pk).update(error=f"could not be submitted: {type(exc).__name__}: {exc}"[:2000])
        run.refresh_from_db()
        return
    logger.info("run %s: submitted: %s", run.pk, where, extra={"run": run.pk})
