"""What the database benches share: Django on a bench database beside `DATABASE_URL`, the fillers
of the asset columns a bench does not name, and percentiles."""

from __future__ import annotations

import os
from pathlib import Path

# Columns of review_asset the database requires that a bench does not name (added by other
# features): filled by type, the row number where a unique bigint is needed, '' for other types.
FILLERS = {
    "bigint": "i",
    "integer": "0",
    "smallint": "0",
    "double precision": "0",
    "boolean": "false",
    "jsonb": "'{}'::jsonb",
    "timestamp with time zone": "now()",
    "character varying": "''",
    "text": "''",
}


def django_setup(url: str, var_dir: Path, *, persistent: bool = False) -> None:
    """Django on database ``url``, with its files and keys under ``var_dir``, DEBUG off (it keeps
    every query in memory). ``persistent``: connections outlive a request, as gunicorn's threads
    keep them in production."""
    os.environ["DATABASE_URL"] = url
    os.environ["GREENLIGHT_DEBUG"] = "0"
    os.environ.setdefault("GREENLIGHT_SECRET_KEY", "bench-only-not-secret")
    os.environ["GREENLIGHT_ALLOWED_HOSTS"] = "testserver"
    if persistent:
        os.environ["GREENLIGHT_DB_CONN_MAX_AGE"] = "60"
    os.environ["GREENLIGHT_VAR_DIR"] = str(var_dir)
    os.environ["GREENLIGHT_KEYS_DIR"] = str(var_dir / "keys")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "infra.settings")
    import django

    django.setup()


def percentile(samples: list[float], q: float) -> float:
    """The `q`-th percentile (nearest rank) of `samples`; NaN when there are none."""
    if not samples:
        return float("nan")
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def database_url(base: str, name: str) -> str:
    """`base` (a PostgreSQL URL) pointing at database `name` instead."""
    head, _, _ = base.rpartition("/")
    return f"{head}/{name}"


def database_recreate(base: str, name: str) -> None:
    """Drop database `name` on the server of `base` (closing its connections) and create it empty."""
    import psycopg

    with psycopg.connect(database_url(base, "postgres"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
