"""A warm worker's batch is post-processed as a run's is: the plan for its model's device
(``pipeline.batches.model_finalize_plan``, the one a run uses) says whether the batch is finished
beside the next one's generation and on how many threads. Whatever thread a batch arrives on, it
is made in the worker's model thread, where its model was loaded."""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from django.db import connections
from PIL import Image

from pipeline import work as work_module
from pipeline.batches import FinalizePlan, batch_finalize, model_finalize_plan
from pipeline.config import config_from_settings
from pipeline.generate import Beside
from pipeline.work import Warm, batch_work
from prompt_library.models import Campaign
from prompt_library.services import library_load
from provenance.credentials import c2pa_read, reader_context
from provenance.storage import LocalStorage
from provenance.watermark import watermark_read
from review.intake import run_batches_plan, run_begin
from review.models import Asset, AssetState
from review.services.runs import campaign_run_start
from tests.factories import make_user
from tests.fixture_types import SettingsWrapper
from tests.provenance.marks import installation_key

# A batch finished beside generation is handed over from the worker's finishing thread, on its own
# database connection: it must see what the test wrote, so the test's writes are committed.
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_torch_thread: None) -> None:
    """Every test here runs on one torch thread (tests/conftest.py)."""


class FinalizeCalls:
    """Records the thread and the ``threads`` of each ``batch_finalize`` call the worker makes,
    and makes the call itself: the batch is really watermarked, signed and stored."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int]] = []

    def __call__(self, *args: Any, threads: int = 1, **kwargs: Any) -> Any:
        self.calls.append((threading.current_thread().name, threads))
        return batch_finalize(*args, threads=threads, **kwargs)


def run_started(batch_size: int) -> tuple[int, list[Sequence[int]]]:
    """A run of the demo-spring campaign (12 variants), begun, and its batches' serials."""
    library_load()
    run = campaign_run_start(
        campaign=Campaign.objects.get(name="demo-spring"), actor=make_user(("operator",)), submit=False
    )
    run_begin(run_id=run.pk)
    return run.pk, [batch.serials for batch in run_batches_plan(run_id=run.pk, batch_size=batch_size)]


@pytest.fixture
def finalize(monkeypatch: pytest.MonkeyPatch) -> FinalizeCalls:
    """The worker's ``batch_finalize``, recorded (``FinalizeCalls``)."""
    calls = FinalizeCalls()
    monkeypatch.setattr(work_module, "batch_finalize", calls)
    return calls


@pytest.fixture
def warm_workers() -> Iterator[list[Warm]]:
    """The warm workers a test makes, their finishing threads' database connections closed and
    the threads stopped after it (the test database is dropped after the session)."""
    made: list[Warm] = []
    yield made
    for warm in made:
        warm.flush()
        for pool in (warm._finisher, warm._model_pool):
            if pool is not None:
                pool.submit(connections.close_all).result()
                pool.shutdown()


def warm_worker(
    made: list[Warm], settings: SettingsWrapper, *, overlap: bool, finalize: FinalizePlan | None = None
) -> Warm:
    warm = Warm(
        name="test-worker",
        config=config_from_settings(),
        lease_seconds=float(settings.GREENLIGHT_LEASE_SECONDS),
        overlap=overlap,
        finalize=finalize,
    )
    made.append(warm)
    return warm


@pytest.mark.parametrize(
    ("overlap", "plan", "beside"),
    [
        (True, FinalizePlan(overlap=True, threads=2, reason="beside generation"), True),
        (True, FinalizePlan(overlap=False, threads=2, reason="between batches"), False),
        # The worker started with --no-overlap finishes each batch itself, whatever the plan;
        # with nothing generating meanwhile, on the cores a plan leaves to generation too.
        (False, FinalizePlan(overlap=True, threads=2, reason="beside generation"), False),
        (False, FinalizePlan(overlap=True, threads=1, yields=1, reason="beside, on a core given up"), False),
    ],
)
def test_a_batch_is_finalised_on_the_plans_threads_beside_the_next_generation_only_where_both_allow_it(
    overlap: bool,
    plan: FinalizePlan,
    beside: bool,
    greenlight_settings: SettingsWrapper,
    library_dir: Path,
    finalize: FinalizeCalls,
    warm_workers: list[Warm],
) -> None:
    run_id, batches = run_started(batch_size=3)
    warm = warm_worker(warm_workers, greenlight_settings, overlap=overlap, finalize=plan)

    first = batch_work(run_id=run_id, serials=batches[0], warm=warm)

    assert first.taken == 3
    assert first.handed == (0 if beside else 3)  # beside: still being finished when it returns
    assert (warm.pending is not None) == beside
    warm.flush()
    assert finalize.calls == [("batch-finish_0" if beside else threading.current_thread().name, 2)]
    queued = list(Asset.objects.filter(pk__in=batches[0]).order_by("id"))
    assert [asset.state for asset in queued] == [AssetState.IN_REVIEW] * 3
    storage = LocalStorage(config_from_settings().storage_root)
    with reader_context(config_from_settings().signing) as context:
        for asset in queued:
            master = storage.read(asset.file_path)
            assert c2pa_read(master, mime="image/png", context=context).state == "trusted"
            image = Image.open(io.BytesIO(master)).convert("RGB")
            assert watermark_read(image, key=installation_key()).serial == asset.mark_id


def test_the_next_batch_generates_beside_the_finishing_of_the_one_before_on_the_cores_the_plan_gives_up(
    greenlight_settings: SettingsWrapper,
    library_dir: Path,
    finalize: FinalizeCalls,
    warm_workers: list[Warm],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    run_id, batches = run_started(batch_size=3)
    plan = FinalizePlan(overlap=True, threads=1, yields=1, reason="beside generation, on a core the model gives up")
    warm = warm_worker(warm_workers, greenlight_settings, overlap=True, finalize=plan)
    besides: list[Beside | None] = []
    judged_on: list[str] = []
    generate, judge = work_module.batch_generate, work_module.batch_judge

    def generate_recorded(manifest: Any, variants: Sequence[Any], *, beside: Beside | None = None) -> Any:
        besides.append(beside)
        return generate(manifest, variants, beside=beside)

    def judge_recorded(*args: Any) -> Any:
        judged_on.append(threading.current_thread().name)
        return judge(*args)

    monkeypatch.setattr(work_module, "batch_generate", generate_recorded)
    monkeypatch.setattr(work_module, "batch_judge", judge_recorded)

    batch_work(run_id=run_id, serials=batches[0], warm=warm)
    finishing = warm.pending
    batch_work(run_id=run_id, serials=batches[1], warm=warm)
    warm.flush()

    assert finishing is not None and besides == [None, Beside(finishing, 1)]
    assert judged_on == [threading.current_thread().name] * 2  # model work, where the model runs
    assert finalize.calls == [("batch-finish_0", 1)] * 2
    assert Asset.objects.filter(pk__in=[*batches[0], *batches[1]], state=AssetState.IN_REVIEW).count() == 6


def test_a_worker_takes_the_plan_a_run_would_take_for_its_model(
    greenlight_settings: SettingsWrapper, library_dir: Path, finalize: FinalizeCalls, warm_workers: list[Warm]
) -> None:
    run_id, batches = run_started(batch_size=6)
    warm = warm_worker(warm_workers, greenlight_settings, overlap=True)

    outcome = batch_work(run_id=run_id, serials=batches[0], warm=warm)
    warm.flush()

    manifest = warm.checked[("catalog-hero", 1)]
    plan = model_finalize_plan(manifest)  # what pipeline.run finalises a run of this model with
    assert warm.plans == {manifest.manifest_hash: plan}
    assert outcome.handed == (0 if plan.overlap else 6)
    assert [threads for _, threads in finalize.calls] == [plan.threads]
    assert Asset.objects.filter(pk__in=batches[0], state=AssetState.IN_REVIEW).count() == 6


@pytest.fixture
def task_worker(
    greenlight_settings: SettingsWrapper, library_dir: Path, monkeypatch: pytest.MonkeyPatch, warm_workers: list[Warm]
) -> tuple[int, list[Sequence[int]], Warm]:
    """A begun run of demo-spring, its batches of 6, and the warm worker (each batch finished
    after it is made) that its batch tasks run on in this process (``infra.batch_tasks.WARM``)."""
    from infra import batch_tasks

    run_id, batches = run_started(batch_size=6)
    warm = warm_worker(warm_workers, greenlight_settings, overlap=False)
    monkeypatch.setitem(batch_tasks.WARM, "warm", warm)
    return run_id, batches, warm


def test_a_worker_makes_its_batches_in_the_one_thread_its_model_was_loaded_in(
    task_worker: tuple[int, list[Sequence[int]], Warm], monkeypatch: pytest.MonkeyPatch, finalize: FinalizeCalls
) -> None:
    from infra import batch_tasks

    run_id, batches, warm = task_worker

    def load() -> str:  # as the worker preloads its model at start
        warm.manifest("catalog-hero", 1)
        return threading.current_thread().name

    loaded_in = warm.on_model_thread(load)
    assert warm.cache.names() == [warm.checked[("catalog-hero", 1)].name]
    calls: list[str] = []

    def generate(*args: Any, **kwargs: Any) -> Any:
        calls.append(threading.current_thread().name)
        return generate_real(*args, **kwargs)

    generate_real = work_module.batch_generate
    monkeypatch.setattr(work_module, "batch_generate", generate)
    # Each batch arrives on a task runner's thread of its own, as Prefect's task worker sends them.
    results: list[dict[str, object]] = []
    for serials in batches:
        runner = threading.Thread(target=lambda s=serials: results.append(batch_tasks.batch_make(run_id, list(s))))
        runner.start()
        runner.join()

    assert loaded_in.startswith("model") and loaded_in != threading.current_thread().name
    assert calls == [loaded_in, loaded_in]
    assert [finalize_thread for finalize_thread, _ in finalize.calls] == [loaded_in, loaded_in]
    assert [r["handed"] for r in results] == [6, 6]
    assert Asset.objects.filter(pk__in=[s for b in batches for s in b], state=AssetState.IN_REVIEW).count() == 12


def test_a_task_of_two_batches_is_made_one_model_batch_at_a_time_each_handed_over_as_it_is_made(
    task_worker: tuple[int, list[Sequence[int]], Warm], monkeypatch: pytest.MonkeyPatch, finalize: FinalizeCalls
) -> None:
    """A task run carrying two batches (``RunBatch.chunk``): two model calls of 6, each batch
    finalised and handed over before the next is generated, all on the model thread."""
    from infra import batch_tasks

    run_id, batches, _ = task_worker
    events: list[tuple[str, int, str]] = []

    def generate(manifest: Any, variants: Sequence[Any], **kwargs: Any) -> Any:
        in_review = Asset.objects.filter(run_id=run_id, state=AssetState.IN_REVIEW).count()
        events.append(("generate", len(variants), f"{in_review} in review"))
        return generate_real(manifest, variants, **kwargs)

    generate_real = work_module.batch_generate
    monkeypatch.setattr(work_module, "batch_generate", generate)
    serials = [serial for batch in batches for serial in batch]
    result = batch_tasks.batch_make(run_id, serials, 6)

    assert events == [("generate", 6, "0 in review"), ("generate", 6, "6 in review")]
    assert (result["taken"], result["handed"], result["failed"]) == (12, 12, 0)
    assert str(result["line"]).count("handed=6") == 2
    assert [thread for thread, _ in finalize.calls] == [finalize.calls[0][0]] * 2
    assert finalize.calls[0][0].startswith("model")
    assert Asset.objects.filter(pk__in=serials, state=AssetState.IN_REVIEW).count() == 12


def test_the_model_thread_returns_results_raises_errors_and_runs_nested_calls_in_place(
    greenlight_settings: SettingsWrapper, warm_workers: list[Warm]
) -> None:
    warm = warm_worker(warm_workers, greenlight_settings, overlap=False)

    def nested() -> tuple[str, str]:
        return threading.current_thread().name, warm.on_model_thread(lambda: threading.current_thread().name)

    outer, inner = warm.on_model_thread(nested)
    assert outer == inner and outer.startswith("model")

    def refused() -> None:
        raise ValueError("bad batch")

    with pytest.raises(ValueError, match="bad batch"):
        warm.on_model_thread(refused)
    assert warm.on_model_thread(sum, [1, 2, 3]) == 6
