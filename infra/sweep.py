"""Crash leftovers, swept: what a process that died mid-work leaves behind, found and cleared.

- Stored files no asset row references (`stored_files_sweep`): a run stores an asset's signed
  master and thumbnail, then hands them over; a crash in between leaves files whose row is still
  pending (or failed: a thumbnail that failed after its master was stored). They are removed,
  not re-linked: re-linking would hand over a file outside the run that made it (rebuilding the
  hand-over's manifests and alt text, and re-admitting a file whose generation was recorded as
  failed), while the row's next run regenerates it under the same path anyway. Abandoned partial
  writes (`.part`) go too. Only files older than the grace are touched: a live run's are young.
- Flow runs left Running by a process that died (`flow_runs_sweep`): marked Crashed. A run on
  this host is judged by its process (`infra.liveness`: the labels each flow gives its run); a
  run elsewhere, or unlabelled, by Prefect's heartbeat events. Its assets stay pending or failed,
  and the next run generates them.
- Publications a dead process left `writing` (`review.services.publications_sweep`).

`sweep` runs all three and records its report as an audit event (`swept`), which the
dashboard's health page reads; `manage.py sweep` runs it (at start-up, and from a timer).
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path, PurePosixPath
from typing import Any

from django.db import transaction

from infra.errors import SweepRefusedError
from infra.liveness import LABEL_HOST, LABEL_PID, SWEPT_FLOWS, process_alive
from pipeline.finalize import MASTERS_DIR, THUMBNAILS_DIR
from review.models import Asset
from review.services import PUBLISH_GRACE, publications_sweep

FILES_GRACE = timedelta(hours=6)  # longer than any batch takes from storing a file to handing it over
FILES_GRACE_MIN = timedelta(minutes=10)
RUNS_STALE = timedelta(minutes=15)  # five of Prefect's default heartbeats (180 s) missed
LISTED = 50  # paths and runs a report names; its counts are exact
CHUNK = 500  # files checked against the asset table per query (and per transaction)
TEMPORARY = (".part", ".sweep")  # a write in progress (provenance.storage), a removal in progress (here)
HEARTBEAT = "prefect.flow-run.heartbeat"


def _now(now: datetime | None) -> datetime:
    return now or datetime.now(UTC)


def _seconds(span: timedelta) -> str:
    return f"{span.total_seconds():g} s"


@dataclass(frozen=True)
class FilesSweep:
    """What the stored-files sweep removed (paths relative to the storage root) and kept."""

    removed: tuple[str, ...] = ()  # masters and thumbnails no asset row references
    removed_count: int = 0
    temporary: tuple[str, ...] = ()  # partial writes abandoned by a process that died
    temporary_count: int = 0
    freed_bytes: int = 0
    referenced: int = 0  # old files an asset row references: kept
    young: int = 0  # files younger than the grace: kept (a live run may hand them over yet)
    busy: int = 0  # files whose asset row another transaction held: left for the next sweep
    dry_run: bool = False

    def line(self) -> str:
        verb = "would remove" if self.dry_run else "removed"
        return (
            f"stored files: {verb} {self.removed_count} unreferenced and {self.temporary_count} partial "
            f"({self.freed_bytes:,} bytes); kept {self.referenced} referenced, {self.young} young, {self.busy} busy"
        )


@dataclass(frozen=True)
class CrashedRun:
    """A flow run found Running whose process is gone, and why it was judged so."""

    id: str
    name: str
    flow: str
    reason: str
    marked: bool  # False in a dry run, or when Prefect refused (the run ended meanwhile)


@dataclass(frozen=True)
class RunsSweep:
    """What the flow-runs sweep found: Running runs of this project's flows, and the dead ones."""

    running: int = 0
    crashed: tuple[CrashedRun, ...] = ()
    dry_run: bool = False

    def line(self) -> str:
        verb = "would mark" if self.dry_run else "marked"
        marked = sum(run.marked for run in self.crashed) if not self.dry_run else len(self.crashed)
        return f"flow runs: {self.running} running, {verb} {marked} crashed" + "".join(
            f"\n  {run.flow} {run.name} ({run.id}): {run.reason}" + ("" if run.marked or self.dry_run else " [refused]")
            for run in self.crashed
        )


@dataclass(frozen=True)
class SweepReport:
    """One sweep: each part's report (None when it did not run) and each part's error."""

    started_at: datetime
    seconds: float
    dry_run: bool
    files: FilesSweep | None = None
    runs: RunsSweep | None = None
    publications: dict[str, Any] | None = None
    errors: dict[str, str] = field(default_factory=dict)

    def detail(self) -> dict[str, Any]:
        """The report as JSON: what the audit event keeps and the health page shows."""
        return {
            "started_at": self.started_at.isoformat(),
            "seconds": round(self.seconds, 3),
            "dry_run": self.dry_run,
            "files": asdict(self.files) if self.files else None,
            "runs": asdict(self.runs) if self.runs else None,
            "publications": self.publications,
            "errors": dict(self.errors),
        }

    def lines(self) -> list[str]:
        out = [self.files.line() if self.files else "stored files: not swept"]
        out.append(self.runs.line() if self.runs else "flow runs: not swept")
        if self.publications is None:
            out.append("publications: not swept" + (" (no dry run: it rolls back or does nothing)" * self.dry_run))
        else:
            pub = self.publications
            out.append(
                f"publications: rolled back {len(pub.get('rolled_back', ()))} rendition row(s) of "
                f"{len(pub.get('assets', ()))} asset(s), removed {len(pub.get('removed', ()))} file(s); "
                f"busy {len(pub.get('busy', ()))}, failed {len(pub.get('failed', ()))}"
            )
        out += [f"error in {part}: {text}" for part, text in self.errors.items()]
        return out


# -- stored files ----------------------------------------------------------------------------


def stored_files_sweep(
    *, storage_root: Path, grace: timedelta, now: datetime | None = None, dry_run: bool = False
) -> FilesSweep:
    """Remove the masters and thumbnails under `storage_root` that no asset row references and
    that are older than `grace`, and partial writes older than it; never a referenced file.

    Files are named by their asset's key (`pipeline.finalize`), so each is checked against its
    row on the key's unique index, a chunk at a time, under the rows' locks (a hand-over running
    now holds them: its files are skipped, `busy`). A file is moved aside before it is removed
    and put back if it turns out to have been written since it was looked at.
    """
    _grace_check(grace)
    root = Path(storage_root)
    cutoff = (_now(now) - grace).timestamp()
    tally = _Tally()
    chunk: list[str] = []
    for path, mtime in _stored_files(root):
        if mtime > cutoff:
            tally.young += 1
        elif path.name.startswith(".") and path.name.endswith(TEMPORARY):
            size = _size(path) if dry_run else _remove(path)
            if size is not None:
                tally.note_temporary(path.relative_to(root).as_posix(), size)
        else:
            chunk.append(path.relative_to(root).as_posix())
            if len(chunk) >= CHUNK:
                _chunk_sweep(root, chunk, cutoff, tally, dry_run=dry_run)
                chunk = []
    if chunk:
        _chunk_sweep(root, chunk, cutoff, tally, dry_run=dry_run)
    return tally.report(dry_run=dry_run)


def _grace_check(grace: timedelta) -> None:
    if grace < FILES_GRACE_MIN:
        minimum = FILES_GRACE_MIN.total_seconds()
        raise SweepRefusedError(
            "grace", _seconds(grace), f"must be at least {minimum:g} s (a live run's files are young)"
        )


@dataclass
class _Tally:
    removed: list[str] = field(default_factory=list)
    removed_count: int = 0
    temporary: list[str] = field(default_factory=list)
    temporary_count: int = 0
    freed_bytes: int = 0
    referenced: int = 0
    young: int = 0
    busy: int = 0

    def note_removed(self, relative: str, size: int) -> None:
        self.removed_count += 1
        self.freed_bytes += size
        if len(self.removed) < LISTED:
            self.removed.append(relative)

    def note_temporary(self, relative: str, size: int) -> None:
        self.temporary_count += 1
        self.freed_bytes += size
        if len(self.temporary) < LISTED:
            self.temporary.append(relative)

    def report(self, *, dry_run: bool) -> FilesSweep:
        return FilesSweep(
            removed=tuple(self.removed),
            removed_count=self.removed_count,
            temporary=tuple(self.temporary),
            temporary_count=self.temporary_count,
            freed_bytes=self.freed_bytes,
            referenced=self.referenced,
            young=self.young,
            busy=self.busy,
            dry_run=dry_run,
        )


def _stored_files(root: Path) -> Iterator[tuple[Path, float]]:
    """Every file under the run's folders of the storage root, with its modification time."""
    for top in (MASTERS_DIR, THUMBNAILS_DIR):
        for directory, _, names in os.walk(root / top):
            for name in sorted(names):
                path = Path(directory) / name
                try:
                    yield path, path.stat().st_mtime
                except FileNotFoundError:
                    continue  # removed since it was listed


def _chunk_sweep(root: Path, relatives: Sequence[str], cutoff: float, tally: _Tally, *, dry_run: bool) -> None:
    """Remove the files of `relatives` (all older than `cutoff`) that no asset row references.

    A row's paths, once handed over, are never taken back, so a file a row references is kept
    on a plain read; only the rows of the others are locked (and read again) while their files
    go, so a reviewer's claim or decision on a referenced asset never waits for a sweep. A row
    another transaction holds (a hand-over under way) keeps its files until the next sweep.
    """

    def key_of(relative: str) -> str:
        return PurePosixPath(relative).name.split(".", 1)[0]

    def paths(rows: Iterable[tuple[str, str, str]]) -> dict[str, set[str]]:
        return {key: {path for path in (file_path, thumb_path) if path} for key, file_path, thumb_path in rows}

    fields = ("key", "file_path", "thumb_path")
    known = paths(Asset.objects.filter(key__in={key_of(rel) for rel in relatives}).values_list(*fields))
    candidates = [rel for rel in relatives if rel not in known.get(key_of(rel), ())]
    tally.referenced += len(relatives) - len(candidates)
    if not candidates:
        return
    with transaction.atomic():
        keys = {key_of(rel) for rel in candidates}
        locked = paths(Asset.objects.select_for_update(skip_locked=True).filter(key__in=keys).values_list(*fields))
        for rel in candidates:
            key = key_of(rel)
            if key in known and key not in locked:
                tally.busy += 1
            elif rel in locked.get(key, ()):
                tally.referenced += 1  # handed over since the read above
            else:
                path = root / rel
                size = _size(path) if dry_run else _remove(path, cutoff=cutoff)
                if size is not None:
                    tally.note_removed(rel, size)
                else:
                    tally.young += 1  # written again since it was listed (or gone already)


def _size(path: Path) -> int | None:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return None


def _remove(path: Path, *, cutoff: float | None = None) -> int | None:
    """Remove the file at `path` if it is (still) older than `cutoff`; returns the bytes freed,
    or None when it was kept or already gone.

    The file is first renamed aside (atomic): whatever was at the path is then ours alone. If it
    is younger than `cutoff`, a run wrote it since it was listed, and it goes back (unless an even
    newer file took the path meanwhile, which then stands).
    """
    aside = path.with_name(f".{path.name}.{secrets.token_hex(4)}.sweep")
    try:
        os.rename(path, aside)
    except FileNotFoundError:
        return None
    stat = aside.stat()
    if cutoff is not None and stat.st_mtime > cutoff:
        try:
            os.link(aside, path)
        except FileExistsError:
            pass  # a newer file took the path: it stands, and this older one goes
        except OSError:  # no hard links here: rename back, unless a newer file took the path
            if not path.exists():
                os.rename(aside, path)
                return None
        aside.unlink()
        return None
    aside.unlink()
    return stat.st_size


# -- flow runs -------------------------------------------------------------------------------


def flow_runs_sweep(*, stale_after: timedelta, now: datetime | None = None, dry_run: bool = False) -> RunsSweep:
    """Mark Crashed the Running flow runs of this project's flows whose process is gone.

    Dead: the run's labels name a process on this host that no longer exists (or a PID now held
    by another process); or, for a run elsewhere or unlabelled, Prefect has had no heartbeat from
    it for `stale_after` (nor has it been Running that long without one). The state is proposed,
    not forced: a run that ended since it was read keeps its own end.
    """
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        FlowFilter,
        FlowFilterName,
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import FlowRun, State, StateType
    from prefect.client.schemas.responses import SetStateStatus
    from prefect.states import Crashed

    heartbeat = _stale_check(stale_after)
    when = _now(now)
    crashed: list[CrashedRun] = []
    ours = FlowFilter(name=FlowFilterName(any_=list(SWEPT_FLOWS)))
    running = FlowRunFilter(state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.RUNNING])))
    with get_client(sync_client=True) as client:
        flows = {f.id: f.name for f in client.read_flows(flow_filter=ours)}
        runs: list[FlowRun] = []
        while flows:
            page = client.read_flow_runs(flow_filter=ours, flow_run_filter=running, limit=200, offset=len(runs))
            runs += page
            if len(page) < 200:
                break
        for run in runs:
            reason = _run_dead(client, run, stale_after=stale_after, now=when, heartbeat=bool(heartbeat))
            if reason is None:
                continue
            marked = False
            if not dry_run:
                proposed: State[Any] = Crashed(message=f"Swept: {reason}")
                marked = client.set_flow_run_state(run.id, proposed).status == SetStateStatus.ACCEPT
            crashed.append(
                CrashedRun(id=str(run.id), name=run.name, flow=flows.get(run.flow_id, ""), reason=reason, marked=marked)
            )
    return RunsSweep(running=len(runs), crashed=tuple(crashed), dry_run=dry_run)


def _stale_check(stale_after: timedelta) -> int | None:
    """Prefect's heartbeat interval (None when heartbeats are off); refuses a `stale_after` that
    two heartbeats would not fit in."""
    from prefect.settings import get_current_settings

    heartbeat = get_current_settings().flows.heartbeat_frequency
    if heartbeat and stale_after < timedelta(seconds=2 * heartbeat):
        problem = f"must be at least two heartbeats ({2 * heartbeat} s): a live run would be marked"
        raise SweepRefusedError("stale_after", _seconds(stale_after), problem)
    return heartbeat


def _run_dead(client: Any, run: Any, *, stale_after: timedelta, now: datetime, heartbeat: bool) -> str | None:
    """Why a Running flow run is dead, or None while it may be alive."""
    alive = process_alive(run.labels)
    if alive is False:
        return f"its process {run.labels.get(LABEL_PID)} on {run.labels.get(LABEL_HOST)} is gone"
    if alive or not heartbeat:
        return None
    from prefect.events.filters import EventFilter, EventNameFilter, EventOccurredFilter, EventResourceFilter

    since = run.state.timestamp if run.state and run.state.timestamp else run.start_time or now
    page = client.read_events(
        EventFilter(
            occurred=EventOccurredFilter.model_validate({"since": since, "until": now}),
            event=EventNameFilter(name=[HEARTBEAT]),
            resource=EventResourceFilter(id=[f"prefect.flow-run.{run.id}"]),
        ),
        limit=1,
    )
    last = page.events[0].occurred if page.events else since
    if now - last <= stale_after:
        return None
    seen = "last heartbeat" if page.events else "running since, no heartbeat"
    return f"no sign of life for more than {stale_after} ({seen} {last:%Y-%m-%d %H:%M:%S} UTC)"


# -- all of it -------------------------------------------------------------------------------


def sweep(
    *,
    storage_root: Path | None = None,
    grace: timedelta = FILES_GRACE,
    stale_after: timedelta = RUNS_STALE,
    publish_grace: timedelta | None = None,
    now: datetime | None = None,
    dry_run: bool = False,
) -> SweepReport:
    """Sweep stored files, flow runs and publications, and record the report as an audit event.

    A part that fails (Prefect unreachable, a folder unreadable) is reported with its error and
    the others still run. A dry run changes nothing and records nothing; the publications sweep,
    which has no dry run, is left out of it.
    """
    from django.conf import settings

    from review.services.health import sweep_record

    started, clock = _now(now), time.perf_counter()
    root = Path(storage_root or settings.GREENLIGHT_STORAGE_ROOT)
    _grace_check(grace)
    _stale_check(stale_after)
    errors: dict[str, str] = {}
    files = _part(errors, "files", lambda: stored_files_sweep(storage_root=root, grace=grace, now=now, dry_run=dry_run))
    runs = _part(errors, "runs", lambda: flow_runs_sweep(stale_after=stale_after, now=now, dry_run=dry_run))
    publications = None if dry_run else _part(errors, "publications", lambda: _publications(publish_grace, now))
    report = SweepReport(
        started_at=started,
        seconds=time.perf_counter() - clock,
        dry_run=dry_run,
        files=files,
        runs=runs,
        publications=publications,
        errors=errors,
    )
    if not dry_run:
        sweep_record(detail=report.detail())
    return report


def _publications(grace: timedelta | None, now: datetime | None) -> dict[str, Any]:
    return asdict(publications_sweep(grace=PUBLISH_GRACE if grace is None else grace, now=now))


def _part(errors: dict[str, str], name: str, work: Any) -> Any:
    """Run one part of the sweep; its error is reported, and the other parts still run."""
    try:
        return work()
    except SweepRefusedError:
        raise
    except Exception as exc:
        errors[name] = f"{type(exc).__name__}: {exc}"[:2000]
        return None
