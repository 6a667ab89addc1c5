"""Selectors: every query a page or the pipeline reads, with its joins done up front."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import connection
from django.db.models import QuerySet
from django.utils import timezone

from review.audit import AuditAction, audit_action_spellings
from review.models import QUEUE_ORDER, Asset, AuditEvent, Publication, Run, WorkerHeartbeat
from review.states import AssetState

# The queue's tabs, the reviewer's first: every state but `generated`, which lasts only inside
# the hand-over transaction.
QUEUE_STATES = [
    AssetState.IN_REVIEW,
    AssetState.APPROVED,
    AssetState.REJECTED,
    AssetState.PUBLISHED,
    AssetState.REVOKED,
    AssetState.FAILED,
    AssetState.PENDING,
    AssetState.CANCELLED,
]


def asset_list(*, state: str | None = None, campaign: str | None = None, flagged: bool = False) -> QuerySet[Asset]:
    """Assets for the queue grid: in review, in the order claims hand them out (deadline requests
    first, then oldest first); in any other state, most recently changed first. ``flagged``: only
    those the safety classifier flagged."""
    # The request behind a request's campaign (its notes and deadline show on the tile): one join.
    qs = Asset.objects.select_related("campaign__asset_request", "prompt_version__template", "claimed_by")
    if state:
        qs = qs.filter(state=state)
    if campaign:
        qs = qs.filter(campaign__name=campaign)
    if flagged:
        qs = qs.filter(safety_flagged=True)
    return qs.order_by(*QUEUE_ORDER) if state == AssetState.IN_REVIEW else qs.order_by("-updated_at", "-id")


# Tabs count exactly up to this many assets, then show "10,000+": an exact count of a million
# rows costs a scan per page view; a capped one stops at the cap, on the state index.
COUNT_CAP = 10_000


@dataclass(frozen=True)
class StateCount:
    """A queue tab's count; `capped` when there are more than `n`."""

    state: str
    n: int
    capped: bool

    @property
    def label(self) -> str:
        return f"{self.n:,}+" if self.capped else f"{self.n:,}"


def asset_state_counts(*, cap: int = COUNT_CAP) -> list[StateCount]:
    """Number of assets in each state, for the queue's tabs, each counted up to `cap` + 1 on the
    state index (one query)."""
    table = connection.ops.quote_name(Asset._meta.db_table)
    sql = " UNION ALL ".join(
        f"SELECT %s, (SELECT COUNT(*) FROM (SELECT 1 FROM {table} WHERE state = %s LIMIT %s) AS t)"
        for _ in QUEUE_STATES
    )
    params: list[str | int] = []
    for state in QUEUE_STATES:
        params += [str(state), str(state), cap + 1]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        counts = dict(cursor.fetchall())
    return [StateCount(state=s, n=min(counts[s], cap), capped=counts[s] > cap) for s in QUEUE_STATES]


def asset_get(*, serial: int, history: bool = True) -> Asset:
    """One asset; with `history`, everything its page shows (decisions, events, publications)."""
    qs = Asset.objects.select_related(
        "campaign__asset_request", "prompt_version__template", "claimed_by", "regenerated_from"
    )
    if history:
        qs = qs.prefetch_related("decisions__reviewer", "publications", "events__actor", "regenerations")
    return qs.get(pk=serial)


def audit_event_list(*, action: str = "", actor: str = "", serial: int | None = None) -> QuerySet[AuditEvent]:
    """The audit log, newest first, filtered by action (under any of its spellings: "approved"
    finds the decisions recorded as "approve"), actor's username and asset serial."""
    qs = AuditEvent.objects.select_related("actor", "asset")
    if action:
        qs = qs.filter(action__in=audit_action_spellings(action))
    if actor:
        qs = qs.filter(actor__username=actor)
    if serial is not None:
        qs = qs.filter(asset_id=serial)
    return qs.order_by("-created_at", "-id")


def asset_siblings(*, asset: Asset) -> QuerySet[Asset]:
    """The asset and its siblings: every asset made from the same template version and rendered
    prompt (other seeds), for side-by-side comparison."""
    return (
        Asset.objects.select_related("campaign", "claimed_by")
        .filter(prompt_version_id=asset.prompt_version_id, prompt=asset.prompt)
        .order_by("seed", "id")
    )


# An asset still pending this long after it was registered was most likely left by a run that
# died (the next run of its campaign, or `manage.py assets_generate --pending`, generates it).
PENDING_STALE = timedelta(days=1)


@dataclass(frozen=True)
class HealthCounts:
    """What the health page counts now: assets pending for more than `PENDING_STALE`, failed
    assets, publications still being written (and the oldest one's start), each capped."""

    pending_stale: StateCount
    failed: StateCount
    writing: StateCount
    oldest_writing: datetime | None


def health_counts(*, now: datetime | None = None, cap: int = COUNT_CAP) -> HealthCounts:
    """The health page's counts, each on an index and stopped at `cap` + 1 (four queries)."""
    cutoff = (now or timezone.now()) - PENDING_STALE

    def capped(state: str, qs: QuerySet[Asset] | QuerySet[Publication]) -> StateCount:
        n = qs[: cap + 1].count()
        return StateCount(state=state, n=min(n, cap), capped=n > cap)

    writing = Publication.objects.filter(state=Publication.State.WRITING)
    return HealthCounts(
        pending_stale=capped(AssetState.PENDING, Asset.objects.filter(state=AssetState.PENDING, created_at__lt=cutoff)),
        failed=capped(AssetState.FAILED, Asset.objects.filter(state=AssetState.FAILED)),
        writing=capped(Publication.State.WRITING, writing),
        oldest_writing=writing.order_by("created_at").values_list("created_at", flat=True).first(),
    )


def sweep_reports(*, limit: int = 10) -> list[AuditEvent]:
    """The latest sweeps of crash leftovers (`swept` audit events, the report in their detail),
    newest first."""
    return list(AuditEvent.objects.filter(action=AuditAction.SWEPT).order_by("-created_at", "-id")[:limit])


# Campaign runs and their workers (review.services.runs changes them).

WORKER_STALE = timedelta(seconds=30)  # a worker not seen for this long is shown as gone


def run_list(*, campaign: str | None = None, state: str | None = None, limit: int = 50) -> QuerySet[Run]:
    """Runs, newest first, with their campaign and who started them; optionally one campaign's
    (by name) or in one state."""
    runs = Run.objects.select_related("campaign__prompt_version__template", "started_by")
    if campaign:
        runs = runs.filter(campaign__name=campaign)
    if state:
        runs = runs.filter(state=state)
    return runs.order_by("-created_at", "-id")[:limit]


@dataclass(frozen=True)
class RunProgressView:
    """A run's progress as a page or the API shows it."""

    run_id: int
    state: str
    total: int
    done: int
    failed: int
    cancelled: int
    left: int
    images_per_second: float | None
    started_at: datetime | None
    finished_at: datetime | None
    started_by: str
    per_worker: dict[str, int]

    @property
    def percent(self) -> int:
        return round(100 * (self.total - self.left) / self.total) if self.total else 100


def run_progress(*, run: Run, now: datetime | None = None) -> RunProgressView:
    """Done / failed / left, images made per second since the run started (until it finished),
    who started it, and what each worker handed over."""
    rate = None
    if run.started_at is not None:
        end = run.finished_at or now or timezone.now()
        seconds = (end - run.started_at).total_seconds()
        rate = run.done / seconds if seconds > 0 else None
    return RunProgressView(
        run_id=run.pk,
        state=run.state,
        total=run.total,
        done=run.done,
        failed=run.failed,
        cancelled=run.cancelled,
        left=run.left,
        images_per_second=rate,
        started_at=run.started_at,
        finished_at=run.finished_at,
        started_by=run.started_by.get_username() if run.started_by else "schedule",
        per_worker={str(k): int(v) for k, v in sorted(run.workers.items())},
    )


@dataclass(frozen=True)
class WorkerView:
    name: str
    hostname: str
    pid: int
    queues: list[str]
    models_loaded: list[str]
    batches_done: int
    current: str
    seen_at: datetime
    alive: bool


def worker_list(*, now: datetime | None = None) -> list[WorkerView]:
    """Every generation worker that has sent a heartbeat, alive if seen within `WORKER_STALE`."""
    cutoff = (now or timezone.now()) - WORKER_STALE
    return [
        WorkerView(
            name=w.name,
            hostname=w.hostname,
            pid=w.pid,
            queues=list(w.queues),
            models_loaded=list(w.models_loaded),
            batches_done=w.batches_done,
            current=w.current,
            seen_at=w.seen_at,
            alive=w.seen_at >= cutoff,
        )
        for w in WorkerHeartbeat.objects.order_by("name")
    ]
