"""Refreshing the dashboard's summary views (PostgreSQL materialised views).

`REFRESH MATERIALIZED VIEW CONCURRENTLY` rebuilds each view beside the old one, so the dashboard
keeps reading while it runs; it is run by `manage.py insight_refresh` (once, or every N seconds
with `--every`) and by the dashboard's Refresh button. The views are named in one place here.
Each is analysed after its refresh: a refreshed view has no statistics until autovacuum gets to
it, and the planner's guess of a hundred rows for ten thousand made the dashboard's joins nested
loops (three times slower at a million assets). The views are small, so this costs milliseconds.
"""

from __future__ import annotations

import time

from django.db import connection

VIEWS = (  # in refresh order: a total after the per-day view it sums
    "insight_asset_day",
    "insight_variable_day",
    "insight_combination",
    "insight_review_day",
    "insight_reason_day",
    "insight_asset_total",
    "insight_variable_total",
    "insight_combination_total",
    "insight_refreshed",
)


def insight_refresh(*, concurrently: bool = True) -> float:
    """Refresh every summary view; returns the seconds it took (0 where there are none: SQLite)."""
    if connection.vendor != "postgresql":
        return 0.0
    started = time.perf_counter()
    how = " CONCURRENTLY" if concurrently else ""
    with connection.cursor() as cursor:
        for view in VIEWS:
            cursor.execute(f"REFRESH MATERIALIZED VIEW{how} {view}")
            cursor.execute(f"ANALYZE {view}")
    return time.perf_counter() - started
