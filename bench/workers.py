"""One campaign across generation workers against the raw diffusers loop, in one run.

    DATABASE_URL=postgres://... python -m bench.workers [--variants 256] [--batch-size 8]
        [--workers 1,2]

Everything lives in a temporary folder (prompt library, storage, signing and watermark keys,
Prefect's home) except the database, which ``DATABASE_URL`` names and this bench migrates. A
Prefect server of its own is started (Prefect's subprocess server). For each worker count k, a
campaign of ``--variants`` variants (the shipped ``catalog-scene`` template on the embedded model,
each campaign with its own seeds) is run by k worker processes (``python -m infra.workers
worker --threads 1``, the model loaded before the clock starts), its batches sent as Prefect task
runs by the coordinator (``infra.coordinator.coordinate``), and timed from the run's start to its
last hand-over: registered, generated, watermarked, signed, stored and queued for review. The raw
loop (``StableDiffusionPipeline`` called in batches with the same prompts, steps, guidance, size
and seeds, one torch thread) runs before and after the worker runs, and the ratios are taken
against the mean of the two. Goals: per worker, workers/raw >= 0.90; 2 workers >= 1.8x one.

By default a worker finishes a batch (watermark, sign, store: CPU work) in a second thread while
it generates the next, so one worker keeps two cores busy; ``--no-overlap`` makes each worker one
busy thread. On a CPU the per-worker ratio is bounded by the post-processing's cost per image
(on the embedded model it costs more than generating), and a machine with fewer cores than busy
threads (plus the coordinator, the Prefect server and PostgreSQL) cannot reach the second goal;
the table says how many cores it had.
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.pipeline import PER_SEED, ROOT, _environment, _library_write, _raw_loop, _raw_pipeline

GOAL_PER_WORKER = 0.90
GOAL_SCALING = 1.8


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variants", type=int, default=256, help=f"variants per campaign, a multiple of {PER_SEED}")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--workers", default="1,2", help="worker counts to run, comma-separated")
    parser.add_argument(
        "--no-overlap",
        action="store_true",
        help="workers finish each batch before generating the next (one busy thread per worker)",
    )
    args = parser.parse_args()
    counts = [int(n) for n in args.workers.split(",") if n.strip()]
    if args.variants < PER_SEED or args.variants % PER_SEED:
        parser.error(f"--variants {args.variants}: must be a positive multiple of {PER_SEED}")
    if not counts or min(counts) < 1:
        parser.error(f"--workers {args.workers!r}: whole numbers of at least 1")
    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        parser.error("set DATABASE_URL to a PostgreSQL database this bench may migrate and write to")

    with tempfile.TemporaryDirectory(prefix="bench-workers-") as folder:
        tmp = Path(folder)
        env = _environment(tmp, 1)
        env["GREENLIGHT_STORAGE_ROOT"] = str(tmp / "storage")
        os.environ.update(env)
        seeds = args.variants // PER_SEED
        # Seeds never used before in this database: a variant made by an earlier run is not made again.
        base = secrets.randbelow(2**40)
        tag = secrets.token_hex(3)  # campaigns of their own, whatever an earlier bench left open
        args.campaign = f"bench-workers-{tag}-" + "{k}"
        campaigns = {args.campaign.format(k=k): (base + i * seeds, seeds) for i, k in enumerate(counts)}
        _library_write(tmp / "library", campaigns)
        figures = _run(args, counts, tmp, env)
    _report(args, counts, figures)


def _run(args: argparse.Namespace, counts: list[int], tmp: Path, env: dict[str, str]) -> dict[str, Any]:
    import torch

    torch.set_num_threads(1)
    from django.core.management import call_command
    from prefect.server.api.server import SubprocessASGIServer
    from prefect.settings import PREFECT_API_URL, temporary_settings

    import infra.django_boot  # noqa: F401
    from models import manifest_load
    from prompt_library.selectors import campaign_plan_get

    call_command("migrate", verbosity=0)
    call_command("signing_keys_create", verbosity=0)
    call_command("library_load", verbosity=0)
    first = campaign_plan_get(name=args.campaign.format(k=counts[0]))
    manifest = manifest_load(first.version.model_name)
    raw_pipe = _raw_pipeline(manifest.folder)
    _raw_loop(raw_pipe, first.variants[: args.batch_size], args.batch_size)  # warm-up
    raw_before = _raw_loop(raw_pipe, first.variants, args.batch_size)

    server = SubprocessASGIServer()
    server.start(timeout=180)
    runs: dict[int, float] = {}
    try:
        with temporary_settings({PREFECT_API_URL: server.api_url}):
            child_env = {**os.environ, **env, "PREFECT_API_URL": server.api_url, "PYTHONPATH": str(ROOT)}
            for k in counts:
                campaign = args.campaign.format(k=k)
                runs[k] = _workers_run(
                    k, args.batch_size, manifest.name, campaign, tmp, child_env, overlap=not args.no_overlap
                )
    finally:
        server.stop()
    raw_after = _raw_loop(raw_pipe, first.variants, args.batch_size)
    params = first.variants[0].params
    return {
        "variants": len(first.variants),
        "raw": (raw_before, raw_after),
        "runs": runs,
        "model": f"{manifest.name}, {params.width}x{params.height}, {params.steps} steps, guidance {params.guidance}",
    }


def _workers_run(
    k: int, batch_size: int, model: str, campaign: str, tmp: Path, env: dict[str, str], *, overlap: bool
) -> float:
    """Seconds k warm workers take to make `campaign`, from its run's start to its end."""
    from infra.coordinator import coordinate, prefect_dispatch, sending_default
    from prompt_library.models import Campaign
    from review.models import Run, WorkerHeartbeat
    from review.services.runs import campaign_run_start

    names = [f"bench-{k}-{i + 1}" for i in range(k)]
    procs = []
    for name in names:
        log = (tmp / f"{name}.log").open("wb")
        argv = [sys.executable, "-m", "infra.workers", "worker", "--name", name, "--models", model, "--threads", "1"]
        argv += [] if overlap else ["--no-overlap"]
        procs.append(subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT))
    try:
        deadline = time.monotonic() + 300
        while WorkerHeartbeat.objects.filter(name__in=names).exclude(models_loaded=[]).count() < k:
            if any(p.poll() is not None for p in procs) or time.monotonic() > deadline:
                raise SystemExit(f"workers did not start: see {tmp}/bench-{k}-*.log")
            time.sleep(0.5)
        time.sleep(3)  # their task subscriptions open just after the first heartbeat
        run = campaign_run_start(campaign=Campaign.objects.get(name=campaign), actor=None, submit=False)
        if run.total == 0:
            raise SystemExit(f"campaign {campaign} had nothing left to make: use a fresh database")
        per_task, _ = sending_default()  # as a served run sends them
        started = time.perf_counter()
        outcome = coordinate(
            run_id=run.pk,
            batch_size=batch_size,
            dispatch=prefect_dispatch,
            max_in_flight=2 * k * per_task,
            batches_per_task=per_task,
            poll_seconds=0.05,
        )
        seconds = time.perf_counter() - started
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
    done = Run.objects.get(pk=run.pk)
    if outcome.state != "succeeded" or done.done != done.total:
        raise SystemExit(f"run with {k} worker(s) ended {outcome.state}: {done.done} of {done.total} made")
    return seconds


def _report(args: argparse.Namespace, counts: list[int], figures: dict[str, Any]) -> None:
    n = figures["variants"]
    raw = sum(figures["raw"]) / 2
    raw_rate = n / raw
    mode = "finishing one batch while generating the next" if not args.no_overlap else "one batch at a time"
    print(f"\n{n} variants, batches of {args.batch_size}, {figures['model']}; {os.cpu_count()} CPU core(s)")
    print(f"workers: one torch thread each, {mode}")
    print(
        f"raw diffusers loop, 1 thread: {figures['raw'][0]:.1f} s and {figures['raw'][1]:.1f} s -> {raw_rate:.2f} img/s"
    )
    print(
        f"{'workers':>7} | {'seconds':>8} | {'img/s':>6} | {'per worker':>10} | {'per worker / raw':>16} | vs 1 worker"
    )
    one = figures["runs"].get(1)
    for k in counts:
        seconds = figures["runs"][k]
        rate = n / seconds
        per_worker = rate / k
        versus_raw = per_worker / raw_rate
        scaling = f"{(n / seconds) / (n / one):.2f}x" if one else "-"
        print(f"{k:>7} | {seconds:>8.1f} | {rate:>6.2f} | {per_worker:>10.2f} | {versus_raw:>16.2f} | {scaling}")
    for k in counts:
        ratio = (n / figures["runs"][k]) / k / raw_rate
        verdict = "met" if ratio >= GOAL_PER_WORKER else "NOT met"
        print(f"goal per worker / raw >= {GOAL_PER_WORKER} with {k} worker(s): {ratio:.2f} ({verdict})")
    if one and 2 in figures["runs"]:
        scale = figures["runs"][1] / figures["runs"][2]
        print(f"goal 2 workers >= {GOAL_SCALING}x one: {scale:.2f}x ({'met' if scale >= GOAL_SCALING else 'NOT met'})")


if __name__ == "__main__":
    main()
