"""The pipeline against the bare model: a campaign and the raw diffusers loop on the same images
and threads, timed in one run.

    DATABASE_URL=postgres://... python -m bench.pipeline [--variants 256] [--batch-size 8]
        [--threads 2] [--worker-threads N] [--finalize auto|overlap|after] [--no-command]
        [--no-campaign] [--cold]

Everything lives in a temporary folder (prompt library, storage, signing and watermark keys,
Prefect's home) except the database, which ``DATABASE_URL`` names and this bench migrates. Three
campaigns of ``--variants`` variants each (the shipped ``catalog-scene`` template on the embedded
model: 4 colours x 4 products x 2 scenes, and as many seeds as that takes, from a number drawn
for the run so that a database used before holds none of them; the third for ``--cold``) are
loaded, and a fourth of one seed that warms the served topology up; their images differ only by
seed.

1. ``campaign/raw``: in this process, with ``--threads`` torch threads, the model loaded and one
   batch made on both sides first (a warm worker), ``pipeline.run.campaign_run`` (registered,
   generated, watermarked, signed, stored with thumbnails and handed over to review) and the raw loop
   (``StableDiffusionPipeline`` called in batches with the variants' prompts, negative prompts,
   steps, guidance, size and one generator per seed, as diffusers documents it) on the same
   variants, paired batch by batch: each raw call runs right after the campaign's generation of
   the same batch, once the previous batch's finalising beside that generation is done (nothing
   of the campaign runs beside a raw call), and is taken out of the campaign's time (first batch
   to last result). This machine's speed moves by up to a tenth
   from one minute to the next (the raw loop run whole before and after a campaign took 38.6 and
   41.8 s in one run); paired calls a second apart see the same machine, so the ratio measures
   the pipeline, not the drift.
2. ``command/raw``: each as a fresh process, timed from start to exit: a script that imports
   torch and diffusers, loads the folder and runs the same raw loop on the second campaign's
   variants, then ``manage.py campaign_run`` on that campaign as an operator runs it where the
   generation workers are up: a Prefect server and one worker holding the model (``infra.workers``,
   ``--threads`` torch threads, or ``--worker-threads``) are started, and have made one small
   campaign (``bench-warm-up``, 32 variants, through the same command), before the clock; the
   command (imports, run start, coordination) hands the campaign to that worker, in Prefect task
   runs of ``GREENLIGHT_BATCHES_PER_TASK`` batches, and waits for its end. With ``--cold``, also
   ``campaign_run --on here`` on a third campaign: no worker, Prefect's local mode, the model
   loaded by the command itself (``cold command/raw``, printed without a goal). The raw process
   runs again after the commands; the ratios are taken against the mean of its two times. Beside
   the ratio, the CPU seconds each process used: the raw script, and, while the command ran, the
   command itself, the worker and the Prefect server (what a served run costs besides the model),
   and the generation time of each side summed over its batches (the worker's as its assets
   record it, the raw loop's as the script times its model calls): on a machine whose cores all
   generate, what the rest of the served run takes from the cores shows as the difference.

A per-stage table splits the campaign's time: timers wrap the stage functions ``pipeline.run``
calls (preflight, registration, generation, post-processing, hand-over), wall time in the thread
that runs them, and the post-processing's CPU time; a second table cuts each asset's
post-processing into its stages (``bench.provenance.FinalizeStages``: median per asset). Goals:
campaign/raw >= 0.90, command/raw >= 0.85. On a machine shared with other work both sides carry
that load; say so with the figures. ``--finalize auto`` is the plan a worker on this machine
takes (``pipeline.batches.finalize_plan``), ``overlap`` finalises beside generation at nice 10
with the model keeping every thread, ``after`` between batches on every core.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

GOALS = {"campaign/raw": 0.90, "command/raw": 0.85}
COLOURS = ("red", "blue", "green", "yellow")
PRODUCTS = ("mug", "bottle", "lamp", "t-shirt")
SCENES = ("on a wooden table", "on a white studio background")
PER_SEED = len(COLOURS) * len(PRODUCTS) * len(SCENES)
ROOT = Path(__file__).resolve().parent.parent
TEMPLATE_DIR = ROOT / "prompt_library" / "library" / "templates" / "catalog-scene"

# The raw loop as its own process: only torch and diffusers, as a script using diffusers would.
RAW_SCRIPT = """
import json, sys, time
started = time.perf_counter()
import torch
from diffusers import StableDiffusionPipeline
job = json.load(open(sys.argv[1]))
pipe = StableDiffusionPipeline.from_pretrained(job["folder"], safety_checker=None)
pipe.set_progress_bar_config(disable=True)
loop_started = time.perf_counter()
for at in range(0, len(job["prompts"]), job["batch"]):
    chunk = slice(at, at + job["batch"])
    with torch.inference_mode():
        pipe(prompt=job["prompts"][chunk], negative_prompt=job["negatives"][chunk],
             num_inference_steps=job["steps"], guidance_scale=job["guidance"], width=job["width"],
             height=job["height"], generator=[torch.Generator().manual_seed(s) for s in job["seeds"][chunk]])
print(f"loop {time.perf_counter() - loop_started}")
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variants", type=int, default=256, help=f"variants per campaign, a multiple of {PER_SEED}")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2, help="torch threads on both sides (default 2)")
    parser.add_argument("--finalize", choices=("auto", "overlap", "after"), default="auto")
    parser.add_argument(
        "--worker-threads",
        type=int,
        help="torch threads of the command's generation worker (default: --threads; the raw loop keeps --threads)",
    )
    parser.add_argument(
        "--no-finalize-pool",
        action="store_true",
        help="finalise in threads (and time each asset's stages) rather than in a warm worker's processes",
    )
    parser.add_argument("--no-command", action="store_true", help="skip the command/raw part")
    parser.add_argument("--no-campaign", action="store_true", help="skip the campaign/raw part")
    parser.add_argument(
        "--cold", action="store_true", help="also time the command making a campaign in its own process, no workers"
    )
    args = parser.parse_args()
    if args.variants < PER_SEED or args.variants % PER_SEED:
        parser.error(f"--variants {args.variants}: must be a positive multiple of {PER_SEED}")
    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        parser.error("set DATABASE_URL to a PostgreSQL database this bench may migrate and write to")

    with tempfile.TemporaryDirectory(prefix="bench-pipeline-") as folder:
        tmp = Path(folder)
        env = _environment(tmp, args.threads)
        os.environ.update(env)
        seeds = args.variants // PER_SEED
        # Seeds no earlier run drew, so that a database used before holds none of these variants.
        first = 1 + int.from_bytes(os.urandom(4), "big") % 10**9
        campaigns = {
            "bench-in-process": (first, seeds),
            "bench-command": (first + seeds, seeds),
            "bench-cold": (first + 2 * seeds, seeds),
            "bench-warm-up": (first + 3 * seeds, 1),
        }
        _library_write(tmp / "library", campaigns)
        _setup()
        campaign_figures = None if args.no_campaign else _in_process(args)
        command_figures = None if args.no_command else _command(args, tmp, env)
    _report(args, campaign_figures, command_figures)


def _environment(tmp: Path, threads: int) -> dict[str, str]:
    """What both sides and the command's process run with: the bench's folders, one thread count."""
    return {
        "GREENLIGHT_VAR_DIR": str(tmp / "var"),
        "GREENLIGHT_KEYS_DIR": str(tmp / "keys"),
        "GREENLIGHT_LIBRARY_DIR": str(tmp / "library"),
        "PREFECT_HOME": str(tmp / "prefect"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_LOGGING_TO_API_ENABLED": "false",
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "90",
        "OMP_NUM_THREADS": str(threads),
        "DJANGO_SETTINGS_MODULE": "infra.settings",
    }


def _library_write(root: Path, campaigns: dict[str, tuple[int, int]]) -> None:
    """The shipped catalog-scene template and one campaign per name: (first seed, seeds)."""
    (root / "templates" / "catalog-scene").mkdir(parents=True)
    (root / "campaigns").mkdir()
    for version in TEMPLATE_DIR.iterdir():
        (root / "templates" / "catalog-scene" / version.name).write_bytes(version.read_bytes())
    for name, (first_seed, seeds) in campaigns.items():
        spec = {
            "name": name,
            "title": f"Pipeline bench ({name})",
            "kind": "scheduled",
            "template": "catalog-scene",
            "template_version": 1,
            "variables": {"colour": list(COLOURS), "product": list(PRODUCTS), "scene": list(SCENES)},
            "seeds": list(range(first_seed, first_seed + seeds)),
        }
        (root / "campaigns" / f"{name}.yaml").write_text(json.dumps(spec))  # JSON is YAML


def _setup() -> None:
    """Django on the bench's folders: the database migrated, keys made, the library loaded."""
    from django.core.management import call_command

    import infra.django_boot  # noqa: F401

    call_command("migrate", verbosity=0)
    call_command("signing_keys_create", verbosity=0)
    call_command("library_load", verbosity=0)


def _in_process(args: argparse.Namespace) -> dict[str, Any]:
    """campaign/raw: the raw loop, the campaign, the raw loop again, in this process."""
    import torch

    torch.set_num_threads(args.threads)

    import infra.django_boot  # noqa: F401
    from bench.provenance import FinalizeStages
    from models import manifest_load
    from models.loading import pipeline_load
    from pipeline import batches, run
    from pipeline.batches import FinalizePlan
    from pipeline.config import config_from_settings
    from pipeline.finalize_pool import finalize_pool_start, finalize_pool_stop
    from prompt_library.selectors import campaign_plan_get

    plan = campaign_plan_get(name="bench-in-process")
    variants = plan.variants
    manifest = manifest_load(plan.version.model_name)
    raw_pipe = _raw_pipeline(manifest.folder)
    pipeline_load(manifest)  # the worker's model, loaded once as a warm worker holds it
    finalize = {
        "auto": None,
        "overlap": FinalizePlan(
            overlap=True, threads=1, nice=10, reason="bench: beside generation, one thread, nice 10"
        ),
        "after": FinalizePlan(overlap=False, threads=os.cpu_count() or 1, reason="bench: after each batch"),
    }[args.finalize]
    config = config_from_settings()
    if not args.no_finalize_pool:  # a warm worker's finalising processes, started as it starts them
        finalize_pool_start(config, (finalize or batches.model_finalize_plan(manifest)).alone)
    _raw_loop(raw_pipe, variants[: args.batch_size], args.batch_size)  # warm-up: first calls allocate
    batches.batch_generate(manifest, variants[: args.batch_size])  # the same for the engine

    timers = _StageTimers()
    timers.wrap(run, "version_preflight", "preflight")
    timers.wrap(run, "assets_register", "register")
    timers.wrap(run, "batch_generate", "generate")
    raw_paired = _raw_pair(run, raw_pipe)
    timers.wrap(run, "batch_finalize", "post-process (batches)")
    timers.wrap(batches, "image_finalize", "post-process (assets)", cpu=True)
    stages = FinalizeStages()
    _asset_stages_wrap(batches, stages)
    timers.wrap(run, "assets_hand_over", "hand-over")
    started = time.perf_counter()
    with stages.timing():
        summary = run.campaign_run(
            campaign="bench-in-process", batch_size=args.batch_size, config=config, finalize=finalize
        )
    campaign_seconds = time.perf_counter() - started - sum(raw_paired)
    finalize_pool_stop(config)
    if summary.generated != len(variants) or summary.failed:
        raise SystemExit(f"campaign made {summary.generated} of {len(variants)} ({summary.failed} failed)")
    if len(raw_paired) != summary.batches:
        raise SystemExit(f"{len(raw_paired)} raw calls paired with the campaign's {summary.batches} batches")
    return {
        "variants": len(variants),
        "raw": sum(raw_paired),
        "campaign": campaign_seconds,
        "stages": timers.totals,
        "asset stages": stages.medians() if stages.samples else {},
        "model": f"{manifest.name}, {variants[0].params.width}x{variants[0].params.height}, "
        f"{variants[0].params.steps} steps, guidance {variants[0].params.guidance}, "
        f"output {variants[0].output.width}x{variants[0].output.height} PNG",
    }


def _raw_pair(module: Any, raw_pipe: Any) -> list[float]:
    """Pair each ``batch_generate`` call ``module`` makes with the raw call on the same variants,
    right after it, once the work beside it (the batch before, finalised meanwhile) is done, so
    that nothing of the campaign runs beside a raw call; returns the list the raw calls' seconds
    go into, in batch order."""
    function: Callable[..., Any] = module.batch_generate
    seconds: list[float] = []

    def paired(manifest: Any, variants: Sequence[Any], *, beside: Any = None) -> Any:
        made = function(manifest, variants, beside=beside)
        if beside is not None:
            beside.wait()
        seconds.append(_raw_loop(raw_pipe, variants, len(variants)))
        return made

    module.batch_generate = paired
    return seconds


def _asset_stages_wrap(module: Any, stages: Any) -> None:
    """Close a ``FinalizeStages`` sample after each ``image_finalize`` call ``module`` makes, with
    that call's wall and CPU milliseconds as its total."""
    function: Callable[..., Any] = module.image_finalize

    def sampled(*args: Any, **kwargs: Any) -> Any:
        wall, used = time.perf_counter(), time.thread_time()
        try:
            return function(*args, **kwargs)
        finally:
            stages.asset_end(((time.perf_counter() - wall) * 1000, (time.thread_time() - used) * 1000))

    module.image_finalize = sampled


def _raw_pipeline(folder: Path) -> Any:
    from diffusers import StableDiffusionPipeline

    pipe = StableDiffusionPipeline.from_pretrained(folder, safety_checker=None)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _raw_loop(pipe: Any, variants: Sequence[Any], batch_size: int) -> float:
    """Seconds the bare diffusers call takes for ``variants`` in batches, as diffusers documents it."""
    import torch

    started = time.perf_counter()
    for at in range(0, len(variants), batch_size):
        chunk = variants[at : at + batch_size]
        params = chunk[0].params
        with torch.inference_mode():
            pipe(
                prompt=[v.prompt for v in chunk],
                negative_prompt=[v.negative_prompt for v in chunk],
                num_inference_steps=params.steps,
                guidance_scale=params.guidance,
                width=params.width,
                height=params.height,
                generator=[torch.Generator().manual_seed(v.seed) for v in chunk],
            )
    return time.perf_counter() - started


class _StageTimers:
    """Wall (and optionally CPU) seconds spent in functions a module calls, summed by stage over
    every thread that calls them."""

    def __init__(self) -> None:
        self.totals: dict[str, float] = {}
        self._lock = threading.Lock()

    def wrap(self, module: Any, name: str, stage: str, *, cpu: bool = False) -> None:
        function: Callable[..., Any] = getattr(module, name)

        def timed(*args: Any, **kwargs: Any) -> Any:
            wall, used = time.perf_counter(), time.thread_time()
            try:
                return function(*args, **kwargs)
            finally:
                with self._lock:
                    self.totals[stage] = self.totals.get(stage, 0.0) + time.perf_counter() - wall
                    if cpu:
                        key = f"{stage} cpu"
                        self.totals[key] = self.totals.get(key, 0.0) + time.thread_time() - used

        setattr(module, name, timed)


def _command(args: argparse.Namespace, tmp: Path, env: dict[str, str]) -> dict[str, float]:
    """command/raw: the raw loop as a fresh process, then ``manage.py campaign_run`` handing the
    second campaign to a warm generation worker, each timed from start to exit; with ``--cold``,
    also the command making a third campaign in its own process (Prefect's local mode)."""
    from prefect.server.api.server import SubprocessASGIServer

    from models import manifest_load
    from prompt_library.selectors import campaign_plan_get

    variants = campaign_plan_get(name="bench-command").variants
    params = variants[0].params
    job = {
        "folder": str(manifest_load("embedded").folder),
        "prompts": [v.prompt for v in variants],
        "negatives": [v.negative_prompt for v in variants],
        "seeds": [v.seed for v in variants],
        "steps": params.steps,
        "guidance": params.guidance,
        "width": params.width,
        "height": params.height,
        "batch": args.batch_size,
    }
    job_file = tmp / "raw-job.json"
    job_file.write_text(json.dumps(job))
    child_env = {**os.environ, **env}
    figures: dict[str, float] = {}
    raw_out: list[str] = []  # the raw processes' output: each says how long its loop took
    # The production topology, up before the clock starts as it is on a machine that serves
    # campaigns: a Prefect server and one generation worker holding the model, on the same threads.
    server = SubprocessASGIServer()
    server.start(timeout=120)
    served_env = {**child_env, "PREFECT_API_URL": server.api_url}
    worker = _worker_start(
        served_env, tmp / "worker.log", args.worker_threads or args.threads, pool=not args.no_finalize_pool
    )
    try:
        # A serving machine's server and worker have made campaigns before: one small campaign
        # through the same command, untimed (the server builds each API route's handler at its
        # first request, 0.4 s for the first; the worker's task runner starts its threads).
        _timed_process(_campaign_command("bench-warm-up", args.batch_size, "workers"), served_env)
        figures["raw before"] = _timed_process(
            [sys.executable, "-c", RAW_SCRIPT, str(job_file)], child_env, cpu=(figures, "raw cpu"), out=raw_out
        )
        served = {"server": server.server_process.pid if server.server_process else None, "worker": worker.pid}
        before = {name: _process_cpu(pid) for name, pid in served.items()}
        figures["command"] = _timed_process(
            _campaign_command("bench-command", args.batch_size, "workers"), served_env, cpu=(figures, "command cpu")
        )
        for name, pid in served.items():
            figures[f"{name} cpu"] = _process_cpu(pid) - before[name]
        figures["worker generation"] = _served_generation("bench-command")
    finally:
        worker.terminate()
        worker.wait(30)
        server.stop()
    if args.cold:
        figures["cold command"] = _timed_process(_campaign_command("bench-cold", args.batch_size, "here"), child_env)
    # The raw process again, last: the ratios are taken against the mean of the two (a change in
    # the machine's load during the run falls on both sides alike).
    figures["raw after"] = _timed_process([sys.executable, "-c", RAW_SCRIPT, str(job_file)], child_env, out=raw_out)
    figures["raw process"] = (figures["raw before"] + figures["raw after"]) / 2
    # The raw loop's model calls alone (its imports and model load apart), the mean of its two runs.
    loops = [float(line.split()[1]) for out in raw_out for line in out.splitlines() if line.startswith("loop ")]
    figures["raw generation"] = sum(loops) / len(loops)
    return figures


def _campaign_command(campaign: str, batch_size: int, where: str) -> list[str]:
    return [
        sys.executable,
        str(ROOT / "manage.py"),
        "campaign_run",
        campaign,
        "--batch-size",
        str(batch_size),
        "--on",
        where,
    ]


def _worker_start(env: dict[str, str], log: Path, threads: int, *, pool: bool = True) -> subprocess.Popen[bytes]:
    """A generation worker for the embedded model, returned once its model is loaded and its task
    subscription is open (its first heartbeat, and a moment for the subscription)."""
    from review.models import WorkerHeartbeat

    WorkerHeartbeat.objects.filter(name="bench-worker").delete()
    argv = [sys.executable, "-m", "infra.workers", "worker", "--name", "bench-worker", "--models", "embedded"]
    with log.open("wb") as out:
        worker = subprocess.Popen(
            [*argv, "--threads", str(threads), *([] if pool else ["--no-finalize-pool"])],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 240
    while not WorkerHeartbeat.objects.filter(name="bench-worker").exists():
        if worker.poll() is not None or time.monotonic() > deadline:
            worker.kill()
            raise SystemExit(f"the bench's worker did not start:\n{log.read_text()[-3000:]}")
        time.sleep(0.5)
    time.sleep(3)
    return worker


def _timed_process(
    argv: list[str],
    env: dict[str, str],
    *,
    cpu: tuple[dict[str, float], str] | None = None,
    out: list[str] | None = None,
) -> float:
    """Wall seconds of ``argv`` as a fresh process; with ``cpu`` (figures, name), its CPU seconds
    (user and system, its own children included) go into the figures under that name; with
    ``out``, its standard output is appended there."""
    started, children = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(argv, env=env, cwd=ROOT, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if out is not None:
        out.append(done.stdout)
    if cpu is not None:
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        figures, name = cpu
        figures[name] = after.ru_utime + after.ru_stime - children.ru_utime - children.ru_stime
    if done.returncode:
        raise SystemExit(
            f"{' '.join(argv[:3])} failed ({done.returncode}):\n{done.stdout[-2000:]}{done.stderr[-4000:]}"
        )
    return seconds


def _served_generation(campaign: str) -> float:
    """Seconds the worker's generation took in ``campaign``'s latest run (a database used before
    holds earlier ones), summed over its batches: each asset records its share of its batch's."""
    from django.db.models import Sum

    from review.models import Asset, Run

    run = Run.objects.filter(campaign__name=campaign).order_by("-id").first()
    total = Asset.objects.filter(run=run).aggregate(s=Sum("generation_seconds"))
    return float(total["s"] or 0.0)


def _process_cpu(pid: int | None) -> float:
    """CPU seconds (user and system, all threads) a running process and the processes it started
    (a worker's finalising processes) have used so far; 0 if unknown."""
    if pid is None:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        children = [
            int(child)
            for task in Path(f"/proc/{pid}/task").iterdir()
            for child in (task / "children").read_text().split()
        ]
    except OSError:
        return 0.0
    own = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime
    return own + sum(_process_cpu(child) for child in children)


def _batches_per_task() -> int:
    """The batches one Prefect task run carries to the worker, as the command sends them."""
    from infra.coordinator import sending_default

    return sending_default()[0]


def _report(args: argparse.Namespace, campaign: dict[str, Any] | None, command: dict[str, float] | None) -> None:
    print(
        f"pipeline bench: {args.variants} variants, batch {args.batch_size}, {args.threads} torch thread(s)"
        + (f" ({args.worker_threads} in the command's worker)" if args.worker_threads else "")
        + ", "
        f"post-processing plan {args.finalize}"
        + (" in threads" if args.no_finalize_pool else " in processes")
        + (f", {_batches_per_task()} batch(es) to a served task" if command else "")
        + (f", model {campaign['model']}" if campaign else "")
    )
    if campaign is not None:
        raw = campaign["raw"]
        print(f"  raw loop (in process)   {raw:8.1f} s  (each batch's call right after the campaign's)")
        print(f"  campaign (in process)   {campaign['campaign']:8.1f} s  (its paired raw calls taken out)")
        print(_ratio_line("campaign/raw", raw / campaign["campaign"]))
    if command is not None:
        print(
            f"  raw loop (own process)  {command['raw process']:8.1f} s  (imports and model load included; "
            f"before {command['raw before']:.1f} s, after {command['raw after']:.1f} s)"
        )
        print(f"  campaign_run command    {command['command']:8.1f} s  (imports, run start, the run on a warm worker)")
        print(_ratio_line("command/raw", command["raw process"] / command["command"]))
        print(
            f"    CPU seconds: raw process {command['raw cpu']:.1f} (before); while the command ran: command "
            f"{command['command cpu']:.1f}, worker (with its finalising processes) {command['worker cpu']:.1f}, "
            f"Prefect server {command['server cpu']:.1f}"
        )
        print(
            f"    generation, summed over batches: the worker's {command['worker generation']:.1f} s (model calls "
            f"and the resize to the output's size), the raw loop's {command['raw generation']:.1f} s (its model "
            "calls, mean of its two runs)"
        )
        if "cold command" in command:
            cold = command["cold command"]
            print(f"  campaign_run, no worker {cold:8.1f} s  (imports, Prefect's local server, model, preflight, run)")
            print(f"  cold command/raw {command['raw process'] / cold:.3f}  (no goal: the overhead a worker pays once)")
    if campaign is None:
        return
    print("stages of the campaign (seconds, summed over batches; wall in the thread that ran them)")
    total = campaign["campaign"]
    for stage, seconds in campaign["stages"].items():
        print(f"  {stage:32} {seconds:8.2f}  {seconds / total:6.1%}")
    accounted = sum(s for k, s in campaign["stages"].items() if "cpu" not in k and "(assets)" not in k)
    print(f"  {'other (expansion, lookups, waits)':32} {max(0.0, total - accounted):8.2f}")
    if campaign["asset stages"]:
        from bench.provenance import stage_print

        stage_print([(campaign["model"].rsplit("output ", 1)[-1], campaign["asset stages"])])
    else:
        print("post-processing stages: made in the pool's processes, not timed here (--no-finalize-pool times them)")


def _ratio_line(name: str, ratio: float) -> str:
    goal = GOALS[name]
    return f"{name} {ratio:.3f}  (goal >= {goal:.2f}: {'met' if ratio >= goal else 'MISSED'})"


if __name__ == "__main__":
    main()
