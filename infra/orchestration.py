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
from typing import cast

from django.conf import settings

from pipeline.params import AssetsGenerateParams, CampaignRunParams, params_validate
from pipeline.summary import RunSummary

logger = logging.getLogger("greenlight.orchestration")

ASSETS_DEPLOYMENT = "assets-generate/assets-generate"


def campaign_run_local(*, campaign: str, batch_size: int) -> RunSummary:
    """Run the campaign-run flow in this process (Prefect's local mode unless PREFECT_API_URL
    points at a server), and return its summary. Bad parameters are refused (`RunRequestError`)
    before Prefect starts; a run with failed assets raises `RunFailedError`."""
    params = params_validate(CampaignRunParams, what="campaign run", campaign=campaign, batch_size=batch_size)
    # In local mode Prefect starts its temporary server (a subprocess, a few seconds) at the flow's
    # first call; it starts here instead, while this thread imports torch and loads the campaign's
    # model, which the flow then finds loaded (``pipeline.run.campaign_warm``).
    starting = _local_server_start()
    from infra.flows import campaign_run
    from pipeline.config import config_from_settings
    from pipeline.run import campaign_warm

    try:
        campaign_warm(campaign=params.campaign, config=config_from_settings())
    finally:
        if starting is not None:
            starting.join()
    return campaign_run(params)


def _local_server_start() -> threading.Thread | None:
    """Start Prefect's temporary local server in a thread of its own, when no server is set
    (PREFECT_API_URL) and local mode is allowed; join the thread before the first flow call.
    A start that fails is logged and left to the flow, which starts it again or says why not."""
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


def campaign_run_where(*, campaign: str) -> str:
    """Where `manage.py campaign_run --on auto` makes a campaign's batches: "workers" when a
    Prefect server is configured (PREFECT_API_URL) and a live generation worker serves every model
    the campaign uses, so imports, Prefect's start and the model load were paid once, by that
    worker; else "here", this process."""
    from prefect.settings import PREFECT_API_URL

    if not PREFECT_API_URL.value():
        return "here"
    return "workers" if not _models_unserved(campaign) else "here"


def _models_unserved(campaign: str) -> list[str]:
    """The models the campaign uses that no live generation worker serves."""
    from prompt_library.selectors import campaign_plan_get
    from review.selectors import worker_list

    plan = campaign_plan_get(name=campaign)
    served = {q.removeprefix("model:") for w in worker_list() if w.alive for q in w.queues if q.startswith("model:")}
    return sorted({v.model_name for v in plan.variants} - served)


def campaign_run_on_workers(*, campaign: str, batch_size: int) -> RunSummary:
    """Start a run of the campaign and coordinate it from this process while the generation
    workers (`infra.workers`) make its batches on their warm models; wait for its end and return
    its summary. Refused (`RunRequestError`) without a Prefect server or a live worker for each of
    the campaign's models. A run that ends with failed assets raises `RunFailedError`; one paused
    or cancelled meanwhile (from the dashboard, the API or `manage.py runs`) `RunStoppedError`.
    Interrupted, the run stays open and the workers finish what they were sent: `manage.py runs
    resume` goes on with it."""
    import time

    from prefect.settings import PREFECT_API_URL

    from infra.coordinator import campaign_coordinate
    from pipeline.errors import RunFailedError, RunRequestError, RunStoppedError
    from prompt_library.models import Campaign
    from prompt_library.selectors import campaign_plan_get
    from review.models import Run
    from review.services.runs import campaign_run_start
    from review.states import AssetState

    params = params_validate(CampaignRunParams, what="campaign run", campaign=campaign, batch_size=batch_size)
    if not PREFECT_API_URL.value():
        raise RunRequestError(
            "campaign run on workers: no Prefect server (set PREFECT_API_URL)", field_name="on", value="workers"
        )
    row = Campaign.objects.filter(name=params.campaign).first()
    if row is None:
        raise RunRequestError(
            f"campaign {params.campaign!r}: no such campaign (load the library first)",
            field_name="campaign",
            value=params.campaign,
        )
    unserved = _models_unserved(params.campaign)
    if unserved:
        raise RunRequestError(
            f"campaign {params.campaign}: no live generation worker serves {', '.join(unserved)} "
            "(start one: python -m infra.workers worker --models ...)",
            field_name="on",
            value="workers",
        )
    started = time.perf_counter()
    variants = len(campaign_plan_get(name=params.campaign).variants)
    run = campaign_run_start(campaign=row, actor=None, submit=False)
    if run.state == Run.State.QUEUED:
        campaign_coordinate(run_id=run.pk, batch_size=params.batch_size)
    run.refresh_from_db()
    errors = run.assets.filter(state=AssetState.FAILED).exclude(error="").values_list("error", flat=True)[:5]
    summary = RunSummary(
        label=f"campaign {params.campaign} (run {run.pk}, made by the workers)",
        campaign=params.campaign,
        variants=variants,
        already_done=variants - run.total,
        generated=run.done,
        failed=run.failed,
        batches=-(-run.total // params.batch_size),
        seconds=time.perf_counter() - started,
        failures=tuple(error.splitlines()[0] for error in errors),
    )
    if run.is_open or run.state == Run.State.CANCELLED:
        raise RunStoppedError(summary, run_id=run.pk, state=run.state)
    if summary.failed:
        raise RunFailedError(summary)
    return summary


def assets_generate_local(*, serials: Sequence[int], batch_size: int | None = None) -> RunSummary:
    """Run the assets-generate flow in this process for registered assets, and return its summary."""
    params = params_validate(
        AssetsGenerateParams,
        what="generation",
        serials=list(serials),
        batch_size=batch_size or settings.GREENLIGHT_BATCH_SIZE,
    )
    from infra.flows import assets_generate

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
    from infra.coordinator import coordinate, dispatch_choose, in_flight_default

    dispatch, _ = dispatch_choose()
    outcome = coordinate(
        run_id=run_id,
        batch_size=batch_size or settings.GREENLIGHT_BATCH_SIZE,
        dispatch=dispatch,
        max_in_flight=max_in_flight or in_flight_default(),
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
