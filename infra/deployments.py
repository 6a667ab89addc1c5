"""Prefect deployments for production: a `gpu` work pool with one worker per GPU machine.

    python -m infra.deployments serve            # run the deployments from this process
    python -m infra.deployments deploy --pool gpu  # register them with a Prefect server's work pool

Two deployments: `campaign-run/campaign-run` (a campaign) and `assets-generate/assets-generate`
(registered assets: regenerations asked for in the dashboard, retries). On each GPU machine:
`prefect worker start -p gpu --limit 1` with CUDA_VISIBLE_DEVICES set in the pool's job variables;
the worker imports the flows from `infra/flows.py` in this checkout.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, cast

from prefect import Flow
from prefect.deployments.runner import EntrypointType, RunnerDeployment

DEPLOYMENT_NAME = "campaign-run"
ENTRYPOINT = "infra/flows.py:campaign_run"
ASSETS_DEPLOYMENT_NAME = "assets-generate"
ASSETS_ENTRYPOINT = "infra/flows.py:assets_generate"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve the deployment from this process")
    serve.add_argument("--cron", default=None, help="also run on this schedule (needs --campaign)")
    serve.add_argument("--campaign", default=None)
    deploy = sub.add_parser("deploy", help="register the deployment with a work pool")
    deploy.add_argument("--pool", default="gpu")
    args = parser.parse_args(argv)

    from prefect import serve as prefect_serve

    from infra.flows import assets_generate, campaign_run

    if args.command == "serve":
        if args.cron and not args.campaign:
            parser.error("--cron needs --campaign")
        parameters = {"params": {"campaign": args.campaign}} if args.campaign else None
        prefect_serve(
            cast(
                RunnerDeployment,
                campaign_run.to_deployment(name=DEPLOYMENT_NAME, cron=args.cron, parameters=parameters),
            ),
            cast(RunnerDeployment, assets_generate.to_deployment(name=ASSETS_DEPLOYMENT_NAME)),
        )
    else:
        root = Path(__file__).resolve().parent.parent
        for name, entrypoint in ((DEPLOYMENT_NAME, ENTRYPOINT), (ASSETS_DEPLOYMENT_NAME, ASSETS_ENTRYPOINT)):
            flow = cast(Flow[..., Any], Flow.from_source(source=str(root), entrypoint=entrypoint))
            flow.deploy(name=name, work_pool_name=args.pool)


COORDINATE_DEPLOYMENT_NAME = "campaign-coordinate"


def campaign_schedule_deployments() -> list[RunnerDeployment]:
    """One deployment of the `campaign-scheduled` flow per campaign with a schedule in its file
    (`schedule: {cron, timezone}`), named after the campaign, paused when the file says
    `active: false`."""
    from prefect.schedules import Cron

    from infra.coordinator import campaign_scheduled
    from prompt_library.models import Campaign

    made = []
    for row in Campaign.objects.exclude(schedule_cron="").order_by("name"):
        made.append(
            cast(
                RunnerDeployment,
                campaign_scheduled.to_deployment(
                    name=row.name,
                    schedules=[Cron(row.schedule_cron, timezone=row.schedule_timezone or "UTC")],
                    paused=not row.schedule_active,
                    parameters={"campaign": row.name},
                    tags=["campaign", f"priority-{row.priority}"],
                    entrypoint_type=EntrypointType.MODULE_PATH,
                ),
            )
        )
    return made


def schedules_sync() -> list[str]:
    """Create or update each scheduled campaign's deployment (its cron, time zone, paused) on the
    Prefect server; returns the deployments' names. Called when the library is loaded."""
    names = []
    for deployment in campaign_schedule_deployments():
        deployment.apply()
        names.append(f"campaign-scheduled/{deployment.name}")
    return names


def serve_all() -> None:
    """Serve the coordinator deployment and every campaign's scheduled deployment from this
    process (the `coordinator` service of `make up`)."""
    from prefect import serve as prefect_serve

    from infra.coordinator import campaign_coordinate

    prefect_serve(
        cast(
            RunnerDeployment,
            # Loaded as `infra.coordinator` (not by file path): what its batches carry to the task
            # workers (the run context) must unpickle there under the same module name.
            campaign_coordinate.to_deployment(
                name=COORDINATE_DEPLOYMENT_NAME, entrypoint_type=EntrypointType.MODULE_PATH
            ),
        ),
        *campaign_schedule_deployments(),
    )


if __name__ == "__main__":
    main()
