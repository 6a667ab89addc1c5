"""`make up`: the production topology on one machine, in the foreground (Ctrl-C stops it all).

    python -m infra.up [--workers N] [--web 127.0.0.1:8000] [--prefect-port 4200]

Starts, in order, and prints where each one is:

1. a Prefect server (`prefect server start`) on its own PostgreSQL database, `greenlight_prefect`
   on the same PostgreSQL as DATABASE_URL (created if missing), with its UI;
2. the prompt library loaded, so every campaign's schedule becomes its deployment's schedule;
3. the coordinator service (`python -m infra.workers coordinator`): the `campaign-coordinate`
   deployment each run starts, and the campaigns' scheduled deployments;
4. GREENLIGHT_WORKERS generation workers (`python -m infra.workers worker`), each a Prefect task
   worker keeping its models loaded;
5. the web app under gunicorn (infra/gunicorn.conf.py, static files by WhiteNoise), with
   GREENLIGHT_ORCHESTRATOR=deployment so "Run now" goes through the Prefect server.

The same lines, one process each, are in the Procfile for honcho or foreman. When one process
exits, the others are stopped: a half-started topology is never left running.
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PREFECT_DATABASE = "greenlight_prefect"


def _database_url() -> tuple[str, dict[str, str]]:
    """The app's DATABASE_URL and its parts, as the settings read it."""
    import dj_database_url

    url = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/greenlight")
    parts = dj_database_url.parse(url)
    return url, {k: str(parts.get(k) or "") for k in ("USER", "PASSWORD", "HOST", "PORT", "NAME")}


def prefect_database_ensure() -> str:
    """Create Prefect's own database beside the app's if it is missing; returns its async URL."""
    import psycopg

    _, db = _database_url()
    host, port = db["HOST"] or "127.0.0.1", db["PORT"] or "5432"
    with psycopg.connect(
        host=host, port=port, user=db["USER"], password=db["PASSWORD"] or None, dbname="postgres", autocommit=True
    ) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [PREFECT_DATABASE]).fetchone() is None:
            conn.execute(f'CREATE DATABASE "{PREFECT_DATABASE}"')
    auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    return f"postgresql+asyncpg://{auth}@{host}:{port}/{PREFECT_DATABASE}"


def _wait_http(url: str, *, what: str, limit: float, procs: list[subprocess.Popen[bytes]]) -> None:
    deadline = time.monotonic() + limit
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # our own local address
                if response.status < 500:
                    return
        except OSError:
            pass
        if any(p.poll() is not None for p in procs):
            raise SystemExit(f"{what} exited while starting")
        if time.monotonic() > deadline:
            raise SystemExit(f"{what} did not answer at {url} within {limit:.0f} s")
        time.sleep(0.5)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, default=int(os.environ.get("GREENLIGHT_WORKERS", "2") or 2))
    parser.add_argument("--web", default=os.environ.get("GREENLIGHT_WEB_BIND", "127.0.0.1:8000"))
    parser.add_argument("--prefect-port", type=int, default=4200)
    args = parser.parse_args(argv)
    if args.workers < 1:
        parser.error("--workers must be at least 1")

    var = Path(os.environ.get("GREENLIGHT_VAR_DIR", ROOT / "var"))
    (var / "up").mkdir(parents=True, exist_ok=True)
    secret = var / "up" / "secret-key"
    if not secret.exists():
        secret.write_text(secrets.token_urlsafe(50))
        secret.chmod(0o600)
    api = f"http://127.0.0.1:{args.prefect_port}/api"
    env = {
        **os.environ,
        "PREFECT_API_URL": api,
        "PREFECT_HOME": str(var / "up" / "prefect"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "GREENLIGHT_ORCHESTRATOR": "deployment",
        "GREENLIGHT_ENV": os.environ.get("GREENLIGHT_ENV", "production"),
        "GREENLIGHT_SECRET_KEY": os.environ.get("GREENLIGHT_SECRET_KEY", secret.read_text().strip()),
        "GREENLIGHT_ALLOWED_HOSTS": os.environ.get("GREENLIGHT_ALLOWED_HOSTS", "127.0.0.1,localhost"),
        # Plain HTTP on this machine: no redirect to HTTPS, no HSTS for 127.0.0.1.
        "GREENLIGHT_SSL_REDIRECT": os.environ.get("GREENLIGHT_SSL_REDIRECT", "false"),
        "GREENLIGHT_HSTS_SECONDS": os.environ.get("GREENLIGHT_HSTS_SECONDS", "0"),
        "GREENLIGHT_WEB_BIND": args.web,
        "PYTHONUNBUFFERED": "1",
    }
    py = sys.executable
    server_env = {**env, "PREFECT_API_DATABASE_CONNECTION_URL": prefect_database_ensure()}
    procs: list[subprocess.Popen[bytes]] = []
    names: list[str] = []

    def start(name: str, cmd: list[str], penv: dict[str, str]) -> None:
        procs.append(subprocess.Popen(cmd, cwd=ROOT, env=penv))
        names.append(name)

    def stop_all(*_: object) -> None:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()

    def on_term(*_: object) -> None:
        stop_all()
        sys.exit(0)

    signal.signal(signal.SIGTERM, on_term)
    try:
        start(
            "prefect",
            [py, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(args.prefect_port)],
            server_env,
        )
        _wait_http(f"{api}/health", what="the Prefect server", limit=120, procs=procs)
        for command in (["migrate", "--noinput"], ["collectstatic", "--noinput", "-v", "0"], ["library_load"]):
            subprocess.run([py, "manage.py", *command], cwd=ROOT, env=env, check=True)
        start("coordinator", [py, "-m", "infra.workers", "coordinator"], env)
        host = os.uname().nodename
        for i in range(args.workers):
            start(f"worker-{i + 1}", [py, "-m", "infra.workers", "worker", "--name", f"{host}-w{i + 1}"], env)
        start("web", [str(Path(py).parent / "gunicorn"), "-c", "infra/gunicorn.conf.py"], env)
        web = f"http://{args.web.split(',')[0]}"
        _wait_http(f"{web}/healthz", what="the web app", limit=120, procs=procs)
        print(
            "\nGreenlight is up:\n"
            f"  web app (gunicorn + WhiteNoise)  {web}/   campaigns: {web}/campaigns/   health: {web}/healthz\n"
            f"  Prefect server and UI            http://127.0.0.1:{args.prefect_port}/  (database {PREFECT_DATABASE})\n"
            f"  coordinator service              pid {procs[names.index('coordinator')].pid}\n"
            + "".join(
                f"  generation worker {n[7:]:<15}pid {p.pid}\n"
                for n, p in zip(names, procs, strict=True)
                if n.startswith("worker")
            )
            + "Ctrl-C stops everything.",
            flush=True,
        )
        while all(p.poll() is None for p in procs):
            time.sleep(1)
        gone = [n for n, p in zip(names, procs, strict=True) if p.poll() is not None]
        print(f"{', '.join(gone)} exited: stopping the rest", file=sys.stderr)
    except KeyboardInterrupt:
        pass
    finally:
        stop_all()


if __name__ == "__main__":
    main()
