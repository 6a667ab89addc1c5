"""The Prefect flows, next to their deployments: each builds the pipeline's config, runs the plain
run function (`pipeline.run`) with a progress callback (a Prefect progress artifact and the flow
run's log) and returns its summary. A run with failed assets ends Failed (`RunFailedError`). Each
labels its flow run with its process first (`infra.liveness`), so that a run killed with its
process is marked Crashed by the next sweep instead of staying Running.

Prefect workers import this module as the deployments' entrypoint, so it sets up Django first.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import cast
from uuid import UUID

from prefect import flow, get_run_logger
from prefect.artifacts import create_progress_artifact, update_progress_artifact

import infra.django_boot  # noqa: F401  (sets up Django before the pipeline imports the review models)
from infra.liveness import ASSETS_FLOW, CAMPAIGN_FLOW, flow_run_label
from pipeline import run
from pipeline.config import config_from_settings
from pipeline.errors import RunFailedError
from pipeline.params import AssetsGenerateParams, CampaignRunParams
from pipeline.summary import RunProgress, RunSummary


@flow(name=CAMPAIGN_FLOW, validate_parameters=True)
def campaign_run(params: CampaignRunParams) -> RunSummary:
    """Expand a campaign, generate what is missing in batches, sign it and queue it for review."""
    flow_run_label()  # which process runs it: a run whose process dies is swept (infra.sweep)
    summary = run.campaign_run(
        campaign=params.campaign,
        batch_size=params.batch_size,
        config=config_from_settings(),
        progress=_progress_reporter(),
    )
    return _summary_checked(summary)


@flow(name=ASSETS_FLOW, validate_parameters=True)
def assets_generate(params: AssetsGenerateParams) -> RunSummary:
    """Generate registered assets that are still pending or failed (regenerations, retries),
    each from its own template version, and queue them for review."""
    flow_run_label()
    summary = run.assets_generate(
        serials=params.serials,
        batch_size=params.batch_size,
        config=config_from_settings(),
        progress=_progress_reporter(),
    )
    return _summary_checked(summary)


def _progress_reporter() -> Callable[[RunProgress], None]:
    """The current flow run's progress callback: a line in its log, and a progress artifact made
    at the first batch done and moved at each one after."""
    logger = get_run_logger()
    artifact: list[UUID] = []

    def report(progress: RunProgress) -> None:
        logger.info(progress.line())
        if artifact:
            update_progress_artifact(artifact[0], progress=progress.percent)
        else:
            made = create_progress_artifact(progress=progress.percent, description=progress.label)
            artifact.append(cast(UUID, made))  # sync-or-async dispatch: called from sync code, a UUID

    return report


def _summary_checked(summary: RunSummary) -> RunSummary:
    """Log the summary; a run with failures (each recorded on its asset) ends Failed, naming the first."""
    get_run_logger().info(summary.line())
    if summary.failed:
        raise RunFailedError(summary)
    return summary
