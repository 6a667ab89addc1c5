"""Prefect deployments for production: a `gpu` work pool with one worker per GPU machine.

    python -m infra.deployments serve            # run campaign-run deployments from this process
    python -m infra.deployments deploy --pool gpu  # register with a Prefect server's work pool

On each GPU machine: `prefect worker start -p gpu --limit 1` with CUDA_VISIBLE_DEVICES set in
the pool's job variables; the worker imports `pipeline/flows.py:campaign_run` from this checkout.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, cast

from prefect import Flow

DEPLOYMENT_NAME = "campaign-run"
ENTRYPOINT = "pipeline/flows.py:campaign_run"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve the deployment from this process")
    serve.add_argument("--cron", default=None, help="also run on this schedule (needs --campaign)")
    serve.add_argument("--campaign", default=None)
    deploy = sub.add_parser("deploy", help="register the deployment with a work pool")
    deploy.add_argument("--pool", default="gpu")
    args = parser.parse_args(argv)

    from pipeline.flows import campaign_run

    if args.command == "serve":
        if args.cron and not args.campaign:
            parser.error("--cron needs --campaign")
        parameters = {"params": {"campaign": args.campaign}} if args.campaign else None
        campaign_run.serve(name=DEPLOYMENT_NAME, cron=args.cron, parameters=parameters)
    else:
        root = Path(__file__).resolve().parent.parent
        flow = cast(Flow[..., Any], campaign_run.from_source(source=str(root), entrypoint=ENTRYPOINT))
        flow.deploy(name=DEPLOYMENT_NAME, work_pool_name=args.pool)


if __name__ == "__main__":
    main()
