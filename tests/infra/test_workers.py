"""Generation workers as real processes on a real Prefect server: batches travel as task runs
(`.delay()`) to task workers that keep the model loaded. A worker killed with SIGKILL in the
middle of a batch loses its lease, and another worker makes that batch: no asset lost, none made
twice, no file left over. A coordinator killed the same way is run again without duplicates."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast
from uuid import UUID

import pytest
from django.db import connection

from infra.coordinator import coordinate, prefect_dispatch
from prompt_library.models import Campaign
from prompt_library.services import library_load
from review.audit import AuditAction
from review.models import Asset, AuditEvent, Run, WorkerHeartbeat
from review.services.runs import campaign_run_start
from review.states import AssetState
from tests.factories import make_user
from tests.fixture_types import SettingsWrapper

ROOT = Path(__file__).resolve().parents[2]
LEASE = 6  # seconds: short, so a killed worker's batch is sent again soon
SUBMITTED: list[int] = []

pytestmark = pytest.mark.django_db(transaction=True)


def submit_record(*, run_id: int, priority: int) -> str:
    SUBMITTED.append(run_id)
    return "recorded"


@pytest.fixture(scope="module")
def prefect_api() -> Iterator[str]:
    """A Prefect server of its own (Prefect's subprocess server on this test session's home)."""
    from prefect.server.api.server import SubprocessASGIServer
    from prefect.settings import PREFECT_API_URL, temporary_settings

    server = SubprocessASGIServer()
    server.start(timeout=120)
    with temporary_settings({PREFECT_API_URL: server.api_url}):
        yield server.api_url
    server.stop()


@pytest.fixture
def setup(greenlight_settings: SettingsWrapper, library_dir: Path, prefect_api: str) -> dict[str, str]:
    """The library loaded, and the environment a worker process needs to share this test's
    database, storage, signing files and Prefect server."""
    greenlight_settings.GREENLIGHT_CAMPAIGN_RUN_SUBMIT = f"{__name__}.submit_record"
    greenlight_settings.GREENLIGHT_LEASE_SECONDS = LEASE
    SUBMITTED.clear()
    library_load()
    db = connection.settings_dict
    s = greenlight_settings
    return {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
        "PREFECT_API_URL": prefect_api,
        "PREFECT_LOGGING_TO_API_ENABLED": "false",
        "GREENLIGHT_LEASE_SECONDS": str(LEASE),
        "GREENLIGHT_STORAGE_ROOT": str(s.GREENLIGHT_STORAGE_ROOT),
        "GREENLIGHT_PUBLISH_ROOT": str(s.GREENLIGHT_PUBLISH_ROOT),
        "GREENLIGHT_SIGNING_CHAIN": str(s.GREENLIGHT_SIGNING_CHAIN),
        "GREENLIGHT_SIGNING_KEY": str(s.GREENLIGHT_SIGNING_KEY),
        "GREENLIGHT_TRUST_ANCHORS": str(s.GREENLIGHT_TRUST_ANCHORS),
        "GREENLIGHT_WATERMARK_KEYS_DIR": str(s.GREENLIGHT_WATERMARK_KEYS_DIR),
        "GREENLIGHT_LIBRARY_DIR": str(library_dir),
        "OMP_NUM_THREADS": "1",
    }


def worker_start(env: dict[str, str], name: str, model: str, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "infra.workers", "worker", "--name", name, "--models", model],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def workers_ready(names: list[str], procs: list[subprocess.Popen[bytes]], logs: list[Path], limit: float = 240) -> None:
    """Wait for each worker's first heartbeat (sent once its model is loaded)."""
    deadline = time.monotonic() + limit
    while WorkerHeartbeat.objects.filter(name__in=names).count() < len(names):
        for proc, log in zip(procs, logs, strict=True):
            assert proc.poll() is None, log.read_text()[-3000:]
        assert time.monotonic() < deadline, "workers never started"
        time.sleep(0.5)
    time.sleep(3)  # the task subscription opens just after the first heartbeat


def stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def stored(settings: SettingsWrapper) -> set[str]:
    root = Path(settings.GREENLIGHT_STORAGE_ROOT)
    files = {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()} if root.exists() else set()
    return {f for f in files if not f.startswith("sources/")}


def referenced() -> set[str]:
    return {p for a in Asset.objects.all() for p in (a.file_path, a.thumb_path) if p}


def all_made_once(run: Run) -> None:
    assets = list(Asset.objects.filter(run=run))
    assert {a.state for a in assets} == {AssetState.IN_REVIEW}
    for asset in assets:
        assert AuditEvent.objects.filter(asset=asset, action=AuditAction.GENERATED).count() == 1


def model_of(campaign: str) -> str:
    return str(Campaign.objects.get(name=campaign).prompt_version.model_name)


def test_a_worker_killed_mid_batch_has_its_batch_made_by_another_with_nothing_lost_or_doubled(
    setup: dict[str, str], greenlight_settings: SettingsWrapper, tmp_path: Path
) -> None:
    operator = make_user(("operator",))
    model = model_of("demo-spring")
    names = ["w1", "w2"]
    logs = [tmp_path / f"{n}.log" for n in names]
    procs = [worker_start(setup, n, model, log) for n, log in zip(names, logs, strict=True)]
    try:
        workers_ready(names, procs, logs)
        run = campaign_run_start(campaign=Campaign.objects.get(name="demo-spring"), actor=operator)
        killed: dict[str, Any] = {}

        def dispatch_and_kill(batch: Any) -> None:
            prefect_dispatch(batch)
            if killed:
                return
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:  # the first batch taken by a worker: kill that worker
                holder = (
                    Asset.objects.filter(pk__in=batch.serials)
                    .exclude(gen_worker="")
                    .values_list("gen_worker", flat=True)
                    .first()
                )
                if holder:
                    proc = procs[names.index(holder)]
                    os.kill(proc.pid, signal.SIGKILL)
                    proc.wait(10)
                    killed.update(name=holder, serials=list(batch.serials))
                    return
                time.sleep(0.05)

        outcome = coordinate(run_id=run.pk, batch_size=4, dispatch=dispatch_and_kill, max_in_flight=2, poll_seconds=0.2)
    finally:
        stop(procs)
    run.refresh_from_db()
    assert killed, "no worker took a batch"
    assert (outcome.state, run.state, run.done, run.failed) == ("succeeded", "succeeded", 12, 0)
    assert outcome.assets_resent >= 1
    survivor = next(n for n in names if n != killed["name"])
    # The killed worker's batch was made by the other one; every asset exactly once.
    assert run.workers.get(survivor, 0) >= len(killed["serials"])
    all_made_once(run)
    assert stored(greenlight_settings) == referenced() and len(referenced()) == 24


def test_a_coordinator_killed_mid_run_is_run_again_without_duplicates(
    setup: dict[str, str], greenlight_settings: SettingsWrapper, tmp_path: Path
) -> None:
    operator = make_user(("operator",))
    model = model_of("demo-spring")
    log = tmp_path / "w1.log"
    procs = [worker_start(setup, "w1", model, log)]
    try:
        workers_ready(["w1"], procs, [log])
        run = campaign_run_start(campaign=Campaign.objects.get(name="demo-spring"), actor=operator)
        env = {**setup, "GREENLIGHT_BATCH_SIZE": "2"}
        with (tmp_path / "coordinator.log").open("wb") as out:
            coordinator = subprocess.Popen(
                [sys.executable, "manage.py", "runs", "coordinate", str(run.pk)],
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 240
        while Run.objects.get(pk=run.pk).done < 2:  # a batch is in: kill the coordinator
            assert coordinator.poll() is None, (tmp_path / "coordinator.log").read_text()[-3000:]
            assert time.monotonic() < deadline
            time.sleep(0.2)
        coordinator.send_signal(signal.SIGKILL)
        coordinator.wait(10)
        assert Run.objects.get(pk=run.pk).state == "running"
        # Resumed in tasks of two batches each (``RunBatch.chunk``), as a served run sends them.
        outcome = coordinate(
            run_id=run.pk,
            batch_size=2,
            dispatch=prefect_dispatch,
            max_in_flight=4,
            batches_per_task=2,
            poll_seconds=0.2,
        )
    finally:
        stop(procs)
    run.refresh_from_db()
    assert (outcome.state, run.done, run.failed) == ("succeeded", 12, 0)
    all_made_once(run)
    assert stored(greenlight_settings) == referenced()


def test_loading_a_library_with_a_schedule_creates_the_campaigns_deployment_schedule(
    greenlight_settings: SettingsWrapper, library_dir: Path, prefect_api: str
) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.schedules import CronSchedule

    from infra.deployments import schedules_sync

    def crons(deployment: Any) -> list[str]:
        return [s.schedule.cron for s in deployment.schedules if isinstance(s.schedule, CronSchedule)]

    spring = library_dir / "campaigns" / "demo-spring.yaml"
    spring.write_text(spring.read_text() + 'schedule: {cron: "0 6 * * 1", timezone: Europe/Berlin}\n')
    catalog = library_dir / "campaigns" / "demo-catalog.yaml"
    catalog.write_text(catalog.read_text() + 'schedule: {cron: "30 7 * * *"}\nactive: false\n')
    library_load()
    assert schedules_sync() == ["campaign-scheduled/demo-catalog", "campaign-scheduled/demo-spring"]
    with get_client(sync_client=True) as client:
        spring_d = client.read_deployment_by_name("campaign-scheduled/demo-spring")
        catalog_d = client.read_deployment_by_name("campaign-scheduled/demo-catalog")
    (spring_s,) = spring_d.schedules
    assert isinstance(spring_s.schedule, CronSchedule) and spring_s.active
    assert (spring_s.schedule.cron, spring_s.schedule.timezone) == ("0 6 * * 1", "Europe/Berlin")
    assert spring_d.parameters == {"campaign": "demo-spring"} and not spring_d.paused
    assert catalog_d.paused and [crons(catalog_d)] == [["30 7 * * *"]]
    # The schedule changed in the file: loading again updates the same deployment.
    spring.write_text(spring.read_text().replace('"0 6 * * 1"', '"15 5 * * 2"'))
    library_load()
    schedules_sync()
    with get_client(sync_client=True) as client:
        again = client.read_deployment_by_name("campaign-scheduled/demo-spring")
    assert again.id == spring_d.id and crons(again) == ["15 5 * * 2"]


def test_the_campaign_run_command_hands_a_campaign_to_a_live_worker_and_waits_for_its_end(
    setup: dict[str, str], greenlight_settings: SettingsWrapper, tmp_path: Path
) -> None:
    command = [sys.executable, "manage.py", "campaign_run", "demo-spring", "--batch-size", "4"]
    # No worker serves the campaign's model yet: --on workers is refused, naming it.
    refused = subprocess.run(
        [*command, "--on", "workers"], cwd=ROOT, env=setup, capture_output=True, text=True, timeout=300
    )
    assert refused.returncode != 0
    assert f"no live generation worker serves {model_of('demo-spring')}" in refused.stderr
    assert not Run.objects.exists()

    log = tmp_path / "w1.log"
    procs = [worker_start(setup, "w1", model_of("demo-spring"), log)]
    try:
        workers_ready(["w1"], procs, [log])
        done = subprocess.run(command, cwd=ROOT, env=setup, capture_output=True, text=True, timeout=600)
    finally:
        stop(procs)
    assert done.returncode == 0, done.stderr[-3000:]
    (run,) = Run.objects.all()
    # The default (auto) took the live worker: the command process loaded no model.
    assert f"(run {run.pk}, made by the workers): 12 variants, 12 generated" in done.stdout
    assert "loaded model" not in done.stderr
    assert (run.state, run.done, run.failed, run.workers) == ("succeeded", 12, 0, {"w1": 12})
    all_made_once(run)
    assert log.read_text().count("batch asked=4 taken=4 handed=4") == 3
    assert stored(greenlight_settings) == referenced() and len(referenced()) == 24


def test_a_batch_sent_to_the_workers_carries_its_flow_run_and_not_the_senders_settings(prefect_api: str) -> None:
    """What a task worker reads back with a batch (the parameters Prefect stored for the deferred
    task run): its run id and serials, and the coordinator's flow run, but no Prefect settings
    for the worker to rebuild before making it (``infra.batch_tasks``)."""
    from prefect import flow, get_client
    from prefect.results import ResultStore, get_or_create_default_task_scheduling_storage
    from prefect.task_worker import read_parameters
    from prefect.utilities.asyncutils import run_coro_as_sync

    from infra.batch_tasks import batch_task

    task = batch_task("model-nobody-serves")  # its own task key: no worker takes the run

    @flow(name="batch-context-check")
    def send() -> tuple[str, str]:
        from prefect.runtime import flow_run

        return str(task.delay(41, [7, 8], 2).task_run_id), str(flow_run.id)

    task_run_id, flow_run_id = send()
    with get_client(sync_client=True) as client:
        task_run = client.read_task_run(UUID(task_run_id))
    parameters_id = task_run.state.state_details.task_parameters_id if task_run.state else None
    assert parameters_id is not None and str(task_run.flow_run_id) == flow_run_id

    async def stored() -> dict[str, Any]:
        storage = await get_or_create_default_task_scheduling_storage()
        store = await ResultStore(result_storage=cast(Any, storage)).aupdate_for_task(task)  # as Task.create_run
        return await read_parameters(store, parameters_id)

    data = run_coro_as_sync(stored())
    assert data is not None
    assert data["parameters"] == {"run_id": 41, "serials": [7, 8], "chunk": 2}
    assert data["context"]["settings_context"] == {}
    assert str(data["context"]["flow_run_context"]["flow_run"]["id"]) == flow_run_id
