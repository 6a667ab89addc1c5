"""What a web process pays to start: Django set up, the URLconf imported and resolved.

    python -m bench.web_process [--runs 5]

Each run is a fresh interpreter (so nothing is cached in memory) that boots Django with
``infra.settings``, imports ``infra.urls`` and ``infra.wsgi`` and resolves every URL pattern, then
reports its wall time and peak resident memory, and which of torch, diffusers and transformers it
loaded. The same start with ``import torch`` added shows what the dashboard would pay if any page
pulled in the generation engine. The table gives the median of ``--runs`` runs of each, taken in
alternation so the machine's load falls on both; goal: the web process imports none of the three.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

HEAVY = ("torch", "diffusers", "transformers")
_PROBE = """
import json, os, resource, sys, time
started = time.perf_counter()
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "infra.settings")
import django
django.setup()
import infra.urls, infra.wsgi
from django.urls import get_resolver
get_resolver().url_patterns
if {with_torch}:
    import torch
print(json.dumps({{
    "seconds": time.perf_counter() - started,
    "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    "heavy": [name for name in {heavy!r} if name in sys.modules],
}}))
"""


@dataclass(frozen=True)
class Start:
    seconds: float
    peak_mb: float
    heavy: tuple[str, ...]


def _start(*, with_torch: bool) -> Start:
    code = _PROBE.format(with_torch=with_torch, heavy=HEAVY)
    root = Path(__file__).resolve().parent.parent
    env = {**os.environ, "PYTHONPATH": str(root)}
    done = subprocess.run([sys.executable, "-c", code], cwd=root, env=env, capture_output=True, text=True, check=True)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return Start(seconds=float(result["seconds"]), peak_mb=float(result["peak_mb"]), heavy=tuple(result["heavy"]))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    web: list[Start] = []
    engine: list[Start] = []
    for _ in range(args.runs):
        web.append(_start(with_torch=False))
        engine.append(_start(with_torch=True))

    def median(runs: list[Start], key: str) -> float:
        return statistics.median(float(getattr(r, key)) for r in runs)

    loaded = sorted({name for r in web for name in r.heavy})
    print(f"web process start, median of {args.runs} fresh interpreters")
    print(f"{'':24}{'seconds':>9}{'peak MB':>9}")
    for label, runs in (("web process", web), ("web process + torch", engine)):
        print(f"{label:24}{median(runs, 'seconds'):9.2f}{median(runs, 'peak_mb'):9.0f}")
    print(
        f"web / with torch: time {median(web, 'seconds') / median(engine, 'seconds'):.2f}, "
        f"memory {median(web, 'peak_mb') / median(engine, 'peak_mb'):.2f}"
    )
    print(f"heavy libraries the web process loaded: {', '.join(loaded) or 'none'} (goal: none)")


if __name__ == "__main__":
    main()
