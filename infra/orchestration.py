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
