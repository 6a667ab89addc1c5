"""Generation workers and the coordinator service: the long-lived processes of production.

    python -m infra.workers worker --name gpu-0 [--models embedded,embedded-tiny] [--capacity 1]
    python -m infra.workers coordinator     # serves the campaign-coordinate deployment + schedules

A worker is a Prefect task worker (`prefect.task_worker.serve`) subscribed to the batch task of
each model it is started for (`infra.batch_tasks`): it keeps those models loaded (a
`models.cache.PipelineCache`, least recently used out beyond `--capacity`) and makes every batch
sent for them. Every few seconds it records a heartbeat (shown on the Campaigns page) and renews
the leases of the batch it is making; killed, it stops renewing them, and after
GREENLIGHT_LEASE_SECONDS the run's coordinator sends that batch to another worker. One worker per
GPU: start each with its own CUDA_VISIBLE_DEVICES. With its models preloaded, a worker finalises
stills (watermark, sign, store) in processes of its own, one a core its post-processing plan
finalises on when nothing generates beside it (`pipeline.finalize_pool`; `--no-finalize-pool`
keeps them in threads).

The coordinator service serves the `campaign-coordinate` deployment (each run's coordinator, see
`infra.coordinator`) and the campaigns' scheduled deployments (`infra.deployments`).
"""

from __future__ import annotations

import argparse
import logging
import os
import socket
import threading

import infra.django_boot  # noqa: F401  (sets up Django before the review models are imported)

logger = logging.getLogger("greenlight.worker")

HEARTBEAT_SECONDS = 5.0  # at most; a third of the lease when that is shorter


def worker_main(
    *,
    name: str,
    models: list[str],
    capacity: int,
    limit: int,
    preload: bool,
    overlap: bool = True,
    finalize_pool: bool = True,
) -> None:
    """Run one generation worker until it is stopped (see the module)."""
    from django.conf import settings
    from prefect.task_worker import serve

    from infra.batch_tasks import WARM, batch_task, model_queues
    from models import manifest_load
    from models.cache import PipelineCache
    from pipeline.config import config_from_settings
    from pipeline.finalize_pool import finalize_pool_start
    from pipeline.work import Warm

    config = config_from_settings()
    warm = Warm(
        name=name,
        config=config,
        lease_seconds=float(settings.GREENLIGHT_LEASE_SECONDS),
        cache=PipelineCache(capacity),
        overlap=overlap,
        model_threads=limit,
    )
    WARM["warm"] = warm
    if preload:
        manifests = [manifest_load(model, manifests_dir=config.models_dir) for model in models[:capacity]]
        for manifest in manifests:
            warm.on_model_thread(warm.cache.get, manifest)
        if finalize_pool and manifests:
            # Stills are finalised in processes of their own, started now (pipeline.finalize_pool).
            plan = warm.on_model_thread(warm.plan, manifests[0])
            finalize_pool_start(config, plan.alone)
            logger.info("worker=%s finalises stills in %d process(es)", name, plan.alone)
    queues = model_queues(models)
    stop = threading.Event()
    beat = threading.Thread(target=_heartbeat_loop, args=(warm, queues, stop), name="heartbeat", daemon=True)
    beat.start()
    logger.info("worker=%s pid=%s serving models %s", name, os.getpid(), ", ".join(models))
    try:
        # One task more than the batches made at once is taken from the server: it waits for the
        # model thread here instead of being sent for when the one before ends.
        serve(*[batch_task(m) for m in models], limit=limit + 1)
    finally:
        stop.set()


def _heartbeat_loop(warm: object, queues: list[str], stop: threading.Event) -> None:
    """Every HEARTBEAT_SECONDS: the worker's heartbeat row, and its current batch's leases."""
    from django.db import connection

    from pipeline.work import Warm
    from review.intake import run_leases_renew, worker_heartbeat_record

    assert isinstance(warm, Warm)
    host = socket.gethostname()
    while not stop.is_set():
        try:
            with warm.lock:
                current = sorted(warm.current)
                done = warm.batches_done
            if current:
                run_leases_renew(worker=warm.name, serials=current, lease_seconds=warm.lease_seconds)
            worker_heartbeat_record(
                name=warm.name,
                hostname=host,
                pid=os.getpid(),
                queues=queues,
                models_loaded=warm.cache.names(),
                batches_done=done,
                current=f"serials {current[0]}..{current[-1]} ({len(current)})" if current else "",
            )
        except Exception:  # a database hiccup: the next beat tries again
            logger.exception("worker=%s heartbeat failed", warm.name)
            connection.close()
        stop.wait(min(HEARTBEAT_SECONDS, warm.lease_seconds / 3))


def coordinator_main() -> None:
    """Serve the coordinator deployment and every campaign's schedule from this process."""
    from infra.deployments import serve_all

    serve_all()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    worker = sub.add_parser("worker", help="run a generation worker (a Prefect task worker)")
    worker.add_argument("--name", default=f"{socket.gethostname()}-{os.getpid()}")
    worker.add_argument("--models", default="", help="comma-separated model names (default: every manifest)")
    worker.add_argument("--capacity", type=int, default=1, help="models kept loaded at once (LRU beyond)")
    worker.add_argument("--limit", type=int, default=1, help="batches made at once")
    worker.add_argument("--no-preload", action="store_true", help="load models at their first batch")
    worker.add_argument("--threads", type=int, default=0, help="torch CPU threads (default: torch's own choice)")
    worker.add_argument(
        "--no-overlap", action="store_true", help="finish each batch before generating the next (default: overlap)"
    )
    worker.add_argument(
        "--no-finalize-pool",
        action="store_true",
        help="finalise stills in threads of this process, not in processes of their own (less memory)",
    )
    sub.add_parser("coordinator", help="serve the coordinator deployment and the campaigns' schedules")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    if args.command == "worker":
        from models.registry import manifests_known

        models = [m for m in args.models.split(",") if m] or manifests_known()
        if args.capacity < 1 or args.limit < 1:
            parser.error("--capacity and --limit must be at least 1")
        if args.threads:
            import torch

            torch.set_num_threads(args.threads)
        worker_main(
            name=args.name,
            models=models,
            capacity=args.capacity,
            limit=args.limit,
            preload=not args.no_preload,
            overlap=not args.no_overlap,
            finalize_pool=not args.no_finalize_pool,
        )
    else:
        coordinator_main()


if __name__ == "__main__":
    main()
