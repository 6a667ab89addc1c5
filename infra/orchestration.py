"""The one small adapter between Django code and the Prefect flows: start a campaign run, or
generate registered assets (regenerations, retries).

Nothing in `review/` or `prompt_library/` imports a flow: review reaches `assets_generate_submit`
through the `GREENLIGHT_RUN_SUBMIT` setting. Parameters are validated here, before Prefect starts;
the flows (and torch with them) are imported only when a run starts in this process.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, cast

from django.conf import settings

from pipeline.errors import RunRequestError
from pipeline.params import AssetsGenerateParams, CampaignRunParams, params_validate
from pipeline.summary import RunSummary

if TYPE_CHECKING:
    from prompt_library.selectors import CampaignPlan

logger = logging.getLogger("greenlight.orchestration")

ASSETS_DEPLOYMENT = "assets-generate/assets-generate"


def campaign_run_local(*, campaign: str, batch_size: int) -> RunSummary:
    """Run the campaign-run flow in this process (Prefect's local mode unless PREFECT_API_URL
    points at a server), and return its summary. Bad parameters are refused (`RunRequestError`)
    before Prefect starts; a run with failed assets raises `RunFailedError`."""
    params = params_validate(CampaignRunParams, what="campaign run", campaign=campaign, batch_size=batch_size)
    starting = _local_server_start()
    from infra.flows import campaign_run
    from pipeline.config import config_from_settings
    from pipeline.run import campaign_warm

    try:  # the model the flow will find loaded, while Prefect's local server starts
        campaign_warm(campaign=params.campaign, config=config_from_settings())
    finally:
        _joined(starting)
    return campaign_run(params)


def campaign_run_command(*, campaign: str, batch_size: int, on: str = "auto") -> RunSummary:
    """`manage.py campaign_run`: make a campaign on the generation workers ("workers"), in this
    process (``campaign_run_local``, "here"), or ("auto") on the workers when they can take it
    (``workers_unavailable``), else here. On the workers, this process starts the run,
    coordinates it and waits for its end while they make its batches on models they already hold:
    imports, Prefect's start and the model load were paid once, by each worker. "workers" that
    cannot take it is refused (`RunRequestError`, naming why) before any run starts."""
    params = params_validate(CampaignRunParams, what="campaign run", campaign=campaign, batch_size=batch_size)
    if on == "here":
        return campaign_run_local(campaign=params.campaign, batch_size=params.batch_size)
    from prompt_library.selectors import campaign_plan_get

    plan = campaign_plan_get(name=params.campaign)  # an unknown campaign is refused here, naming the known ones
    why_not = workers_unavailable(plan)
    if not why_not:
        return _campaign_run_on_workers(plan, batch_size=params.batch_size)
    if on == "workers":
        raise RunRequestError(f"campaign {params.campaign} on workers: {why_not}", field_name="on", value=on)
    return campaign_run_local(campaign=params.campaign, batch_size=params.batch_size)


def workers_unavailable(plan: CampaignPlan) -> str:
    """Why the generation workers cannot make the campaign ``plan`` now ("" when they can): no
    Prefect server is set (PREFECT_API_URL), or no live worker serves its model."""
    from prefect.settings import PREFECT_API_URL

    from infra.batch_tasks import models_served
    from review.selectors import worker_list

    if not PREFECT_API_URL.value():
        return "no Prefect server (set PREFECT_API_URL)"
    model = plan.version.model_name
    if model not in {m for w in worker_list() if w.alive for m in models_served(w.queues)}:
        return f"no live generation worker serves {model} (start one: python -m infra.workers worker --models {model})"
    return ""


def _campaign_run_on_workers(plan: CampaignPlan, *, batch_size: int) -> RunSummary:
    """Start a run of the campaign and coordinate it from this process (its `campaign-coordinate`
    flow run) while the workers make its batches; wait for its end and return its summary. A run
    that ends with failed assets raises `RunFailedError`; one paused or cancelled meanwhile (from
    the dashboard, the API or `manage.py runs`) `RunStoppedError`. Interrupted, the run stays open
    and the workers finish what they were sent: `manage.py runs resume` goes on with it."""
    import time

    from infra.coordinator import campaign_coordinate
    from pipeline.errors import RunFailedError, RunStoppedError
    from prompt_library.models import Campaign
    from review.models import Run
    from review.services.runs import campaign_run_start
    from review.states import AssetState

    name = plan.campaign.name
    started = time.perf_counter()
    run = campaign_run_start(campaign=Campaign.objects.get(name=name), actor=None, submit=False)
    if run.state == Run.State.QUEUED:
        campaign_coordinate(run_id=run.pk, batch_size=batch_size)
    run.refresh_from_db()
    errors = run.assets.filter(state=AssetState.FAILED).exclude(error="").values_list("error", flat=True)[:5]
    variants = len(plan.variants)
    summary = RunSummary(
        label=f"campaign {name} (run {run.pk}, made by the workers)",
        campaign=name,
        variants=variants,
        already_done=variants - run.total,
        generated=run.done,
        failed=run.failed,
        batches=-(-run.total // batch_size),
        seconds=time.perf_counter() - started,
        failures=tuple(error.splitlines()[0] for error in errors),
    )
    if run.is_open or run.state == Run.State.CANCELLED:
        raise RunStoppedError(summary, run_id=run.pk, state=run.state)
    if summary.failed:
        raise RunFailedError(summary)
    return summary


def _local_server_start() -> threading.Thread | None:
    """In Prefect's local mode (no PREFECT_API_URL), start its temporary server (a subprocess, a
    few seconds) in a thread of its own, so that a flow run from this process does not wait for it
    at its first call: the caller imports the flows (torch with them) meanwhile, and joins the
    thread (``_joined``) before that call. A start that fails is logged and left to the flow,
    which starts it again or says why not."""
    from prefect.settings import PREFECT_API_URL, PREFECT_SERVER_EPHEMERAL_ENABLED

    if PREFECT_API_URL.value() or not PREFECT_SERVER_EPHEMERAL_ENABLED.value():
        return None

    def start() -> None:
        try:
            from prefect.server.api.server import SubprocessASGIServer

            SubprocessASGIServer().start()
        except Exception:
            logger.warning("Prefect's temporary server did not start ahead of the flow", exc_info=True)

    thread = threading.Thread(target=start, name="prefect-local-server", daemon=True)
    thread.start()
    return thread


def _joined(starting: threading.Thread | None) -> None:
    if starting is not None:
        starting.join()


def assets_generate_local(*, serials: Sequence[int], batch_size: int | None = None) -> RunSummary:
    """Run the assets-generate flow in this process for registered assets, and return its summary."""
    params = params_validate(
        AssetsGenerateParams,
        what="generation",
        serials=list(serials),
        batch_size=batch_size or settings.GREENLIGHT_BATCH_SIZE,
    )
    starting = _local_server_start()
    from infra.flows import assets_generate

    _joined(starting)
    return assets_generate(params)


def assets_generate_submit(*, serials: Sequence[int]) -> str:
    """Start generating registered assets the way GREENLIGHT_ORCHESTRATOR says, without waiting
    (except "inline"); returns a line saying where it runs. The assets stay pending until then,
    so nothing is lost if the run never starts: `manage.py assets_generate --pending` retries."""
    mode = settings.GREENLIGHT_ORCHESTRATOR
    serials = list(serials)
    if mode == "inline":
        return assets_generate_local(serials=serials).line()
    if mode == "deployment":
        from prefect.client.schemas.objects import FlowRun
        from prefect.deployments import run_deployment

        params = params_validate(
            AssetsGenerateParams, what="generation", serials=serials, batch_size=settings.GREENLIGHT_BATCH_SIZE
        )
        started = run_deployment(name=ASSETS_DEPLOYMENT, parameters={"params": params.model_dump()}, timeout=0)
        run = cast(FlowRun, started)  # sync-or-async dispatch: called from sync code, a FlowRun
        return f"flow run {run.name} ({run.id}) on deployment {ASSETS_DEPLOYMENT}"

    def work() -> None:
        try:
            assets_generate_local(serials=serials)  # the run logs its own summary
        except Exception:  # recorded on the assets by the run; the thread must not die silently
            logger.exception("generating assets %s failed", serials)
        finally:
            from django.db import connection

            connection.close()

    threading.Thread(target=work, name=f"assets-generate-{serials[0]}", daemon=True).start()
    return "a background run in the dashboard's process"


COORDINATE_DEPLOYMENT = "campaign-coordinate/campaign-coordinate"


def run_coordinate_local(*, run_id: int, batch_size: int | None = None, max_in_flight: int = 0) -> str:
    """Coordinate a campaign run in this thread, without a flow run around it (tests, `inline`):
    batches go to task workers when PREFECT_API_URL is set, else are made here. Returns its line."""
    from infra.coordinator import coordinate, dispatch_choose, sending_default

    dispatch, _ = dispatch_choose()
    per_task, in_flight = sending_default(max_in_flight=max_in_flight)
    outcome = coordinate(
        run_id=run_id,
        batch_size=batch_size or settings.GREENLIGHT_BATCH_SIZE,
        dispatch=dispatch,
        batches_per_task=per_task,
        max_in_flight=in_flight,
    )
    return outcome.line()


def run_submit(*, run_id: int, priority: int) -> str:
    """Start a campaign run's coordinator the way GREENLIGHT_ORCHESTRATOR says, without waiting
    (except "inline"); returns a line saying where it runs. The run stays queued until then:
    `manage.py runs resume <id>` starts it again if it never did."""
    mode = settings.GREENLIGHT_ORCHESTRATOR
    if mode == "inline":
        return run_coordinate_local(run_id=run_id)
    if mode == "deployment":
        from prefect.client.schemas.objects import FlowRun
        from prefect.deployments import run_deployment

        started = run_deployment(
            name=COORDINATE_DEPLOYMENT,
            parameters={"run_id": run_id, "batch_size": settings.GREENLIGHT_BATCH_SIZE},
            timeout=0,
            tags=[f"priority-{priority}"],
        )
        flow_run = cast(FlowRun, started)
        return f"flow run {flow_run.name} ({flow_run.id}) on deployment {COORDINATE_DEPLOYMENT}"

    def work() -> None:
        try:
            from prefect.settings import PREFECT_API_URL

            if PREFECT_API_URL.value():  # a flow run on the server: seen in the Prefect UI
                from infra.coordinator import campaign_coordinate

                campaign_coordinate(run_id=run_id, batch_size=settings.GREENLIGHT_BATCH_SIZE)
            else:  # no server: coordinate and make the batches in this process
                run_coordinate_local(run_id=run_id)
        except Exception:  # recorded on the run; the thread must not die silently
            logger.exception("coordinating run %s failed", run_id)
            from review.intake import run_fail

            run_fail(run_id=run_id, error="its coordinator failed: see the log")
        finally:
            from django.db import connection

            connection.close()

    threading.Thread(target=work, name=f"run-coordinate-{run_id}", daemon=True).start()
    return "a background coordinator in this process"
