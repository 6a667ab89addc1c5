"""Each pytest-xdist worker process gets folders of its own (loaded with ``-p``, before
Django's settings read the environment).

The suite runs on as many worker processes as the machine has cores (``--numprocesses logical`` in
pyproject.toml): much of it waits on servers, browsers and subprocesses, so two workers on two
cores take little more than half the time of one. Each worker already has its own test
database (pytest-django adds ``_gw0``, ``_gw1``...), but the files a test stores
(``GREENLIGHT_VAR_DIR``: masters named by their asset's key, which is the same in both workers
for the same campaign, and swept when no asset references them) and Prefect's local database
(``PREFECT_HOME``) would be shared: each worker takes a subfolder named after it.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

WORKER = os.environ.get("PYTEST_XDIST_WORKER")

if WORKER:
    for name in ("GREENLIGHT_VAR_DIR", "PREFECT_HOME"):
        base = os.environ.get(name)
        folder = Path(base) / WORKER if base else Path(tempfile.mkdtemp(prefix=f"greenlight-{WORKER}-"))
        folder.mkdir(parents=True, exist_ok=True)
        os.environ[name] = str(folder)
