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
    from infra.flows import campaign_run

    return campaign_run(params)


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
