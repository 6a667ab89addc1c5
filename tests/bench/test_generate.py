"""`python -m bench.generate` runs as its docstring says, from a shell with nothing set up: a
bench that cannot start measures nothing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_generation_bench_runs_from_a_bare_shell_and_prints_its_table() -> None:
    env = {name: value for name, value in os.environ.items() if name != "DJANGO_SETTINGS_MODULE"}
    done = subprocess.run(
        [sys.executable, "-m", "bench.generate", "--images", "1", "--rounds", "1", "--steps", "1"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    rows = [line.split("|") for line in done.stdout.splitlines() if line.strip()[:2] in {"1 ", "8 ", "32"}]
    assert [row[0].strip() for row in rows] == ["1", "8", "32"]
    for row in rows:  # both sides made images: a rate above nothing on each
        assert float(row[1]) > 0 and float(row[2]) > 0
