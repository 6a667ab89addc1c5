"""The one small adapter between Django code and Prefect: start a campaign run, or generate
registered assets (regenerations, retries).

Nothing in `review/` or `prompt_library/` imports a flow; they call this.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence

from django.conf import settings
from pydantic import ValidationError

from pipeline.run import RunSummary

logger = logging.getLogger("greenlight.orchestration")

ASSETS_DEPLOYMENT = "assets-generate/assets-generate"


class RunRequestError(ValueError):
    """Run parameters that the flow would refuse."""


def _refused(exc: ValidationError, what: str) -> RunRequestError:
    problems = "; ".join(
        f"{'.'.join(map(str, e['loc']))}: {e['msg']} (given: {e.get('input')!r})" for e in exc.errors()
    )
    return RunRequestError(f"{what} refused: {problems}")


def campaign_run_local(*, campaign: str, batch_size: int) -> RunSummary:
    """Run the campaign-run flow in this process (Prefect's local mode unless PREFECT_API_URL
    points at a server), and return its summary. Bad parameters are refused before Prefect starts."""
    from pipeline.flows import CampaignRunParams, campaign_run

    try:
        params = CampaignRunParams(campaign=campaign, batch_size=batch_size)
    except ValidationError as exc:
        raise _refused(exc, "campaign run") from exc
    result = campaign_run(params)
    return RunSummary(**result)  # type: ignore[arg-type]


def assets_generate_local(*, serials: Sequence[int], batch_size: int | None = None) -> RunSummary:
    """Run the assets-generate flow in this process for registered assets, and return its summary."""
    from pipeline.flows import AssetsGenerateParams, assets_generate

    try:
        params = AssetsGenerateParams(serials=list(serials), batch_size=batch_size or settings.GREENLIGHT_BATCH_SIZE)
    except ValidationError as exc:
        raise _refused(exc, "generation") from exc
    result = assets_generate(params)
    return RunSummary(**result)  # type: ignore[arg-type]


def assets_generate_submit(*, serials: Sequence[int]) -> str:
    """Start generating registered assets the way GREENLIGHT_ORCHESTRATOR says, without waiting
    (except "inline"); returns a line saying where it runs. The assets stay pending until then,
    so nothing is lost if the run never starts: `manage.py assets_generate --pending` retries."""
    mode = settings.GREENLIGHT_ORCHESTRATOR
    serials = list(serials)
    if mode == "inline":
        return assets_generate_local(serials=serials).line()
    if mode == "deployment":
        from prefect.deployments import run_deployment

        run = run_deployment(
            name=ASSETS_DEPLOYMENT,
            parameters={"params": {"serials": serials, "batch_size": settings.GREENLIGHT_BATCH_SIZE}},
            timeout=0,
        )
        return f"flow run {run.name} ({run.id}) on deployment {ASSETS_DEPLOYMENT}"  # type: ignore[union-attr]

    def work() -> None:
        try:
            logger.info(assets_generate_local(serials=serials).line())
        except Exception:  # recorded on the assets by the flow; the thread must not die silently
            logger.exception("generating assets %s failed", serials)
        finally:
            from django.db import connection

            connection.close()

    threading.Thread(target=work, name=f"assets-generate-{serials[0]}", daemon=True).start()
    return "a background run in the dashboard's process"
