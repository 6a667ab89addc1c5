"""What the database benches share: a fresh bench database beside `DATABASE_URL`, and percentiles."""

from __future__ import annotations


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
