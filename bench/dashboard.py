"""The production dashboard at a million assets and a million and a half decisions.

    nice -n 5 python -m bench.dashboard [--assets 1000000] [--decisions 1500000] [--requests 40]

1. Creates a fresh database (``greenlight_bench_dashboard`` on the server of ``DATABASE_URL``),
   migrates it and seeds, with bulk ``INSERT ... SELECT generate_series`` statements, 4 templates
   of 3 versions (two of them with a style), 24 campaigns, 3 models, 12 reviewers, ``--assets``
   assets over 90 days (a third in review; the rest approved, published, rejected or failed, each
   with its variables and generation seconds) and ``--decisions`` decisions (two reviewers on
   every decided asset, a third on some, sometimes disagreeing). Timed.
2. Refreshes the summary views (`review.insight.refresh`, what ``manage.py insight_refresh``
   runs), timed: the dashboard reads only these PostgreSQL materialised views (per day, and
   all-time totals of them for a page without a date range) and, live, one index probe for the
   oldest asset waiting.
3. Requests the dashboard page through Django's test client ``--requests`` times for each of five
   filter sets (none; a date range; a campaign; a template; an A/B of two versions) and one CSV,
   cold (the cache cleared before each request: every panel built from the summary views, as
   after a refresh) and warm (the built dashboard reused until the next refresh, the oldest
   waiting age read live), and prints p50/p95/max per set and over all. Goal: p95 <= 300 ms.
   ``--reuse`` measures a database an earlier run seeded (migrated first), without seeding it
   again; ``--database`` names the bench database; ``--seed-only`` stops after the refresh.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from bench.databases import FILLERS, database_recreate, database_url, django_setup, percentile

BENCH_DB = "greenlight_bench_dashboard"
GOAL_MS = 300.0


def _asset_fillers(cursor: object, named: set[str]) -> tuple[str, str]:
    cursor.execute(  # type: ignore[attr-defined]
        "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'review_asset'"
        " AND is_nullable = 'NO' AND column_default IS NULL AND column_name <> 'id'"
    )
    extra = [(c, t) for c, t in cursor.fetchall() if c not in named]  # type: ignore[attr-defined]
    values = [FILLERS.get(t, "''") for _, t in extra]
    return "".join(f", {c}" for c, _ in extra), "".join(f", {v}" for v in values)


def seed(assets: int, decisions: int) -> dict[str, float]:
    """The production described in the module's docstring; returns the seconds each step took."""
    from django.contrib.auth.models import Group, User
    from django.core.management import call_command
    from django.db import connection

    timings: dict[str, float] = {}
    call_command("migrate", verbosity=0)
    admin = User.objects.create(username="bench-admin")
    admin.groups.add(Group.objects.get(name="admin"))
    started = time.perf_counter()
    with connection.cursor() as cursor:
        _library_make()
        cursor.execute(
            "INSERT INTO auth_user (username, password, is_superuser, first_name, last_name, email, is_staff,"
            " is_active, date_joined) SELECT 'reviewer' || r, '!', false, '', '', '', false, true, now()"
            " FROM generate_series(1, 12) r"
        )
        named = {
            "key", "campaign_id", "prompt_version_id", "state", "variables", "prompt", "negative_prompt", "seed",
            "steps", "guidance", "width", "height", "model_name", "model_manifest_hash", "alt_text", "file_path",
            "thumb_path", "mime", "file_sha256", "generation_record", "error", "queue_priority", "created_at",
            "updated_at", "generated_at", "generation_seconds",
        }  # fmt: skip
        extra_columns, extra_values = _asset_fillers(cursor, named)
        timings["setup"] = time.perf_counter() - started
        started = time.perf_counter()
        cursor.execute(
            "CREATE TEMP TABLE bench_campaign AS SELECT row_number() OVER (ORDER BY c.id) - 1 AS n, c.id,"
            " c.prompt_version_id, v.model_name FROM prompt_library_campaign c"
            " JOIN prompt_library_promptversion v ON v.id = c.prompt_version_id"
        )
        cursor.execute(
            f"INSERT INTO review_asset ({', '.join(sorted(named))}{extra_columns})"
            f" SELECT {', '.join(_asset_values(int(assets))[c] for c in sorted(named))}{extra_values}"
            f" FROM generate_series(1, {int(assets)}) i JOIN bench_campaign bc ON bc.n = i % 24"
        )
        timings["assets"] = time.perf_counter() - started
        started = time.perf_counter()
        cursor.execute("SELECT min(id) FROM auth_user WHERE username LIKE 'reviewer%'")
        first_reviewer = cursor.fetchone()[0]
        cursor.execute("SELECT count(*) FROM review_asset WHERE state IN ('approved', 'published', 'rejected')")
        decided = cursor.fetchone()[0]
        third_share = max(0.0, min(1.0, (decisions - 2 * decided) / decided)) if decided else 0.0
        cursor.execute(
            "INSERT INTO review_reviewdecision (asset_id, reviewer_id, decision, reason, comment, created_at)"
            f" SELECT a.id, {int(first_reviewer)} + (a.id + k * 5) % 12,"
            "  CASE WHEN a.state = 'rejected' AND (k = 2 OR a.id % 5 <> 0) THEN 'reject'"
            "       WHEN a.state <> 'rejected' AND k = 1 AND a.id % 7 = 0 THEN 'reject' ELSE 'approve' END,"
            "  CASE WHEN a.state = 'rejected' AND (k = 2 OR a.id % 5 <> 0)"
            "       THEN (ARRAY['off_brand', 'visual_artifact', 'wrong_product', 'text_error'])[1 + a.id % 4]"
            "       WHEN a.state <> 'rejected' AND k = 1 AND a.id % 7 = 0 THEN 'other' ELSE '' END,"
            "  '', a.generated_at + (k * 20 + a.id % 600) * interval '1 minute'"
            " FROM review_asset a CROSS JOIN generate_series(1, 3) k"
            " WHERE a.state IN ('approved', 'published', 'rejected')"
            f" AND (k < 3 OR (a.id % 1000) < {round(third_share * 1000)})"
        )
        timings["decisions"] = time.perf_counter() - started
        cursor.execute("ANALYZE")
    return timings


def _library_make() -> None:
    """Templates, versions (the second of each with a style) and campaigns, through the ORM so
    every column other features added gets its default."""
    from datetime import UTC, datetime, timedelta

    from prompt_library.models import Campaign, PromptTemplate, PromptVersion

    versions = []
    for t in range(1, 5):
        template = PromptTemplate.objects.create(name=f"template-{t}")
        for v in range(1, 4):
            versions.append(
                PromptVersion.objects.create(
                    template=template,
                    number=v,
                    content_hash=f"{t}-{v}",
                    prompt="a {product} {scene}",
                    model_name=f"model-{v % 3}",
                    model_manifest_hash="0" * 64,
                    parts={"style": ["house", 1]} if v == 2 else {},
                )
            )
    past = datetime.now(UTC) - timedelta(days=2)
    Campaign.objects.bulk_create(
        Campaign(
            name=f"campaign-{c}",
            kind="request" if c % 4 == 0 else "scheduled",
            prompt_version=versions[c % 12],
            variables={"product": ["mug", "lamp", "bottle"], "scene": ["studio", "kitchen"]},
            seeds=[1],
            deadline=past if c % 3 == 0 else None,
            approvals_required=2,
            on_reject="return",
        )
        for c in range(1, 25)
    )


def _asset_values(n: int) -> dict[str, str]:
    products = "(ARRAY['mug', 'lamp', 'bottle', 'chair', 'vase', 'bag', 'shoe', 'watch'])"
    scenes = "(ARRAY['studio', 'kitchen', 'beach', 'office', 'garden'])"
    day = f"now() - interval '90 days' + (i::float8 / {n} * 90) * interval '1 day'"
    return {
        "key": "md5(i::text) || md5((i + 1)::text)",
        "campaign_id": "bc.id",
        "prompt_version_id": "bc.prompt_version_id",
        "state": "CASE WHEN i % 100 < 33 THEN 'in_review' WHEN i % 100 < 68 THEN 'published'"
        " WHEN i % 100 < 78 THEN 'approved' WHEN i % 100 < 97 THEN 'rejected' ELSE 'failed' END",
        "variables": f"jsonb_build_object('product', {products}[1 + i % 8], 'scene', {scenes}[1 + (i / 8) % 5])",
        "prompt": "'a product in a scene'",
        "negative_prompt": "''",
        "seed": "i",
        "steps": "4",
        "guidance": "1.0",
        "width": "512",
        "height": "512",
        "model_name": "bc.model_name",
        "model_manifest_hash": "repeat('0', 64)",
        "alt_text": "''",
        "file_path": "''",
        "thumb_path": "''",
        "mime": "'image/png'",
        "file_sha256": "''",
        "generation_record": "'{}'::jsonb",
        "error": "''",
        "queue_priority": "1",
        "created_at": day,
        "updated_at": "now()",
        "generated_at": f"CASE WHEN i % 100 < 97 THEN {day} + interval '5 minutes' END",
        "generation_seconds": "CASE WHEN i % 100 < 97 THEN 0.5 + (i % 17) / 10.0 END",
    }


def page_times(requests: int) -> dict[str, list[float]]:
    from django.contrib.auth.models import User
    from django.core.cache import cache
    from django.test import Client

    from prompt_library.models import Campaign, PromptTemplate, PromptVersion

    client = Client()
    client.force_login(User.objects.get(username="bench-admin"))
    campaign = Campaign.objects.order_by("id").first()
    template = PromptTemplate.objects.order_by("id").first()
    versions = list(PromptVersion.objects.filter(template=template).order_by("number"))
    assert campaign is not None and template is not None
    sets: dict[str, tuple[str, dict[str, str | int]]] = {
        "no filter": ("/insight/", {}),
        "last 30 days": ("/insight/", {"date_from": _days_ago(30), "date_to": _days_ago(0)}),
        "one campaign": ("/insight/", {"campaign": campaign.pk}),
        "one template": ("/insight/", {"template": template.pk}),
        "a/b": ("/insight/", {"a": versions[0].pk, "b": versions[1].pk}),
        "csv": ("/insight/approval_variable.csv", {}),
    }
    times: dict[str, list[float]] = {}
    for name, (path, query) in sets.items():
        client.get(path, query)  # the first request of a process (templates compiled, connection open)
        for mode in ("cold", "warm"):
            samples = []
            for _ in range(requests):
                if mode == "cold":
                    cache.clear()  # every panel built from the summary views, as after a refresh
                started = time.perf_counter()
                response = client.get(path, query)
                samples.append((time.perf_counter() - started) * 1000)
                assert response.status_code == 200, (name, response.status_code)
            times[f"{name} ({mode})"] = samples
    return times


def _days_ago(days: int) -> str:
    from datetime import UTC, datetime, timedelta

    return (datetime.now(UTC) - timedelta(days=days)).date().isoformat()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--assets", type=int, default=1_000_000)
    parser.add_argument("--decisions", type=int, default=1_500_000)
    parser.add_argument("--requests", type=int, default=40)
    parser.add_argument("--reuse", action="store_true", help="measure the database a previous run seeded")
    parser.add_argument("--database", default=BENCH_DB, help=f"the bench database's name (default {BENCH_DB})")
    parser.add_argument("--seed-only", action="store_true", help="seed and refresh, then stop")
    args = parser.parse_args()
    base = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
    if not args.reuse:
        database_recreate(base, args.database)
    django_setup(database_url(base, args.database), Path(tempfile.mkdtemp(prefix="bench-dashboard-")))
    from django.db import connection

    from review.insight.refresh import VIEWS, insight_refresh

    if args.reuse:
        from django.core.management import call_command

        call_command("migrate", verbosity=0)  # views or indexes added since the database was seeded
        timings = {"assets": 0.0, "decisions": 0.0}
    else:
        timings = seed(args.assets, args.decisions)
    with connection.cursor() as cursor:
        cursor.execute("SELECT (SELECT count(*) FROM review_asset), (SELECT count(*) FROM review_reviewdecision)")
        counted_assets, counted_decisions = cursor.fetchone()
    done = "reused" if args.reuse else "seeded"
    print(f"{done} {counted_assets:,} assets in {timings['assets']:.1f} s", end=" ")
    print(f"and {counted_decisions:,} decisions in {timings['decisions']:.1f} s")
    refresh = insight_refresh()
    print(f"summary views refreshed in {refresh:.2f} s (REFRESH MATERIALIZED VIEW CONCURRENTLY, all {len(VIEWS)})")
    with connection.cursor() as cursor:
        names = [view for view in VIEWS if view != "insight_refreshed"]
        cursor.execute("SELECT " + ", ".join(f"(SELECT count(*) FROM {view})" for view in names))
        counts = cursor.fetchone()
        print("summary rows: " + ", ".join(f"{n[8:]} {c:,}" for n, c in zip(names, counts, strict=True)))
    if args.seed_only:
        return
    times = page_times(args.requests)
    every: dict[str, list[float]] = {"cold": [], "warm": []}
    for name, samples in times.items():
        every["cold" if name.endswith("(cold)") else "warm"] += samples
        print(
            f"{name:>22}: p50 {statistics.median(samples):6.1f} ms  p95 {percentile(samples, 95):6.1f} ms"
            f"  max {max(samples):6.1f} ms  ({len(samples)} requests)"
        )
    for mode, samples in every.items():
        p95 = percentile(samples, 95)
        print(
            f"{'all ' + mode:>22}: p95 {p95:.1f} ms; goal <= {GOAL_MS:.0f} ms: {'met' if p95 <= GOAL_MS else 'NOT met'}"
            f" ({p95 / GOAL_MS:.2f} of the goal)"
        )
    load = os.getloadavg()
    print(f"load average during the run: {load[0]:.1f} (1 min), {load[1]:.1f} (5 min) on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
