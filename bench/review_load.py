"""The review queue under load, at a million assets, on real PostgreSQL.

    python -m bench.review_load [--assets 1000000] [--clients 50] [--seconds 60] [--think-ms 1000]

1. Creates a fresh database (``greenlight_bench`` on the server of ``DATABASE_URL``, default the
   local one), migrates it and seeds ``--assets`` assets with COPY (a third in review, the rest
   decided or published, one audit event each), timed; ``--files`` of them get real signed files.
2. Starts ``--clients`` reviewer clients (threads spread over processes, one database connection
   each) that for ``--seconds`` claim the next task and approve or reject it (4 in 5 approved),
   calling the same services the dashboard calls, pausing between claim and decision as a person
   looking at the image would (``--think-ms``, mean 1 s: a fast reviewer on the keyboard; each
   pause drawn from 0.5 to 1.5 times the mean). ``--think-ms 0`` measures the ceiling instead:
   every client claims and decides back to back, so latency becomes queueing for the CPU.
3. Prints throughput and p50/p95/p99 latency for claim and for decide, and checks the outcome
   against the database: tasks held by two reviewers at once, and decisions a client saw succeed
   that the database does not hold (both must be 0).
4. Times the queue page (every tab) and the asset page through Django's test client at that size.
"""

from __future__ import annotations

import argparse
import itertools
import multiprocessing
import os
import random
import sys
import tempfile
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.databases import database_recreate, database_url, django_setup, percentile

BENCH_DB = "greenlight_bench"
STATE_MIX = (  # share of the seeded assets in each state
    ("in_review", 0.34),
    ("published", 0.38),
    ("approved", 0.10),
    ("rejected", 0.15),
    ("failed", 0.03),
)


@dataclass
class ClientLog:
    """What one process's clients saw: latencies (ms), holds and decisions that succeeded."""

    claim_ms: list[float] = field(default_factory=list)
    decide_ms: list[float] = field(default_factory=list)
    holds: list[tuple[int, int, float, float]] = field(default_factory=list)  # asset, reviewer, from, to
    decided: list[tuple[int, int, str]] = field(default_factory=list)  # asset, reviewer, decision
    empty_claims: int = 0
    errors: list[str] = field(default_factory=list)


def seed(count: int, reviewers: int) -> tuple[list[int], float]:
    """Users, a campaign and `count` assets with one audit event each; returns the reviewer ids
    and the seconds the COPY of the assets took."""
    from django.contrib.auth.models import Group, User
    from django.core.management import call_command
    from django.db import connection

    from prompt_library.models import Campaign, PromptVersion
    from prompt_library.services import library_load

    call_command("migrate", verbosity=0)
    library_load()
    campaign = Campaign.objects.get(name="demo-spring")
    version = PromptVersion.objects.get(pk=campaign.prompt_version_id)
    group = Group.objects.get(name="reviewer")
    users = User.objects.bulk_create([User(username=f"reviewer{i:02d}", is_active=True) for i in range(reviewers)])
    group.user_set.add(*users)

    rng = random.Random(7)
    states = [s for s, share in STATE_MIX for _ in range(round(share * 1000))]
    now = datetime.now(UTC)
    columns = (
        "key, campaign_id, prompt_version_id, state, variables, prompt, negative_prompt, seed, steps, guidance, "
        "width, height, model_name, model_manifest_hash, alt_text, file_path, thumb_path, mime, file_sha256, "
        "generation_record, error, queue_priority, created_at, updated_at, "
        "mark_id, fingerprint, safety_flagged, gen_worker"
    )
    started = time.perf_counter()
    with connection.cursor() as cursor, cursor.copy(f"COPY review_asset ({columns}) FROM STDIN") as copy:
        for i in range(count):
            created = now - timedelta(days=90) + timedelta(seconds=90 * 86400 * i / count)
            state = "in_review" if i >= count - count // 3 else states[rng.randrange(len(states))]
            copy.write_row(
                (
                    f"{i:064x}",
                    campaign.pk,
                    version.pk,
                    state,
                    '{"product": "mug", "scene": "studio"}',
                    f"a ceramic mug on a studio backdrop, product photo, variant {i}",
                    "blurry, text",
                    i,
                    4,
                    1.0,
                    512,
                    512,
                    "embedded-tiny",
                    version.model_manifest_hash,
                    "A ceramic mug on a studio backdrop",
                    "",
                    "",
                    "image/png",
                    "",
                    "{}",
                    "",
                    1,
                    created,
                    created,
                    i + 1,  # unique, as the random mark ids are
                    "",
                    False,
                    "",
                )
            )
    copy_seconds = time.perf_counter() - started
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO review_auditevent (asset_id, action, from_state, to_state, detail, created_at) "
            "SELECT id, 'registered', '', 'pending', '{}'::jsonb, created_at FROM review_asset"
        )
        cursor.execute("VACUUM ANALYZE review_asset")
        cursor.execute("VACUUM ANALYZE review_auditevent")
    return [u.pk for u in users], copy_seconds


def files_attach(var_dir: Path, count: int) -> list[int]:
    """Give a few in-review assets real signed files, so their pages read C2PA and the mark."""
    import numpy as np
    from PIL import Image, ImageDraw

    from infra.dev_certs import dev_chain_create
    from pipeline.finalize import Signing, image_finalize
    from prompt_library.selectors import campaign_plan_get
    from provenance.config import provenance_config_from_settings
    from provenance.credentials import reader_context
    from provenance.keys import signer_create
    from provenance.storage import LocalStorage
    from provenance.watermark_keys import watermark_keys_ensure
    from review.models import Asset

    dev_chain_create(var_dir / "keys")
    config = provenance_config_from_settings()
    mark_key = watermark_keys_ensure(config.watermark_keys)[0].current
    plan = campaign_plan_get(name="demo-spring")
    serials = list(Asset.objects.filter(state="in_review").order_by("id").values_list("id", flat=True)[:count])
    storage = LocalStorage(config.storage_root)
    with signer_create(config.signing) as signer, reader_context(config.signing) as context:
        for n, serial in enumerate(serials):
            variant = replace(plan.variants[n % len(plan.variants)], seed=10_000 + n)  # a key of its own
            # A product-shot-like picture with texture (a flat one cannot carry the watermark).
            grain = np.random.default_rng(n).normal(0, 12, (512, 512, 3))
            base = np.linspace(90, 210, 512)[None, :, None] + grain
            image = Image.fromarray(np.clip(base, 0, 255).astype(np.uint8))
            ImageDraw.Draw(image).ellipse((120, 140, 390, 420), fill=(60 + 9 * n, 90, 160))
            done = image_finalize(
                variant,
                serial=serial,
                mark_id=Asset.objects.values_list("mark_id", flat=True).get(pk=serial),
                image=image,
                signing=Signing(signer, context, mark_key),
                storage=storage,
            )
            Asset.objects.filter(pk=serial).update(
                file_path=done.file_path, thumb_path=done.thumb_path, file_sha256=done.sha256, file_size=done.size
            )
    return serials


def client_process(
    url: str, var_dir: str, reviewer_ids: list[int], seconds: float, think_ms: float, start_at: float, out: Any
) -> None:
    """One process running one client thread per reviewer id; sends its ClientLog back."""
    django_setup(url, Path(var_dir))
    from django.contrib.auth.models import User
    from django.db import connection

    from review.errors import ReviewError
    from review.services import asset_approve, asset_reject, review_task_claim

    log = ClientLog()
    lock = threading.Lock()

    def client(reviewer_id: int) -> None:
        reviewer = User.objects.get(pk=reviewer_id)
        reviewer.has_perm("review.review_asset")  # load the permission cache before timing
        rng = random.Random(reviewer_id)
        while time.time() < start_at:
            time.sleep(0.001)
        end = start_at + seconds
        while time.time() < end:
            t0 = time.perf_counter()
            asset = review_task_claim(reviewer=reviewer)
            claim_ms = (time.perf_counter() - t0) * 1000
            held_from = time.time()
            if asset is None:
                with lock:
                    log.empty_claims += 1
                continue
            if think_ms:
                time.sleep(rng.uniform(0.5, 1.5) * think_ms / 1000)
            approve = rng.random() < 0.8
            t1 = time.perf_counter()
            try:
                if approve:
                    asset_approve(asset=asset, reviewer=reviewer)
                else:
                    asset_reject(asset=asset, reviewer=reviewer, reason="off_brand")
            except ReviewError as exc:
                with lock:
                    log.errors.append(f"asset {asset.pk}: {exc}")
                continue
            decide_ms = (time.perf_counter() - t1) * 1000
            with lock:
                log.claim_ms.append(claim_ms)
                log.decide_ms.append(decide_ms)
                log.holds.append((asset.pk, reviewer_id, held_from, time.time()))
                log.decided.append((asset.pk, reviewer_id, "approve" if approve else "reject"))
        connection.close()

    threads = [threading.Thread(target=client, args=(rid,)) for rid in reviewer_ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out.send(log)
    out.close()


def load_run(url: str, var_dir: Path, reviewer_ids: list[int], seconds: float, think_ms: float) -> ClientLog:
    """Run the clients in processes of up to 10 threads each and merge their logs."""
    from django.db import connections

    connections.close_all()
    context = multiprocessing.get_context("spawn")
    groups = [reviewer_ids[i : i + 10] for i in range(0, len(reviewer_ids), 10)]
    start_at = time.time() + 8 + len(groups)  # time for every process to start and set up Django
    pipes, procs = [], []
    for group in groups:
        receive, send = context.Pipe(duplex=False)
        proc = context.Process(
            target=client_process, args=(url, str(var_dir), group, seconds, think_ms, start_at, send)
        )
        proc.start()
        pipes.append(receive)
        procs.append(proc)
    merged = ClientLog()
    for receive in pipes:
        part: ClientLog = receive.recv()
        merged.claim_ms += part.claim_ms
        merged.decide_ms += part.decide_ms
        merged.holds += part.holds
        merged.decided += part.decided
        merged.empty_claims += part.empty_claims
        merged.errors += part.errors
    for proc in procs:
        proc.join()
    return merged


def double_holds(holds: list[tuple[int, int, float, float]]) -> int:
    """Tasks held by two reviewers at overlapping times."""
    by_asset: dict[int, list[tuple[float, float, int]]] = defaultdict(list)
    for asset, reviewer, start, end in holds:
        by_asset[asset].append((start, end, reviewer))
    doubles = 0
    for spans in by_asset.values():
        spans.sort()
        for (_, end_a, rev_a), (start_b, _, rev_b) in itertools.pairwise(spans):
            if rev_a != rev_b and start_b < end_a:
                doubles += 1
    return doubles


def lost_decisions(decided: list[tuple[int, int, str]]) -> int:
    """Decisions a client saw succeed that the database does not hold, or holds otherwise."""
    from review.models import ReviewDecision

    stored = {
        (a, r): d
        for a, r, d in ReviewDecision.objects.filter(asset_id__in={a for a, _, _ in decided}).values_list(
            "asset_id", "reviewer_id", "decision"
        )
    }
    return sum(stored.get((a, r)) != d for a, r, d in decided)


def decided_twice() -> int:
    """Assets with more than one decision: with the bench's quorum of one, a second decision
    could only come from a second reviewer holding the same task."""
    from django.db.models import Count

    from review.models import ReviewDecision

    return ReviewDecision.objects.values("asset_id").annotate(n=Count("id")).filter(n__gt=1).count()


def page_times(reviewer_id: int, serials: list[int], repeats: int) -> dict[str, list[float]]:
    """Milliseconds per GET of each queue tab and of asset pages, through the whole Django stack."""
    from django.contrib.auth.models import User
    from django.test import Client

    from review.models import Asset
    from review.selectors import QUEUE_STATES

    client = Client()
    client.force_login(User.objects.get(pk=reviewer_id))
    times: dict[str, list[float]] = defaultdict(list)
    urls = [(f"queue ({state})", f"/?state={state}") for state in QUEUE_STATES]
    urls.append(("queue, page 50 (in review)", "/?state=in_review&page=50"))
    low = Asset.objects.order_by("id").values_list("id", flat=True).first() or 0
    high = Asset.objects.order_by("-id").values_list("id", flat=True).first() or 0
    others = random.Random(11).sample(range(low, high + 1), min(repeats, high - low + 1))
    for _ in range(repeats):
        for label, url in urls:
            started = time.perf_counter()
            response = client.get(url)
            times[label].append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200, (url, response.status_code)
    for serial in others:
        started = time.perf_counter()
        response = client.get(f"/assets/{serial}/")
        times["asset page (no file)"].append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, (serial, response.status_code)
    for _ in range(max(1, repeats // len(serials)) if serials else 0):
        for serial in serials:
            started = time.perf_counter()
            response = client.get(f"/assets/{serial}/")
            times["asset page (signed file)"].append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200, (serial, response.status_code)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--assets", type=int, default=1_000_000)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--think-ms", type=float, default=1000, help="mean pause between claim and decision")
    parser.add_argument("--page-repeats", type=int, default=60)
    parser.add_argument("--files", type=int, default=16, help="seeded assets given real signed files")
    args = parser.parse_args()

    base = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/greenlight")
    url = database_url(base, BENCH_DB)
    var_dir = Path(tempfile.mkdtemp(prefix="greenlight-bench-"))
    print(f"database {BENCH_DB}: recreating, migrating, seeding {args.assets:,} assets", flush=True)
    database_recreate(base, BENCH_DB)
    django_setup(url, var_dir)
    reviewer_ids, copy_seconds = seed(args.assets, args.clients)
    print(f"seeded {args.assets:,} assets by COPY in {copy_seconds:.1f} s ({args.assets / copy_seconds:,.0f} rows/s)")
    serials = files_attach(var_dir, args.files)

    print(
        f"load: {args.clients} reviewer clients for {args.seconds:.0f} s, think time {args.think_ms:.0f} ms", flush=True
    )
    log = load_run(url, var_dir, reviewer_ids, args.seconds, args.think_ms)
    decisions = len(log.decided)
    print(
        f"\n{decisions:,} tasks claimed and decided in {args.seconds:.0f} s: {decisions / args.seconds:,.1f} per second"
    )
    print(f"{'operation':<10} {'count':>8} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}   goal p95")
    for name, samples in (("claim", log.claim_ms), ("decide", log.decide_ms)):
        print(
            f"{name:<10} {len(samples):>8,} {percentile(samples, 50):>8.1f} {percentile(samples, 95):>8.1f} "
            f"{percentile(samples, 99):>8.1f}   <= 25 ms"
        )
    doubles = double_holds(log.holds)
    lost = lost_decisions(log.decided)
    twice = decided_twice()
    print(f"tasks held by two reviewers at once: {doubles} (assets decided twice in the database: {twice})")
    print(f"decisions lost: {lost}")
    print(f"claims that found nothing: {log.empty_claims}; refused decisions: {len(log.errors)}")
    for error in log.errors[:5]:
        print(f"  {error}")

    print(f"\npages at {args.assets:,} assets ({args.page_repeats} requests each, one client)")
    print(f"{'page':<30} {'p50 ms':>8} {'p95 ms':>8}   goal p95")
    for label, samples in page_times(reviewer_ids[0], serials, args.page_repeats).items():
        print(f"{label:<30} {percentile(samples, 50):>8.1f} {percentile(samples, 95):>8.1f}   <= 150 ms")
    ok = doubles == 0 and lost == 0 and twice == 0
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
