"""Verify under load: concurrent MP4 uploads to a real web server, its memory and its answer times.

    python -m bench.verify_load [--clients 10] [--size 4096x4096] [--seconds 2] [--fps 24]

1. Creates a fresh database (``--database``, default ``greenlight_verify_bench``, on the server of
   ``DATABASE_URL``, default the local one), migrates it, loads the prompt library and registers one
   asset of the demo clip campaign (``review.intake``, as a run does). Makes its clip with the
   project's own pieces: a product-shot-like frame (``bench.provenance``) at ``--size`` (default
   the pipeline's largest frame), watermarked with the asset's serial, ``--seconds`` of it at
   ``--fps`` with a little per-frame noise, H.264 at the master's CRF (``provenance.mp4``), signed
   as ``video/mp4`` with the asset's generation record by a fresh development chain.
2. Starts Django's ``runserver`` (threaded, as the demo serves; DEBUG off) on 127.0.0.1 on that
   database, and logs a reviewer in through the login form (a session cookie).
3. Sends one verify (warm-up: the decoders' libraries load), then reads the server's resident
   memory at rest (idle), resets the kernel's peak counter, and sends ``--clients`` verifies of
   the clip at the same moment (``POST /api/verify``, one connection each), sampling the server's
   RSS every 10 ms until the last answer.
4. Prints idle and peak RSS, peak minus idle, every request's status and seconds, how many were
   answered 200 and 429, and the goals: peak - idle < 1 GB and every answer < 10 s, met or missed.
"""

from __future__ import annotations

import argparse
import http.client
import http.cookiejar
import json
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from bench.databases import database_url, django_setup

BENCH_DB = "greenlight_verify_bench"
GOAL_MEMORY_MB = 1024
GOAL_SECONDS = 10.0
ROOT = Path(__file__).resolve().parent.parent
USERNAME = "vic"


@dataclass(frozen=True)
class Answer:
    status: int
    seconds: float
    answer: str  # the outcome of a report, or the refusal's reason


def database_recreate(base: str, name: str) -> None:
    import psycopg

    with psycopg.connect(database_url(base, "postgres"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')  # a name from the command line
        conn.execute(f'CREATE DATABASE "{name}"')


def clip_make(*, width: int, height: int, seconds: int, fps: int, keys: Path) -> tuple[bytes, int]:
    """A signed, watermarked MP4 of a registered asset of the demo clip campaign, and its serial."""
    import numpy as np
    from django.core.management import call_command
    from PIL import Image

    from bench.provenance import product_shot
    from infra.dev_certs import dev_chain_create
    from pipeline.finalize import MASTER_CRFS
    from prompt_library.selectors import campaign_plan_get
    from prompt_library.services import library_load
    from provenance.credentials import c2pa_sign, generated_manifest, reader_context
    from provenance.keys import signer_create
    from provenance.mp4 import mp4_encode
    from provenance.watermark import watermark_embed, watermark_payload
    from provenance.watermark_keys import WatermarkKeyFiles, watermark_keys_ensure
    from review.intake import assets_register

    call_command("migrate", verbosity=0)
    library_load()
    variant = campaign_plan_get(name="demo-clips").variants[0]
    ref = assets_register(variants=[variant])[variant.key]
    serial = ref.serial
    mark_key = watermark_keys_ensure(WatermarkKeyFiles(directory=keys / "watermark"))[0].current  # as the server reads
    shot = product_shot(serial, max(width, height)).crop((0, 0, width, height))
    marked = np.asarray(watermark_embed(shot, ref.mark_id, key=mark_key.secret), dtype=np.int16)
    rng = np.random.default_rng(serial)
    frames = [
        Image.fromarray(np.clip(marked + rng.integers(-2, 3, marked.shape), 0, 255).astype(np.uint8))
        for _ in range(seconds * fps)
    ]
    data = mp4_encode(frames, fps, crf=MASTER_CRFS[0])
    manifest = generated_manifest(
        title=f"{variant.key[:12]}.mp4",
        model_name=variant.model_name,
        model_manifest_hash=variant.model_manifest_hash,
        generation_record={"serial": serial, "asset_key": variant.key, "fps": fps, "frames": len(frames)},
        watermark_value=watermark_payload(ref.mark_id),
        watermark_key_id=mark_key.key_id,
    )
    files = dev_chain_create(keys)
    with signer_create(files) as signer, reader_context(files) as context:
        return c2pa_sign(data, mime="video/mp4", manifest=manifest, signer=signer, context=context), serial


def user_create(password: str) -> None:
    from django.contrib.auth.models import Group, User

    user = User.objects.create_user(USERNAME, password=password)
    user.groups.add(Group.objects.get(name="reviewer"))


def server_start(env: dict[str, str], log: Path) -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    address = f"127.0.0.1:{port}"
    with log.open("wb") as out:
        server = subprocess.Popen(
            [sys.executable, "manage.py", "runserver", "--noreload", address],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"the server stopped (exit {server.returncode}):\n{log.read_text()[-3000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return server, address
        except OSError:
            time.sleep(0.2)
    server.kill()
    raise SystemExit(f"the server did not answer within 60 s:\n{log.read_text()[-3000:]}")


def login(address: str, password: str) -> str:
    """Log in through the login form; the session cookie as a Cookie header."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    opener.open(f"http://{address}/login/").read()
    token = next(c.value for c in jar if c.name == "csrftoken")
    form = urllib.parse.urlencode({"username": USERNAME, "password": password, "csrfmiddlewaretoken": token})
    opener.open(f"http://{address}/login/", data=form.encode()).read()
    session = next((c.value for c in jar if c.name == "sessionid"), None)
    if session is None:
        raise SystemExit("the login form did not log the reviewer in")
    return f"sessionid={session}"


def verify_post(address: str, cookie: str, data: bytes, name: str) -> Answer:
    boundary = secrets.token_hex(16)
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
        "Content-Type: video/mp4\r\n\r\n"
    ).encode()
    body = head + data + f"\r\n--{boundary}--\r\n".encode()
    host, port = address.split(":")
    started = time.perf_counter()
    connection = http.client.HTTPConnection(host, int(port), timeout=120)
    try:
        connection.request(
            "POST",
            "/api/verify",
            body=body,
            headers={"Content-Type": f"multipart/form-data; boundary={boundary}", "Cookie": cookie},
        )
        response = connection.getresponse()
        payload = response.read()
        status = response.status
    finally:
        connection.close()
    seconds = time.perf_counter() - started
    try:
        report = json.loads(payload)
        answer = str(report.get("outcome") or report.get("error") or "?")
    except ValueError:
        answer = payload[:60].decode(errors="replace")
    return Answer(status, seconds, answer)


def rss_mb(pid: int, field: str = "VmRSS") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} for process {pid}")


def peak_reset(pid: int) -> bool:
    """Reset the kernel's peak-RSS counter (VmHWM) of ``pid`` to its current RSS (Linux 4.0+)."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def load_run(address: str, cookie: str, data: bytes, clients: int, pid: int) -> tuple[list[Answer], float]:
    """``clients`` verifies sent together; their answers and the server's peak RSS meanwhile."""
    answers: list[Answer | None] = [None] * clients
    barrier = threading.Barrier(clients)
    done = threading.Event()
    peak = [rss_mb(pid)]

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], rss_mb(pid))
            time.sleep(0.01)

    def client(index: int) -> None:
        barrier.wait()
        answers[index] = verify_post(address, cookie, data, f"clip-{index}.mp4")

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    done.set()
    sampler.join()
    peak[0] = max(peak[0], rss_mb(pid), rss_mb(pid, "VmHWM"))
    return [a for a in answers if a is not None], peak[0]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument("--size", default="4096x4096", help="frame size, WxH (default: the pipeline's largest)")
    parser.add_argument("--seconds", type=int, default=2)
    parser.add_argument("--fps", type=int, default=24)
    parser.add_argument("--database", default=BENCH_DB, help="recreated for the bench")
    args = parser.parse_args(argv)
    width, height = (int(side) for side in args.size.lower().split("x"))
    base = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
    url = database_url(base, args.database)

    with tempfile.TemporaryDirectory() as folder:
        var_dir = Path(folder)
        database_recreate(base, args.database)
        django_setup(url, var_dir)
        print(f"making a signed {width}x{height} clip, {args.seconds} s at {args.fps} fps ...", flush=True)
        data, serial = clip_make(width=width, height=height, seconds=args.seconds, fps=args.fps, keys=var_dir / "keys")
        password = secrets.token_urlsafe(16)
        user_create(password)
        from django.conf import settings
        from django.db import connections

        connections.close_all()
        env = {
            **os.environ,
            "DATABASE_URL": url,
            "GREENLIGHT_DEBUG": "0",
            "GREENLIGHT_ALLOWED_HOSTS": "127.0.0.1",
            "GREENLIGHT_VAR_DIR": str(var_dir),
            "GREENLIGHT_KEYS_DIR": str(var_dir / "keys"),
            "PYTHONPATH": str(ROOT),
        }
        server, address = server_start(env, var_dir / "server.log")
        try:
            cookie = login(address, password)
            warm = verify_post(address, cookie, data, "warm-up.mp4")
            time.sleep(1.0)
            idle = rss_mb(server.pid)
            exact = peak_reset(server.pid)
            answers, peak = load_run(address, cookie, data, args.clients, server.pid)
        finally:
            server.terminate()
            server.wait(timeout=30)

    print(
        f"verify under load: {args.clients} concurrent POST /api/verify of a signed {width}x{height} MP4 "
        f"({args.seconds * args.fps} frames at {args.fps} fps, {len(data) / 2**20:.1f} MB, asset #{serial})"
    )
    print(
        f"server: Django runserver, threaded, DEBUG off; GREENLIGHT_VERIFY_CONCURRENCY="
        f"{settings.GREENLIGHT_VERIFY_CONCURRENCY}, GREENLIGHT_VERIFY_TIMEOUT_SECONDS="
        f"{settings.GREENLIGHT_VERIFY_TIMEOUT_SECONDS}"
    )
    print(f"  warm-up: {warm.status} {warm.answer} in {warm.seconds:.2f} s")
    print(f"  RSS idle        {idle:7.0f} MB (after the warm-up)")
    print(f"  RSS peak        {peak:7.0f} MB ({'kernel peak and' if exact else ''} 10 ms samples)")
    print(f"  peak - idle     {peak - idle:7.0f} MB")
    print(f"  {'request':>8} {'status':>7} {'seconds':>8}  answer")
    for index, answer in enumerate(answers, 1):
        print(f"  {index:8} {answer.status:7} {answer.seconds:8.2f}  {answer.answer}")
    statuses = [a.status for a in answers]
    others = len(statuses) - statuses.count(200) - statuses.count(429)
    print(f"  200: {statuses.count(200)}, 429: {statuses.count(429)}, other: {others}")
    slowest = max(a.seconds for a in answers)
    memory_met = peak - idle < GOAL_MEMORY_MB
    time_met = slowest < GOAL_SECONDS
    print(
        f"goals: peak - idle < {GOAL_MEMORY_MB} MB: {'met' if memory_met else 'MISSED'} ({peak - idle:.0f} MB); "
        f"every answer < {GOAL_SECONDS:.0f} s: {'met' if time_met else 'MISSED'} (slowest {slowest:.2f} s)"
    )


if __name__ == "__main__":
    main()
