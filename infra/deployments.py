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
from prefect.deployments.runner import RunnerDeployment

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


if __name__ == "__main__":
    main()
