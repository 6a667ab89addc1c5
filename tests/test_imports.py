"""The web process never imports torch, diffusers or transformers.

A fresh interpreter boots Django as the web server does, resolves the URLconf and imports every
module under review/; the ML libraries must still be absent from `sys.modules`. The import
contracts (make check-imports) say the same of the source; this proves it of the running process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ML_LIBRARIES = ("torch", "diffusers", "transformers")

# Runs in the subprocess: prints {"<ml library>": "<the first module whose import brought it in>"}.
WEB_PROCESS = """
import importlib, json, pkgutil, sys

import django

ML_LIBRARIES = {libraries!r}
culprits = {{}}


def note(step):
    for name in ML_LIBRARIES:
        if name in sys.modules and name not in culprits:
            culprits[name] = step


django.setup()
note("django.setup()")
import infra.urls  # noqa: E402

note("infra.urls")
from django.urls import get_resolver  # noqa: E402

get_resolver().url_patterns
note("the URLconf resolved")
import review  # noqa: E402

for module in sorted(m.name for m in pkgutil.walk_packages(review.__path__, "review.")):
    importlib.import_module(module)
    note(module)
print(json.dumps(culprits))
"""


def test_the_web_process_never_imports_the_ml_libraries() -> None:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "infra.settings"}
    result = subprocess.run(
        [sys.executable, "-c", WEB_PROCESS.format(libraries=ML_LIBRARIES)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    culprits = json.loads(result.stdout.strip().splitlines()[-1])
    assert culprits == {}, f"the web process imported {', '.join(culprits)}: " + "; ".join(
        f"{library} after {step}" for library, step in culprits.items()
    )
