"""The pipeline's one door into review: register variants as pending assets, hand their signed
files over into the review queue, record a failed generation, and read what is left to make.

`pipeline/` imports nothing else from `review/`. Every call is idempotent on the asset key, so a
crashed run's batch can be handed over again, by another worker, with nothing lost or doubled.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any

import psycopg
from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Count, Q
from django.utils import timezone

from prompt_library.models import Campaign, PromptVersion
from prompt_library.selectors import variants_build
from prompt_library.specs import Variant
from provenance.credentials import SignedManifest
from review.audit import AuditAction
from review.bulk import rows_insert, rows_update
from review.errors import AssetRebuildError, UnknownAssetsError
from review.events import asset_move, audit_event_build
from review.models import Asset, AuditEvent, ManifestRecord, Run, WorkerHeartbeat, queue_position
from review.states import AssetState

logger = logging.getLogger("greenlight.intake")

# States a run (re)generates: registered and never made, or made and failed.
TO_GENERATE = (AssetState.PENDING, AssetState.FAILED)


@dataclass(frozen=True)
class GeneratedFile:
    """A signed file the pipeline stored for a registered asset (paths relative to storage)."""

    key: str
    file_path: str
    thumb_path: str
    mime: str
    sha256: str
    size: int
    generation_record: dict[str, Any] = field(default_factory=dict)
    # The manifests signed for it (master, thumbnail), as read back: kept in the manifest store.
    manifests: tuple[SignedManifest, ...] = ()
    alt_text: str = ""  # with a captioning model: the description and its caption; "" keeps the variant's
    fingerprint: str = ""  # the master's content descriptor (`provenance.fingerprint`), checked by verify
    # The template's safety classifier's unsafe score (None: not scored) and whether it reached the threshold.
    safety_score: float | None = None
    safety_flagged: bool = False
    # The mark id its files carry: the asset's own, or one finalising drew where the picture
    # could not carry that (``pipeline.finalize``); None: not said (the asset's own stands).
    mark_id: int | None = None


@dataclass(frozen=True)
class AssetRef:
    """An asset's serial, mark id (what its watermark carries) and state, as the pipeline needs them."""

    key: str
    serial: int
    state: str
    mark_id: int

    @property
    def to_generate(self) -> bool:
        """Whether a run should (still) generate it: pending, or failed and retried."""
        return self.state in TO_GENERATE


def assets_register(*, variants: Sequence[Variant], regenerated_from: Asset | None = None) -> dict[str, AssetRef]:
    """Create a pending asset for each variant not yet known, idempotent on the asset key.

    Each row gets its serial (its primary key) and a random 40-bit mark id (``Asset.mark_id``,
    what its watermark carries), so it has to exist before the image is watermarked.
    `regenerated_from` links new rows to the asset they replace.
    """
    keys = [v.key for v in variants]
    for attempt in range(2):
        existing = {a.key: a for a in Asset.objects.filter(key__in=keys).only("id", "key", "state")}
        new = [v for v in variants if v.key not in existing]
        try:
            with transaction.atomic():
                ids = _lookups(new)
                rows = [_asset_row(v, ids) for v in new]
                for row in rows:
                    row.regenerated_from = regenerated_from
                rows_insert(rows)
                rows_insert([audit_event_build(a, AuditAction.REGISTERED, to_state=a.state) for a in rows])
            break
        except IntegrityError:
            # Another run registered some of the same keys at the same moment: read them again.
            if attempt:
                raise
    assets = {a.key: a for a in Asset.objects.filter(key__in=keys).only("id", "key", "state", "mark_id")}
    return {k: AssetRef(key=k, serial=a.pk, state=a.state, mark_id=a.mark_id) for k, a in assets.items()}


def _lookups(variants: Sequence[Variant]) -> dict[tuple[str, str, int], tuple[Campaign, int]]:
    """Campaign and prompt-version id for the variants, one query per distinct pair."""
    out: dict[tuple[str, str, int], tuple[Campaign, int]] = {}
    for v in variants:
        ident = (v.campaign, v.template, v.template_version)
        if ident not in out:
            campaign = Campaign.objects.only("id", "kind", "deadline").get(name=v.campaign)
            version_id = PromptVersion.objects.values_list("id", flat=True).get(
                template__name=v.template, number=v.template_version
            )
            out[ident] = (campaign, version_id)
    return out


def _asset_row(v: Variant, ids: dict[tuple[str, str, int], tuple[Campaign, int]]) -> Asset:
    campaign, version_id = ids[(v.campaign, v.template, v.template_version)]
    priority, deadline = queue_position(campaign)
    return Asset(
        key=v.key,
        campaign_id=campaign.pk,
        queue_priority=priority,
        queue_deadline=deadline,
        prompt_version_id=version_id,
        state=AssetState.PENDING,
        variables=dict(v.variables),
        prompt=v.prompt,
        negative_prompt=v.negative_prompt,
        seed=v.seed,
        steps=v.params.steps,
        guidance=v.params.guidance,
        width=v.output.width,
        height=v.output.height,
        model_name=v.model_name,
        model_manifest_hash=v.model_manifest_hash,
        alt_text=v.alt_text,
    )


@transaction.atomic
def assets_hand_over(*, files: Sequence[GeneratedFile], generation_seconds: float | None = None) -> list[int]:
    """Record stored files and put their assets in the review queue (idempotent).

    `generation_seconds` is each asset's share of its batch's generation time (the batch's seconds
    over its assets), kept with the hand-over time for the production dashboard's cost figures.

    Assets that are already past generation are left alone, so handing the same batch over twice
    changes nothing. Each file's signed manifests go into the manifest store in the same
    transaction. Returns the serials that entered the queue.
    """
    by_key = {f.key: f for f in files}
    assets = list(Asset.objects.select_for_update().filter(key__in=by_key).order_by("id"))
    missing = sorted(set(by_key) - {a.key for a in assets})
    if missing:
        raise UnknownAssetsError(missing)
    events: list[AuditEvent] = []
    moved: list[Asset] = []
    handed_at = timezone.now()
    for asset in assets:
        if asset.state not in (AssetState.PENDING, AssetState.FAILED):
            continue
        f = by_key[asset.key]
        asset.file_path, asset.thumb_path, asset.mime = f.file_path, f.thumb_path, f.mime
        asset.file_sha256, asset.file_size, asset.generation_record = f.sha256, f.size, f.generation_record
        asset.alt_text = f.alt_text or asset.alt_text
        asset.fingerprint = f.fingerprint
        asset.safety_score, asset.safety_flagged = f.safety_score, f.safety_flagged
        if f.mark_id is not None:
            asset.mark_id = f.mark_id
        asset.error = ""
        asset.generated_at, asset.generation_seconds = handed_at, generation_seconds
        asset.updated_at = handed_at
        events.append(asset_move(asset, AssetState.GENERATED, AuditAction.GENERATED, sha256=f.sha256))
        flag: dict[str, Any] = {"safety_flagged": True, "safety_score": f.safety_score} if f.safety_flagged else {}
        events.append(asset_move(asset, AssetState.IN_REVIEW, AuditAction.SUBMITTED, **flag))
        moved.append(asset)
    rows_update(moved, HANDED_OVER_FIELDS)  # one statement each (review.bulk)
    rows_insert(events)
    rows_insert([manifest_record_build(asset, m) for asset in moved for m in by_key[asset.key].manifests])
    return [a.pk for a in moved]


# What a hand-over writes on each asset row.
HANDED_OVER_FIELDS = (
    "file_path",
    "thumb_path",
    "mime",
    "file_sha256",
    "file_size",
    "generation_record",
    "alt_text",
    "fingerprint",
    "safety_score",
    "safety_flagged",
    "mark_id",
    "error",
    "generated_at",
    "generation_seconds",
    "state",
    "updated_at",
)


def manifest_record_build(asset: Asset, manifest: SignedManifest) -> ManifestRecord:
    return ManifestRecord(
        asset=asset,
        kind=manifest.kind,
        sha256=manifest.sha256,
        mime=manifest.mime,
        label=manifest.label,
        store=manifest.store,
    )


@transaction.atomic
def asset_generation_fail(*, key: str, error: str) -> None:
    """Record that generating an asset failed; it stays visible and a re-run retries it."""
    asset = Asset.objects.select_for_update().get(key=key)
    event = asset_move(asset, AssetState.FAILED, AuditAction.GENERATION_FAILED, error=error[:2000])
    asset.error = error[:10000]
    asset.save(update_fields=["state", "error", "updated_at"])
    event.save()


def keys_to_generate(*, keys: Sequence[str]) -> set[str]:
    """The keys a run still has to generate: never registered, or registered and pending or
    failed (read only; a run calls it before it registers anything)."""
    done = Asset.objects.filter(key__in=keys).exclude(state__in=TO_GENERATE).values_list("key", flat=True)
    return set(keys) - set(done)


def assets_pending_variants(*, serials: Sequence[int]) -> list[tuple[int, Variant]]:
    """The variant behind each registered asset still to be generated (pending or failed), by
    serial, rebuilt from its template version: what a run needs to generate registered assets.

    A rebuilt variant whose key differs from the asset's (its version's content changed under it)
    raises, rather than making a different image under the asset's serial.
    """
    rows = (
        Asset.objects.select_related("campaign", "prompt_version__template")
        .filter(pk__in=serials, state__in=TO_GENERATE)
        .order_by("prompt_version_id", "id")
    )
    out: list[tuple[int, Variant]] = []
    for row in rows:
        (variant,) = variants_build(
            campaign=row.campaign.name,
            version=row.prompt_version,
            values=row.variables,
            seeds=[row.seed],
            source_image=row.campaign.source_image,
        )
        if variant.key != row.key:
            raise AssetRebuildError(row.pk, variant.key)
        out.append((row.pk, variant))
    return out


# Campaign runs made by many workers (see review.services.runs for start, pause, resume, cancel).
# A worker takes a batch's assets under a lease that its heartbeat renews; another worker may
# take them only once the lease has run out, so a batch whose worker died is made again, and a
# batch whose worker lives is never made twice.

RUN_GOING = ("queued", "running")  # Run.State values in which batches are handed out


@dataclass(frozen=True)
class RunBatch:
    """A batch of a run to hand to a worker: the assets' serials, all on one model, made in model
    calls of at most ``chunk`` of them (0: all in one)."""

    run_id: int
    model_name: str
    serials: tuple[int, ...]
    chunk: int = 0

    def chunks(self) -> list[tuple[int, ...]]:
        """The serials as the worker makes them: one model batch after another."""
        return serials_chunked(self.serials, self.chunk)

    @property
    def batches(self) -> int:
        """How many model batches ``chunks`` makes (what the coordinator counts in flight)."""
        return len(self.chunks())


def serials_chunked(serials: Sequence[int], chunk: int) -> list[tuple[int, ...]]:
    """``serials`` in batches of at most ``chunk`` (0: one batch), in their order."""
    size = chunk if chunk > 0 else len(serials) or 1
    return [tuple(serials[i : i + size]) for i in range(0, len(serials), size)]


@dataclass(frozen=True)
class RunStatus:
    """What a run's coordinator needs to know between batches."""

    run_id: int
    state: str
    priority: int
    pending: int  # assets of the run still to be made
    unleased: int  # of those, how many no live worker holds
    total: int = 0  # assets the run was given


def run_begin(*, run_id: int, flow_run_id: str = "") -> RunStatus:
    """A coordinator starts (or resumes) the run: queued becomes running, the first start time and
    the flow run are recorded. Returns the run's status; only a going run hands out batches."""
    with transaction.atomic():
        run = Run.objects.select_for_update().get(pk=run_id)
        if run.state in RUN_GOING:
            run.state = Run.State.RUNNING
            run.started_at = run.started_at or timezone.now()
            run.flow_run_id = flow_run_id or run.flow_run_id
            run.save(update_fields=["state", "started_at", "flow_run_id"])
    return run_status(run_id=run_id)


def run_status(*, run_id: int, now: datetime | None = None) -> RunStatus:
    run = Run.objects.only("state", "priority", "total").get(pk=run_id)
    now = now or timezone.now()
    pending = Asset.objects.filter(run_id=run_id, state=AssetState.PENDING)
    unleased = pending.filter(Q(gen_lease_until__isnull=True) | Q(gen_lease_until__lt=now))
    return RunStatus(run_id, run.state, run.priority, pending.count(), unleased.count(), run.total)


def run_batches_plan(*, run_id: int, batch_size: int, serials: Sequence[int] | None = None) -> list[RunBatch]:
    """The run's pending assets (or those of `serials` still pending) that no live worker holds,
    in batches of at most `batch_size` sharing a model, oldest first."""
    now = timezone.now()
    rows = Asset.objects.filter(run_id=run_id, state=AssetState.PENDING).filter(
        Q(gen_lease_until__isnull=True) | Q(gen_lease_until__lt=now)
    )
    if serials is not None:
        rows = rows.filter(pk__in=list(serials))
    by_model: dict[str, list[int]] = {}
    for serial, model in rows.order_by("id").values_list("id", "model_name"):
        by_model.setdefault(model, []).append(serial)
    return [
        RunBatch(run_id, model, tuple(ids[i : i + batch_size]))
        for model, ids in by_model.items()
        for i in range(0, len(ids), batch_size)
    ]


def run_outranked(*, run_id: int) -> bool:
    """Whether another going run that comes first (a lower priority number) still has assets no
    worker holds: this run then waits before handing out its next batch."""
    me = Run.objects.only("priority").get(pk=run_id)
    now = timezone.now()
    return (
        Asset.objects.filter(run__state__in=RUN_GOING, run__priority__lt=me.priority, state=AssetState.PENDING)
        .filter(Q(gen_lease_until__isnull=True) | Q(gen_lease_until__lt=now))
        .exists()
    )


@dataclass(frozen=True)
class TakenAsset:
    """An asset a worker has taken to make: its serial, watermark id and variant."""

    serial: int
    mark_id: int
    variant: Variant


def run_batch_take(*, run_id: int, serials: Sequence[int], worker: str, lease_seconds: float) -> list[TakenAsset]:
    """Take a batch's assets for `worker`: those of a going run still pending and held by no live
    worker (or by this one) get a lease until now + `lease_seconds`. Returns their variants; an
    empty list when the run is paused or cancelled, or another worker has them."""
    now = timezone.now()
    with transaction.atomic():
        if not Run.objects.filter(pk=run_id, state__in=RUN_GOING).exists():
            return []
        free = Q(gen_lease_until__isnull=True) | Q(gen_lease_until__lt=now) | Q(gen_worker=worker)
        rows = list(
            Asset.objects.select_for_update(skip_locked=True)
            .filter(pk__in=list(serials), run_id=run_id, state=AssetState.PENDING)
            .filter(free)
            .values_list("id", flat=True)
        )
        Asset.objects.filter(pk__in=rows).update(
            gen_worker=worker, gen_lease_until=now + timedelta(seconds=lease_seconds)
        )
    marks = dict(Asset.objects.filter(pk__in=rows).values_list("id", "mark_id"))
    return [TakenAsset(serial, marks[serial], variant) for serial, variant in assets_pending_variants(serials=rows)]


def run_leases_expired_release(*, run_id: int) -> list[int]:
    """Free the run's pending assets whose lease has run out (their worker died mid-batch), so
    the coordinator sends them again; returns their serials."""
    with transaction.atomic():
        rows = list(
            Asset.objects.select_for_update(skip_locked=True)
            .filter(run_id=run_id, state=AssetState.PENDING, gen_lease_until__lt=timezone.now())
            .values_list("id", flat=True)
        )
        Asset.objects.filter(pk__in=rows).update(gen_worker="", gen_lease_until=None)
    return rows


def run_leases_renew(*, worker: str, serials: Sequence[int], lease_seconds: float) -> int:
    """Extend `worker`'s leases on `serials` (its heartbeat, while it makes them); returns how many."""
    return Asset.objects.filter(pk__in=list(serials), gen_worker=worker, state=AssetState.PENDING).update(
        gen_lease_until=timezone.now() + timedelta(seconds=lease_seconds)
    )


@dataclass(frozen=True)
class BatchHandOver:
    """What became of a batch a worker made: serials queued for review, serials recorded as failed,
    and the stored files nobody uses (their asset was cancelled, or made by another worker) for
    the worker to remove."""

    handed: tuple[int, ...]
    failed: tuple[int, ...]
    unused: tuple[GeneratedFile, ...]


def run_batch_hand_over(
    *,
    run_id: int,
    worker: str,
    files: Sequence[GeneratedFile],
    failures: Sequence[tuple[str, str]],
    generation_seconds: float | None = None,
) -> BatchHandOver:
    """Hand a worker's batch over (idempotent on the asset key), record its failures on assets
    still pending, release the leases, and count the run's progress. Ends the run when nothing is
    left to make. Files whose asset was cancelled meanwhile are returned as unused."""
    with transaction.atomic():
        keys = [f.key for f in files] + [k for k, _ in failures]
        locked = {
            a.key: a
            for a in Asset.objects.select_for_update().filter(key__in=keys).only("id", "key", "state", "file_path")
        }
        takeable = [f for f in files if f.key in locked and locked[f.key].state in TO_GENERATE]
        handed = assets_hand_over(files=takeable, generation_seconds=generation_seconds) if takeable else []
        failed: list[int] = []
        for key, error in failures:
            asset = locked.get(key)
            if asset is not None and asset.state == AssetState.PENDING:
                asset_generation_fail(key=key, error=error)
                failed.append(asset.pk)
        Asset.objects.filter(key__in=keys, gen_worker=worker).update(gen_worker="", gen_lease_until=None)
        unused = tuple(
            f for f in files if f not in takeable and (f.key not in locked or locked[f.key].file_path != f.file_path)
        )
        run = Run.objects.select_for_update().get(pk=run_id)
        if handed:
            run.workers = {**run.workers, worker: int(run.workers.get(worker, 0)) + len(handed)}
            run.save(update_fields=["workers"])
        run_counts_refresh(run_id=run_id)
        run_finish_check(run_id=run_id)
        run_changed_notify(run_id=run_id)
    return BatchHandOver(tuple(handed), tuple(failed), unused)


# The PostgreSQL channel a run's changes are announced on (the payload: the run's id).
RUN_CHANGED_CHANNEL = "greenlight_run_changed"


def run_changed_notify(*, run_id: int) -> None:
    """Announce that the run changed (a batch handed over, the run paused or cancelled), so that
    its coordinator looks at it now rather than at its next poll (``RunChanges``). A PostgreSQL
    NOTIFY: sent when the surrounding transaction commits, never when it rolls back. Elsewhere
    (a SQLite demo) nothing is sent; the coordinator's polls find the change anyway."""
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_notify(%s, %s)", [RUN_CHANGED_CHANNEL, str(run_id)])


class RunChanges:
    """A wait for one run's changes (``run_changed_notify``) that a change ends early: what a
    run's coordinator waits on between two looks at the run.

    It LISTENs on a PostgreSQL connection of its own (autocommit, opened with the database's
    settings), so a batch handed over wakes the coordinator within milliseconds instead of at its
    next poll: the worker's next batch is sent at once, and the run's end is seen at once. The
    database stays the record; a wake-up only says "look now". Without PostgreSQL, behind a
    transaction-pooling PgBouncer (``DB_TRANSACTION_POOLING``: a LISTEN needs a session of its
    own, which such a pool does not keep), or once its connection fails, ``wait`` is a plain
    sleep (the polls still find every change).
    """

    def __init__(self, run_id: int) -> None:
        self.run_id = run_id
        self._listener: Any = None

    def __enter__(self) -> RunChanges:
        if connection.vendor == "postgresql" and not getattr(settings, "DB_TRANSACTION_POOLING", False):
            try:
                listener = psycopg.connect(**connection.get_connection_params(), autocommit=True)
                listener.execute(psycopg.sql.SQL("LISTEN {}").format(psycopg.sql.Identifier(RUN_CHANGED_CHANNEL)))
            except psycopg.Error as error:
                logger.warning("run=%s no change notifications (%s): polling only", self.run_id, error)
            else:
                self._listener = listener
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()

    @property
    def listening(self) -> bool:
        """Whether changes are announced now (else ``wait`` only sleeps)."""
        return self._listener is not None

    def wait(self, seconds: float) -> bool:
        """Wait up to ``seconds``; True as soon as this run's change is announced (announcements
        of other runs do not end it), False when the time is up."""
        deadline = time.monotonic() + seconds
        payload = str(self.run_id)
        while (left := deadline - time.monotonic()) > 0:
            if self._listener is None:
                time.sleep(left)
                return False
            try:
                for note in self._listener.notifies(timeout=left, stop_after=1):
                    if note.payload == payload:
                        return True
            except psycopg.Error as error:  # the connection broke: sleep out the rest, poll from now on
                logger.warning("run=%s change notifications lost (%s): polling only", self.run_id, error)
                self._listener.close()
                self._listener = None
        return False


def run_counts_refresh(*, run_id: int) -> None:
    """Count the run's assets by state into its done / failed / cancelled (idempotent: counted,
    never incremented, so a batch handed over twice is counted once)."""
    made = (AssetState.PENDING, AssetState.FAILED, AssetState.CANCELLED)
    counts = dict(
        Asset.objects.filter(run_id=run_id).values_list("state").annotate(n=Count("id")).values_list("state", "n")
    )
    Run.objects.filter(pk=run_id).update(
        done=sum(n for state, n in counts.items() if state not in made),
        failed=counts.get(AssetState.FAILED, 0),
        cancelled=counts.get(AssetState.CANCELLED, 0),
    )


def run_finish_check(*, run_id: int) -> str:
    """End a running run with nothing pending: succeeded, or failed when some assets failed (each
    with its error). Returns the run's state."""
    with transaction.atomic():
        run = Run.objects.select_for_update().get(pk=run_id)
        if run.state != Run.State.RUNNING or Asset.objects.filter(run_id=run_id, state=AssetState.PENDING).exists():
            return str(run.state)
        run_counts_refresh(run_id=run_id)
        run.refresh_from_db(fields=["done", "failed", "cancelled"])
        run.state = Run.State.FAILED if run.failed else Run.State.SUCCEEDED
        run.finished_at = timezone.now()
        run.save(update_fields=["state", "finished_at"])
        audit_event_build(
            None,
            AuditAction.RUN_FINISHED,
            to_state=run.state,
            run=run.pk,
            done=run.done,
            failed=run.failed,
            cancelled=run.cancelled,
        ).save()
    return str(run.state)


def run_fail(*, run_id: int, error: str) -> None:
    """Record a coordinator's own failure on the run (its assets keep their states; a resume goes on)."""
    Run.objects.filter(pk=run_id).update(error=error[:2000])


def worker_heartbeat_record(
    *,
    name: str,
    hostname: str,
    pid: int,
    queues: Sequence[str],
    models_loaded: Sequence[str],
    batches_done: int,
    current: str,
) -> None:
    """A worker's sign of life, every few seconds (the Campaigns page shows them)."""
    WorkerHeartbeat.objects.update_or_create(
        name=name,
        defaults={
            "hostname": hostname,
            "pid": pid,
            "queues": list(queues),
            "models_loaded": list(models_loaded),
            "batches_done": batches_done,
            "current": current[:200],
            "seen_at": timezone.now(),
        },
        create_defaults={
            "hostname": hostname,
            "pid": pid,
            "queues": list(queues),
            "models_loaded": list(models_loaded),
            "batches_done": batches_done,
            "current": current[:200],
            "started_at": timezone.now(),
            "seen_at": timezone.now(),
        },
    )
