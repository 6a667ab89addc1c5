"""The REST API at 100,000 assets: list, detail, claim and decide, one client.

    nice -n 5 python -m bench.api [--assets 100000] [--requests 200]

1. Creates a fresh database (``greenlight_bench_api`` on the server of ``DATABASE_URL``), migrates
   it and seeds ``--assets`` assets with one bulk ``INSERT ... SELECT generate_series`` (40% in
   review, the rest approved, published, rejected or failed, over 10 campaigns and 90 days), each
   with a registered and a submitted audit event. Timed.
2. Makes a token for a user with the admin role and sends ``--requests`` requests of each kind
   through Django's test client (the whole middleware stack, token authentication and problem
   details included; no network): ``GET /api/v1/assets`` (a page of 50, alternately unfiltered
   and in review), ``GET /api/v1/assets/{serial}`` (random serials), ``POST /api/v1/queue/claim``
   and ``POST /api/v1/assets/{serial}/approve`` of the claimed asset (or reject, one in five).
3. Prints p50/p95/max per kind and whether p95 meets the goal (50 ms), with the web process's own
   CPU time per request (the rest is PostgreSQL and waiting for a core) and the load average.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from bench.databases import FILLERS, database_recreate, database_url, django_setup, percentile

BENCH_DB = "greenlight_bench_api"
GOAL_MS = 50.0
CAMPAIGNS = 10


STATES = (
    "(ARRAY['in_review','in_review','in_review','in_review','approved','published','published',"
    "'rejected','rejected','failed'])"
)


def seed(assets: int) -> float:
    """The assets of the module's docstring; returns the seconds the inserts took."""
    from django.contrib.auth.models import Group, User
    from django.core.management import call_command
    from django.db import connection

    from prompt_library.models import Campaign, PromptTemplate, PromptVersion
    from tests.factories import template_spec

    call_command("migrate", verbosity=0)
    admin = User.objects.create(username="bench-admin")
    admin.groups.add(Group.objects.get(name="admin"))
    template = PromptTemplate.objects.create(name="hero")
    spec = template_spec("hero", 1)
    from dataclasses import asdict

    version = PromptVersion.objects.create(
        template=template,
        number=1,
        content_hash=spec.content_hash,
        prompt=spec.prompt,
        negative_prompt=spec.negative_prompt,
        model_name="embedded-tiny",
        model_manifest_hash="0" * 64,
        params={"steps": 4, "guidance": 1.0, "width": 512, "height": 512},
        spec=asdict(spec),
    )
    for n in range(CAMPAIGNS):
        Campaign.objects.create(
            name=f"campaign-{n}", prompt_version=version, variables={"product": ["mug"], "scene": ["table"]}, seeds=[1]
        )
    values = {
        "key": "md5('bench-' || i) || md5('api-' || i)",
        "campaign_id": f"(SELECT min(id) FROM prompt_library_campaign) + i % {CAMPAIGNS}",
        "prompt_version_id": str(version.pk),
        "state": f"{STATES}[1 + i % 10]",
        "variables": """jsonb_build_object('product', 'mug ' || (i % 97), 'scene', 'a table')""",
        "prompt": "'a mug ' || (i % 97) || ' on a table, product photo'",
        "negative_prompt": "'blurry'",
        "seed": "i",
        "steps": "4",
        "guidance": "1.0",
        "width": "512",
        "height": "512",
        "model_name": "'embedded-tiny'",
        "model_manifest_hash": "repeat('0', 64)",
        "alt_text": "'A mug on a table'",
        "file_path": "'masters/' || i || '.png'",
        "thumb_path": "'thumbs/' || i || '.jpg'",
        "mime": "'image/png'",
        "file_sha256": "md5('file-' || i) || md5('sha-' || i)",
        "generation_record": "'{}'::jsonb",
        "error": "''",
        "queue_priority": "1",
        "created_at": f"now() - (({assets} - i) * interval '90 days' / {assets})",
        "updated_at": f"now() - (({assets} - i) * interval '90 days' / {assets})",
    }
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'review_asset'"
            " AND is_nullable = 'NO' AND column_default IS NULL AND column_name <> 'id'"
        )
        for column, kind in cursor.fetchall():
            values.setdefault(column, FILLERS.get(kind, "''"))
        columns = sorted(values)
        cursor.execute(
            f"INSERT INTO review_asset ({', '.join(columns)})"
            f" SELECT {', '.join(values[c] for c in columns)} FROM generate_series(1, {int(assets)}) i"
        )
        cursor.execute(
            "INSERT INTO review_auditevent (asset_id, action, from_state, to_state, detail, created_at)"
            " SELECT a.id, e.action, e.from_state, e.to_state, '{}'::jsonb, a.created_at"
            " FROM review_asset a CROSS JOIN (VALUES ('registered', '', 'pending'),"
            " ('submitted', 'generated', 'in_review')) AS e(action, from_state, to_state)"
        )
        cursor.execute("ANALYZE")
    return time.perf_counter() - started


CPU: dict[int, list[float]] = {}  # id(samples) -> this process's CPU ms per request


def timed(samples: list[float], call: Callable[[], Any]) -> Any:
    started, cpu = time.perf_counter(), time.process_time()
    result = call()
    samples.append((time.perf_counter() - started) * 1000)
    CPU.setdefault(id(samples), []).append((time.process_time() - cpu) * 1000)
    return result


def measure(requests: int) -> dict[str, list[float]]:
    """Send the requests of the module's docstring; returns each kind's latencies (ms)."""
    import json

    from django.contrib.auth.models import User
    from django.test import Client

    from api.tokens import api_token_create
    from review.models import Asset

    token = api_token_create(user=User.objects.get(username="bench-admin"), name="bench").plaintext
    client = Client(HTTP_AUTHORIZATION=f"Bearer {token}")
    serials = list(Asset.objects.values_list("id", flat=True))
    rng = random.Random(7)
    latencies: dict[str, list[float]] = {"list assets": [], "asset detail": [], "claim": [], "decide": []}
    client.get("/api/v1/assets")  # warm: imports, the first connection
    for n in range(requests):
        query: dict[str, str | int] = {"limit": 50} if n % 2 else {"limit": 50, "state": "in_review"}
        response = timed(latencies["list assets"], partial(client.get, "/api/v1/assets", query))
        assert response.status_code == 200, response.content[:300]
        serial = rng.choice(serials)
        response = timed(latencies["asset detail"], partial(client.get, f"/api/v1/assets/{serial}"))
        assert response.status_code == 200, response.content[:300]
        response = timed(latencies["claim"], partial(client.post, "/api/v1/queue/claim"))
        assert response.status_code == 200, response.content[:300]
        claimed = json.loads(response.content)["serial"]
        body = {"reason": "off_brand"} if n % 5 == 4 else {"comment": "ok"}
        verb = "reject" if n % 5 == 4 else "approve"
        decide = partial(client.post, f"/api/v1/assets/{claimed}/{verb}", json.dumps(body), "application/json")
        response = timed(latencies["decide"], decide)
        assert response.status_code == 200, response.content[:300]
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--assets", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    base = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
    database_recreate(base, BENCH_DB)
    with tempfile.TemporaryDirectory(prefix="bench-api-") as var:
        django_setup(database_url(base, BENCH_DB), Path(var), persistent=True)
        seconds = seed(args.assets)
        print(f"seeded {args.assets:,} assets (and {2 * args.assets:,} audit events) in {seconds:.1f} s")
        latencies = measure(args.requests)
    print(f"{args.requests} requests of each kind, one client, at {args.assets:,} assets:")
    for kind, samples in latencies.items():
        p50, p95 = statistics.median(samples), percentile(samples, 95)
        verdict = "meets" if p95 <= GOAL_MS else "misses"
        cpu = statistics.median(CPU[id(samples)])
        print(
            f"  {kind:13s} p50 {p50:6.1f} ms  p95 {p95:6.1f} ms  max {max(samples):6.1f} ms"
            f"  (web process CPU p50 {cpu:5.1f} ms; {verdict} p95 <= {GOAL_MS:.0f} ms)"
        )
    print(f"load average while measuring: {' '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
