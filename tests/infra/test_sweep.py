"""The sweep of crash leftovers: stored files no asset row references (real files, PostgreSQL),
flow runs left Running by a dead process (Prefect's local mode, real processes killed with
SIGKILL), the report recorded for the health page, and the command."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from django.core.management import CommandError, call_command
from django.db import connection, transaction
from django.test import Client
from django.urls import reverse
from prefect import flow
from prefect.client.orchestration import SyncPrefectClient, get_client
from prefect.client.schemas.objects import StateType
from prefect.states import Cancelled, Running

import infra.sweep
from infra.errors import SweepRefusedError
from infra.liveness import ASSETS_FLOW, CAMPAIGN_FLOW, LABEL_HOST, LABEL_PID, process_identity, process_labels
from infra.sweep import FILES_GRACE, RUNS_STALE, flow_runs_sweep, stored_files_sweep, sweep
from pipeline.finalize import master_path, thumbnail_path
from provenance.storage import LocalStorage
from review.audit import AuditAction
from review.models import Asset, AuditEvent
from review.states import AssetState
from tests.factories import AssetFactory, make_user
from tests.fixture_types import SettingsWrapper

OLD = timedelta(hours=7)  # older than the default grace (6 h)
ROOT = Path(__file__).resolve().parents[2]


def make_asset(state: str, **fields: object) -> Asset:
    made: Asset = AssetFactory.create(state=state, **fields)
    return made


def stored(storage: LocalStorage, relative: str, *, age: timedelta, data: bytes = b"signed bytes") -> Path:
    """A file stored as the pipeline stores it (atomic write), last modified `age` ago."""
    storage.write(relative, data)
    path = storage.path(relative)
    stamp = time.time() - age.total_seconds()
    os.utime(path, (stamp, stamp))
    return path


def crash_leftovers(storage: LocalStorage, asset: Asset, *, age: timedelta) -> tuple[Path, Path]:
    """What a run that died between storing an asset's files and handing them over leaves."""
    return (
        stored(storage, master_path(asset.key), age=age),
        stored(storage, thumbnail_path(asset.key), age=age),
    )


# -- stored files ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_leftovers_swept_a_crashed_runs_files_go_after_the_grace_referenced_and_young_ones_stay(
    tmp_path: Path,
) -> None:
    storage = LocalStorage(tmp_path / "storage")
    pending = make_asset(AssetState.PENDING)
    failed = make_asset(AssetState.FAILED, error="thumbnail: signing failed")
    reviewed = make_asset(AssetState.IN_REVIEW)
    reviewed.file_path, reviewed.thumb_path = master_path(reviewed.key), thumbnail_path(reviewed.key)
    reviewed.save()
    live = make_asset(AssetState.PENDING)  # a run storing it right now
    crashed_files = crash_leftovers(storage, pending, age=OLD)
    failed_master = stored(storage, master_path(failed.key), age=OLD)
    kept = crash_leftovers(storage, reviewed, age=OLD * 100)
    young = crash_leftovers(storage, live, age=timedelta(minutes=1))
    unknown = stored(storage, master_path("f" * 64, "mp4"), age=OLD)  # no row at all
    stale_part = stored(storage, f"masters/ab/.{'a' * 64}.png.x1y2.part", age=OLD)
    live_part = stored(storage, f"masters/ab/.{'b' * 64}.png.x3y4.part", age=timedelta(seconds=5))

    report = stored_files_sweep(storage_root=storage.root, grace=FILES_GRACE)

    for path in (*crashed_files, failed_master, unknown, stale_part):
        assert not path.exists(), path
    for path in (*kept, *young, live_part):
        assert path.exists(), path
    assert set(report.removed) == {
        master_path(pending.key),
        thumbnail_path(pending.key),
        master_path(failed.key),
        master_path("f" * 64, "mp4"),
    }
    assert report.temporary == (stale_part.relative_to(storage.root).as_posix(),)
    assert (report.removed_count, report.temporary_count, report.referenced, report.young, report.busy) == (
        4,
        1,
        2,
        3,
        0,
    )
    assert report.freed_bytes == 5 * len(b"signed bytes")
    # The rows are as they were: still pending or failed, so the next run makes them again.
    assert Asset.objects.get(pk=pending.pk).state == AssetState.PENDING
    assert Asset.objects.get(pk=failed.pk).state == AssetState.FAILED


@pytest.mark.django_db
def test_a_dry_run_names_the_leftovers_and_removes_nothing(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "storage")
    files = crash_leftovers(storage, make_asset(AssetState.PENDING), age=OLD)
    report = stored_files_sweep(storage_root=storage.root, grace=FILES_GRACE, dry_run=True)
    assert report.removed_count == 2 and report.dry_run
    assert all(path.exists() for path in files)


@pytest.mark.django_db
def test_a_file_a_run_stores_again_while_it_is_swept_is_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The sweep lists an old leftover; before it gets to it, a retry of the asset stores the
    file again (a new file at the same path). The new file stays."""
    storage = LocalStorage(tmp_path / "storage")
    asset = make_asset(AssetState.FAILED)
    master = stored(storage, master_path(asset.key), age=OLD, data=b"the crashed run's")
    listing = infra.sweep._stored_files

    def listed_then_stored_again(root: Path) -> Iterator[tuple[Path, float]]:
        for path, mtime in listing(root):
            yield path, mtime
            if path == master:
                storage.write(master_path(asset.key), b"the retry's")

    monkeypatch.setattr(infra.sweep, "_stored_files", listed_then_stored_again)
    report = stored_files_sweep(storage_root=storage.root, grace=FILES_GRACE)
    assert master.read_bytes() == b"the retry's"
    assert report.removed_count == 0 and report.young == 1
    assert not list(master.parent.glob(".*.sweep"))


@pytest.mark.django_db(transaction=True)
def test_files_of_a_row_a_hand_over_holds_locked_are_left_for_the_next_sweep(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "storage")
    asset = make_asset(AssetState.PENDING)
    files = crash_leftovers(storage, asset, age=OLD)
    locked, release = threading.Event(), threading.Event()

    def hand_over() -> None:
        try:
            with transaction.atomic():
                Asset.objects.select_for_update().get(pk=asset.pk)
                locked.set()
                release.wait(30)
        finally:
            connection.close()

    holder = threading.Thread(target=hand_over)
    holder.start()
    try:
        assert locked.wait(30)
        report = stored_files_sweep(storage_root=storage.root, grace=FILES_GRACE)
    finally:
        release.set()
        holder.join(30)
    assert (report.removed_count, report.busy) == (0, 2)
    assert all(path.exists() for path in files)
    assert stored_files_sweep(storage_root=storage.root, grace=FILES_GRACE).removed_count == 2


def test_a_grace_a_live_run_could_fall_inside_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SweepRefusedError) as err:
        stored_files_sweep(storage_root=tmp_path, grace=timedelta(seconds=30))
    assert err.value.field == "grace" and "must be at least 600 s" in str(err.value) and "'30 s'" in str(err.value)


# -- flow runs -------------------------------------------------------------------------------


@flow(name=CAMPAIGN_FLOW)
def campaign_stand_in() -> None:
    """Stands for infra.flows.campaign_run (same flow name) without importing the pipeline."""


@pytest.fixture
def prefect_client() -> Iterator[SyncPrefectClient]:
    with get_client(sync_client=True) as client:
        yield client


@pytest.fixture
def running_runs(prefect_client: SyncPrefectClient) -> Iterator[list[UUID]]:
    """Flow runs a test created Running; those still Running at the end are cancelled, so that
    they do not linger in the session's Prefect database."""
    made: list[UUID] = []
    yield made
    for run_id in made:
        if prefect_client.read_flow_run(run_id).state_type == StateType.RUNNING:
            prefect_client.set_flow_run_state(run_id, Cancelled(), force=True)


def running_run(client: SyncPrefectClient, made: list[UUID], labels: dict[str, Any]) -> UUID:
    run = client.create_flow_run(campaign_stand_in, state=Running())
    if labels:
        client.update_flow_run_labels(run.id, labels)
    made.append(run.id)
    return run.id


def dead_process_labels() -> dict[str, Any]:
    """The labels a flow run's process gave it, for a process that has since exited."""
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        identity = process_identity(child.pid)
    finally:
        child.kill()
        child.wait(10)
    return {**process_labels(), LABEL_PID: str(child.pid), "greenlight.process": identity}


def state_of(client: SyncPrefectClient, run_id: UUID) -> StateType | None:
    return client.read_flow_run(run_id).state_type


def test_a_running_flow_run_whose_process_died_is_marked_crashed_and_a_live_one_is_left(
    prefect_client: SyncPrefectClient, running_runs: list[UUID]
) -> None:
    dead = running_run(prefect_client, running_runs, dead_process_labels())
    live = running_run(prefect_client, running_runs, process_labels())
    remote = running_run(prefect_client, running_runs, {LABEL_HOST: "gpu-7.elsewhere", LABEL_PID: "4242"})
    unlabelled = running_run(prefect_client, running_runs, {})

    report = flow_runs_sweep(stale_after=RUNS_STALE)
    crashed = {UUID(run.id): run for run in report.crashed}
    assert set(crashed) & set(running_runs) == {dead}
    assert crashed[dead].marked and crashed[dead].flow == CAMPAIGN_FLOW
    assert "is gone" in crashed[dead].reason
    assert state_of(prefect_client, dead) == StateType.CRASHED
    assert "Swept: its process" in str(prefect_client.read_flow_run(dead).state.message)  # type: ignore[union-attr]
    for run_id in (live, remote, unlabelled):
        assert state_of(prefect_client, run_id) == StateType.RUNNING

    # An hour on, the runs nothing here can see (another host, no labels) have sent no
    # heartbeat: dead. The live process here is still alive, heartbeat or not.
    later = datetime.now(UTC) + timedelta(hours=1)
    report = flow_runs_sweep(stale_after=RUNS_STALE, now=later)
    crashed = {UUID(run.id): run for run in report.crashed}
    assert set(crashed) & set(running_runs) == {remote, unlabelled}
    assert "no sign of life for more than 0:15:00" in crashed[remote].reason
    assert state_of(prefect_client, remote) == StateType.CRASHED
    assert state_of(prefect_client, live) == StateType.RUNNING


def test_a_stale_after_shorter_than_two_heartbeats_is_refused() -> None:
    with pytest.raises(SweepRefusedError) as err:
        flow_runs_sweep(stale_after=timedelta(seconds=60))
    assert err.value.field == "stale_after" and "(got '60 s')" in str(err.value)


STUCK_FLOW = """
import sys, time
import infra.django_boot
import pipeline.run
from prefect.runtime import flow_run

def stuck(**_):
    print(flow_run.id, flush=True)
    time.sleep(300)

pipeline.run.assets_generate = stuck
from infra.flows import assets_generate
from pipeline.params import AssetsGenerateParams
assets_generate(AssetsGenerateParams(serials=[1], batch_size=1))
"""


def test_an_assets_generate_run_killed_with_its_process_is_marked_crashed(
    prefect_client: SyncPrefectClient, running_runs: list[UUID], tmp_path: Path
) -> None:
    """The real flow (its generation stubbed to hang) in a process of its own, against this
    test's Prefect server; SIGKILL leaves its run Running, and the sweep marks it Crashed."""
    from prefect.server.api.server import SubprocessASGIServer

    server = SubprocessASGIServer()  # the local server this test's client uses
    server.start()
    env = {**os.environ, "PREFECT_API_URL": server.api_url, "PYTHONPATH": str(ROOT)}
    log = tmp_path / "child.log"
    with log.open("wb") as errors:
        child = subprocess.Popen(
            [sys.executable, "-c", STUCK_FLOW], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=errors
        )
    deadline = threading.Timer(240, child.kill)  # a flow that never starts fails the test, in bounded time
    deadline.start()
    try:
        assert child.stdout is not None
        line = child.stdout.readline().decode().strip()  # the flow run's id, once it generates
        assert line, f"the flow did not start: {log.read_text()[-3000:]}"
        run_id = UUID(line)
        running_runs.append(run_id)
        run = prefect_client.read_flow_run(run_id)
        assert run.state_type == StateType.RUNNING
        assert run.labels[LABEL_PID] == str(child.pid)
        assert run_id not in {UUID(c.id) for c in flow_runs_sweep(stale_after=RUNS_STALE).crashed}
    finally:
        deadline.cancel()
        child.send_signal(signal.SIGKILL)
        child.wait(30)
    assert state_of(prefect_client, run_id) == StateType.RUNNING  # nothing is left to say it ended
    report = flow_runs_sweep(stale_after=RUNS_STALE)
    (found,) = [c for c in report.crashed if UUID(c.id) == run_id]
    assert found.flow == ASSETS_FLOW and found.marked and str(child.pid) in found.reason
    assert state_of(prefect_client, run_id) == StateType.CRASHED


# -- the whole sweep, its record and its command ---------------------------------------------


@pytest.mark.django_db
def test_the_sweep_records_its_report_and_the_health_page_shows_it(
    greenlight_settings: SettingsWrapper, client: Client
) -> None:
    storage = LocalStorage(greenlight_settings.GREENLIGHT_STORAGE_ROOT)
    asset = make_asset(AssetState.PENDING)
    crash_leftovers(storage, asset, age=OLD)

    report = sweep()
    assert report.errors == {}
    assert report.files is not None and report.files.removed_count == 2
    assert report.runs is not None and report.publications is not None
    event = AuditEvent.objects.get(action=AuditAction.SWEPT)
    assert event.asset is None and event.actor is None
    assert event.detail["files"]["removed"] == [master_path(asset.key), thumbnail_path(asset.key)]
    assert event.detail["runs"]["running"] == report.runs.running

    client.force_login(make_user(roles=("admin",)))
    html = client.get(reverse("review:health")).content.decode()
    assert master_path(asset.key) in html
    assert "2 no asset referenced" in html


@pytest.mark.django_db
def test_a_dry_run_records_nothing(greenlight_settings: SettingsWrapper) -> None:
    storage = LocalStorage(greenlight_settings.GREENLIGHT_STORAGE_ROOT)
    files = crash_leftovers(storage, make_asset(AssetState.FAILED), age=OLD)
    report = sweep(dry_run=True)
    assert report.files is not None and report.files.removed_count == 2
    assert report.publications is None
    assert all(path.exists() for path in files)
    assert not AuditEvent.objects.filter(action=AuditAction.SWEPT).exists()


@pytest.mark.django_db
def test_a_part_that_fails_is_reported_and_the_others_still_run(
    greenlight_settings: SettingsWrapper, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unreachable(**_: object) -> None:
        raise ConnectionError("Prefect did not answer")

    monkeypatch.setattr(infra.sweep, "flow_runs_sweep", unreachable)
    storage = LocalStorage(greenlight_settings.GREENLIGHT_STORAGE_ROOT)
    crash_leftovers(storage, make_asset(AssetState.PENDING), age=OLD)
    report = sweep()
    assert report.errors == {"runs": "ConnectionError: Prefect did not answer"}
    assert report.files is not None and report.files.removed_count == 2
    assert AuditEvent.objects.get(action=AuditAction.SWEPT).detail["errors"] == report.errors
    with pytest.raises(CommandError, match="the sweep of runs failed"):
        call_command("sweep", stdout=io.StringIO())


@pytest.mark.django_db
def test_the_command_prints_what_it_removed(greenlight_settings: SettingsWrapper) -> None:
    storage = LocalStorage(greenlight_settings.GREENLIGHT_STORAGE_ROOT)
    asset = make_asset(AssetState.PENDING)
    crash_leftovers(storage, asset, age=OLD)
    out = io.StringIO()
    call_command("sweep", "--dry-run", stdout=out)
    assert f"would remove {master_path(asset.key)}" in out.getvalue()
    call_command("sweep", stdout=out)
    assert f"removed {master_path(asset.key)}" in out.getvalue()
    assert "stored files: removed 2 unreferenced" in out.getvalue()
    assert not storage.exists(master_path(asset.key))


@pytest.mark.parametrize(
    ("option", "value", "named"), [("--grace-seconds", "60", "grace"), ("--stale-seconds", "٣٠٠", "--stale-seconds")]
)
@pytest.mark.django_db
def test_the_command_refuses_a_value_naming_it(option: str, value: str, named: str) -> None:
    with pytest.raises(CommandError, match=named):
        call_command("sweep", option, value, stdout=io.StringIO())
