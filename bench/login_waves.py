"""Waves of reviewers over HTTP, and the database connections the web server keeps after them.

    python -m bench.login_waves [--waves 3] [--reviewers 50] [--server gunicorn|runserver]
                                [--workers 2] [--threads 4] [--conn-max-age S] [--think-ms 200]

1. Creates a fresh database (``--database``, default ``greenlight_login_waves``, on the server of
   ``DATABASE_URL``), migrates it and seeds ``--assets`` assets (a third in review) and
   ``--reviewers`` reviewers with ``bench.review_load``'s seed, each reviewer given a password.
2. Starts the web server on 127.0.0.1: gunicorn with ``infra/gunicorn.conf.py`` and the production
   profile (static files collected first, as ``make serve`` does; no TLS here, so no HTTPS
   redirect), or Django's runserver with the development profile (``make demo``'s server). The
   server reads GREENLIGHT_DB_CONN_MAX_AGE from ``--conn-max-age``, else its profile's default.
3. Runs ``--waves`` waves. In a wave every reviewer, at the same moment, opens a browser-like
   client (one keep-alive HTTP connection, its own cookies, redirects followed) and signs in
   through the login form (CSRF token from the form), claims a task (POST /claim), opens the asset
   page, approves it or rejects it (4 in 5 approved) and signs out (POST /logout/), with a short
   pause between steps (``--think-ms``). Every client uses the right password, so login
   throttling (django-axes) never steps in. The connections stay open after the logout, idle, as
   a browser keeps them.
4. After each wave prints: requests, errors split by kind (any answer other than 2xx/3xx, and
   connection errors), p50/p95 latency, the server's connections to the database during the wave
   (the most seen, sampled every 50 ms) and after it (1 s after the last logout), and the goal:
   no error, and after the wave at most the server's pool (workers x threads for gunicorn;
   0 when connections are not kept, and always 0 for runserver). The server's log is searched
   for PostgreSQL's "too many clients already". Exit status 0 when every wave met the goal.

Only 127.0.0.1 is reached; every request has a timeout, and the bench stops its server on exit.
``tests/infra/test_connections.py`` runs the same functions on a smaller scale.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import http.client
import os
import random
import re
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from pathlib import Path

from bench.databases import database_url, django_setup, percentile
from bench.review_load import seed
from bench.verify_load import database_recreate

ROOT = Path(__file__).resolve().parent.parent
BENCH_DB = "greenlight_login_waves"
SERVERS = ("gunicorn", "runserver")
REQUEST_TIMEOUT = 60.0  # seconds for one request; a wave of 50 logins queues on PBKDF2
SETTLE_SECONDS = 1.0  # after the last logout, before the connections are counted
SAMPLE_SECONDS = 0.05
TOO_MANY_CLIENTS = "too many clients already"
_CSRF_INPUT = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
_COUNT_SQL = (
    "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid() "
    "AND backend_type = 'client backend' AND NOT (pid = ANY(%s))"
)


# --- The database ---------------------------------------------------------------------------------


def reviewers_seed(*, reviewers: int, assets: int, password: str) -> list[str]:
    """`assets` assets (a third in review) and `reviewers` reviewers who all sign in with
    `password`, in the database Django is set up on; returns their usernames."""
    from django.contrib.auth.hashers import make_password
    from django.contrib.auth.models import User

    ids, _ = seed(assets, reviewers)
    User.objects.filter(pk__in=ids).update(password=make_password(password))  # one hash for all
    return list(User.objects.filter(pk__in=ids).order_by("username").values_list("username", flat=True))


class ConnectionCounter:
    """Counts the client connections to one database, from a connection of its own to another
    database of the same cluster (so it never counts itself); `exclude` names backends of the
    caller's own process that are not the server's (a test's own connection)."""

    def __init__(self, url: str, database: str, *, exclude: tuple[int, ...] = ()) -> None:
        import psycopg

        self._conn = psycopg.connect(database_url(url, "postgres"), autocommit=True, connect_timeout=10)
        self._database = database
        self._exclude = list(exclude)
        self._lock = threading.Lock()

    def count(self) -> int:
        with self._lock:
            row = self._conn.execute(_COUNT_SQL, (self._database, self._exclude)).fetchone()
        return int(row[0]) if row else 0

    @contextlib.contextmanager
    def sampling(self) -> Iterator[list[int]]:
        """Samples the count every 50 ms while the block runs; the samples list fills in."""
        samples: list[int] = []
        stop = threading.Event()

        def sample() -> None:
            while not stop.is_set():
                samples.append(self.count())
                stop.wait(SAMPLE_SECONDS)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        try:
            yield samples
        finally:
            stop.set()
            sampler.join(timeout=10)

    def close(self) -> None:
        self._conn.close()


# --- The server -----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def server_env(
    kind: str,
    *,
    url: str,
    var_dir: Path,
    port: int,
    conn_max_age: int | None = None,
    workers: int = 2,
    threads: int = 4,
) -> dict[str, str]:
    """The environment a server gets: the caller's without any GREENLIGHT_* setting (a test's
    GREENLIGHT_DB_CONN_MAX_AGE=0 must not leak in), then the profile's own. gunicorn runs the
    production profile with a fresh secret and no HTTPS redirect (no TLS on 127.0.0.1); runserver
    the development profile with DEBUG off (DEBUG keeps every query in memory)."""
    if kind not in SERVERS:
        raise ValueError(f"server must be one of {', '.join(SERVERS)} (given: {kind!r})")
    env = {k: v for k, v in os.environ.items() if not k.startswith("GREENLIGHT_")}
    env.update(
        DJANGO_SETTINGS_MODULE="infra.settings",
        PYTHONPATH=str(ROOT),
        DATABASE_URL=url,
        GREENLIGHT_VAR_DIR=str(var_dir),
        GREENLIGHT_KEYS_DIR=str(var_dir / "keys"),
        GREENLIGHT_STATIC_ROOT=str(var_dir / "static"),
        GREENLIGHT_SECRET_KEY=secrets.token_urlsafe(50),
        GREENLIGHT_ALLOWED_HOSTS="127.0.0.1",
    )
    if kind == "gunicorn":
        env.update(
            GREENLIGHT_ENV="production",
            GREENLIGHT_SSL_REDIRECT="0",
            GREENLIGHT_WEB_BIND=f"127.0.0.1:{port}",
            GREENLIGHT_WEB_WORKERS=str(workers),
            GREENLIGHT_WEB_THREADS=str(threads),
            GREENLIGHT_WEB_LOG_LEVEL="warning",
        )
    else:
        env.update(GREENLIGHT_ENV="development", GREENLIGHT_DEBUG="0")
    if conn_max_age is not None:
        env["GREENLIGHT_DB_CONN_MAX_AGE"] = str(conn_max_age)
    return env


@dataclass
class Server:
    kind: str
    process: subprocess.Popen[bytes]
    address: str  # 127.0.0.1:port
    log: Path
    pool: int  # the most connections it may keep after a wave (0: none)

    def log_count(self, text: str) -> int:
        return self.log.read_text(errors="replace").count(text)


def server_settings(env: dict[str, str]) -> tuple[int, bool]:
    """CONN_MAX_AGE and CONN_HEALTH_CHECKS as the server's settings read them (a new process)."""
    code = (
        "import django; django.setup(); from django.conf import settings; "
        "db = settings.DATABASES['default']; print(db['CONN_MAX_AGE'], db['CONN_HEALTH_CHECKS'])"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=True
    )
    max_age, health_checks = done.stdout.split()[-2:]
    return int(max_age), health_checks == "True"


def server_start(kind: str, env: dict[str, str], log: Path, *, ready_seconds: float = 120) -> Server:
    """Start the server (gunicorn after collectstatic, as `make serve` does; or runserver) and
    wait until it answers the login page."""
    if kind == "gunicorn":
        subprocess.run(
            [sys.executable, "manage.py", "collectstatic", "--noinput", "-v", "0"],
            cwd=ROOT,
            env=env,
            check=True,
            timeout=300,
        )
        command = [sys.executable, "-m", "gunicorn", "-c", "infra/gunicorn.conf.py"]
        address = env["GREENLIGHT_WEB_BIND"]
        max_age, _ = server_settings(env)
        pool = int(env["GREENLIGHT_WEB_WORKERS"]) * int(env["GREENLIGHT_WEB_THREADS"]) if max_age else 0
    else:
        address = f"127.0.0.1:{free_port()}"
        command = [sys.executable, "manage.py", "runserver", "--noreload", address]
        pool = 0
    with log.open("wb") as out:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    server = Server(kind=kind, process=process, address=address, log=log, pool=pool)
    deadline = time.monotonic() + ready_seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the {kind} server stopped (exit {process.returncode}):\n{log.read_text()[-3000:]}")
        with contextlib.suppress(OSError, http.client.HTTPException):
            conn = http.client.HTTPConnection(*_host_port(address), timeout=5)
            try:
                conn.request("GET", "/login/")
                if conn.getresponse().status == 200:
                    return server
            finally:
                conn.close()
        time.sleep(0.2)
    server_stop(server)
    raise RuntimeError(f"the {kind} server did not answer within {ready_seconds:.0f} s:\n{log.read_text()[-3000:]}")


def server_stop(server: Server) -> None:
    """SIGTERM (gunicorn stops its workers gracefully), then SIGKILL if it lingers."""
    if server.process.poll() is None:
        server.process.send_signal(signal.SIGTERM)
        try:
            server.process.wait(timeout=40)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait(timeout=10)


def _host_port(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host, int(port)


# --- The reviewers --------------------------------------------------------------------------------


class RequestFailed(Exception):
    """A request answered other than 2xx/3xx, or not answered: `kind` says which."""

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind


@dataclass
class ClientLog:
    login_ms: list[float] = field(default_factory=list)  # the login POSTs (PBKDF2: CPU-bound)
    other_ms: list[float] = field(default_factory=list)  # every other request
    errors: collections.Counter[str] = field(default_factory=collections.Counter)
    unanswered: int = 0  # requests that got no answer (a connection error)
    reconnects: int = 0  # idle keep-alive connections the server had closed, reopened as a browser does
    decided: int = 0
    empty_claims: int = 0


class Browser:
    """One reviewer's browser: one keep-alive connection, its cookies, redirects followed."""

    def __init__(self, address: str, log: ClientLog) -> None:
        self.host, self.port = _host_port(address)
        self.origin = f"http://{address}"
        self.cookies: dict[str, str] = {}
        self.conn: http.client.HTTPConnection | None = None
        self.used = False  # the connection has answered a request: the server may have closed it since
        self.log = log
        self.page = ""
        self.path = ""

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def _send(self, method: str, path: str, body: str | None) -> http.client.HTTPResponse:
        headers = {"Host": self.origin.removeprefix("http://"), "User-Agent": "greenlight-login-waves"}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        if body is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            headers["Origin"] = self.origin
        for attempt in (1, 2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=REQUEST_TIMEOUT)
                self.used = False
            try:
                self.conn.request(method, path, body=body, headers=headers)
                return self.conn.getresponse()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as exc:
                stale = self.used and attempt == 1
                self.close()
                if not stale:
                    self.log.unanswered += 1
                    raise RequestFailed(f"connection error: {type(exc).__name__}") from exc
                self.log.reconnects += 1  # a browser retries once on a fresh connection
            except TimeoutError as exc:
                self.close()
                self.log.unanswered += 1
                raise RequestFailed("connection error: timeout") from exc
            except OSError as exc:
                self.close()
                self.log.unanswered += 1
                raise RequestFailed(f"connection error: {type(exc).__name__}") from exc
        raise AssertionError("unreachable")

    def request(self, method: str, path: str, form: dict[str, str] | None = None) -> str:
        """Send one request and follow its redirects with GETs; returns the final path."""
        body = urllib.parse.urlencode(form) if form is not None else None
        for _ in range(5):
            started = time.perf_counter()
            response = self._send(method, path, body)
            try:
                data = response.read()
            except (http.client.HTTPException, OSError) as exc:  # cut off in the middle of the answer
                self.close()
                self.log.unanswered += 1
                raise RequestFailed(f"connection error: {type(exc).__name__}") from exc
            elapsed_ms = (time.perf_counter() - started) * 1000
            login = method == "POST" and path == "/login/"
            (self.log.login_ms if login else self.log.other_ms).append(elapsed_ms)
            self.used = True
            for header in response.headers.get_all("Set-Cookie") or []:
                for name, morsel in SimpleCookie(header).items():
                    if morsel.value and morsel["max-age"] != "0":
                        self.cookies[name] = morsel.value
                    else:
                        self.cookies.pop(name, None)
            if response.will_close:
                self.close()
            if response.status >= 400:
                raise RequestFailed(f"HTTP {response.status}")
            if response.status in (301, 302, 303, 307, 308):
                target = urllib.parse.urlsplit(urllib.parse.urljoin(path, response.headers["Location"]))
                path = urllib.parse.urlunsplit(("", "", target.path, target.query, ""))
                method, body = "GET", None
                continue
            self.page, self.path = data.decode(errors="replace"), path
            return path
        raise RequestFailed("too many redirects")

    def post_form(self, path: str, fields: dict[str, str]) -> str:
        """POST a form of the current page, with its CSRF token as the browser would send it."""
        match = _CSRF_INPUT.search(self.page)
        token = match.group(1) if match else self.cookies.get("csrftoken", "")
        return self.request("POST", path, {"csrfmiddlewaretoken": token, **fields})


_ASSET_PATH = re.compile(r"^/assets/(\d+)/$")


def reviewer_session(address: str, username: str, password: str, *, think_ms: float, log: ClientLog) -> Browser:
    """Sign in, claim, open the asset, decide, sign out; the browser stays connected (returned)."""
    rng = random.Random(username)
    browser = Browser(address, log)

    def think() -> None:
        if think_ms:
            time.sleep(rng.uniform(0.5, 1.5) * think_ms / 1000)

    try:
        browser.request("GET", "/login/")
        landed = browser.post_form("/login/", {"username": username, "password": password, "next": ""})
        if landed == "/login/":
            raise RequestFailed("login refused")
        think()
        claimed = _ASSET_PATH.match(browser.post_form("/claim", {}))  # redirected to the asset page
        think()
        if claimed is None:
            log.empty_claims += 1
        else:
            serial = claimed.group(1)
            if rng.random() < 0.8:
                browser.post_form(f"/assets/{serial}/approve", {"comment": ""})
            else:
                browser.post_form(f"/assets/{serial}/reject", {"reason": "off_brand", "comment": ""})
            log.decided += 1
            think()
        browser.post_form("/logout/", {})
    except RequestFailed as failure:
        log.errors[failure.kind] += 1
    except Exception as exc:  # counted, never lost with the thread
        log.errors[f"client error: {type(exc).__name__}: {exc}"] += 1
    return browser


# --- A wave ---------------------------------------------------------------------------------------


@dataclass
class WaveResult:
    number: int
    reviewers: int
    seconds: float
    log: ClientLog
    during_max: int
    after: int
    pool: int
    too_many_clients: int  # lines of the server's log with PostgreSQL's refusal, during this wave

    @property
    def requests(self) -> int:
        return len(self.log.login_ms) + len(self.log.other_ms) + self.log.unanswered

    @property
    def error_count(self) -> int:
        return sum(self.log.errors.values())

    @property
    def goal_met(self) -> bool:
        return self.error_count == 0 and self.too_many_clients == 0 and self.after <= self.pool

    def lines(self) -> list[str]:
        errors = ", ".join(f"{kind}: {n}" for kind, n in sorted(self.log.errors.items())) or "none"
        logins, others = self.log.login_ms, self.log.other_ms
        latencies = logins + others
        return [
            f"wave {self.number}: {self.reviewers} reviewers in {self.seconds:.1f} s; {self.requests} requests, "
            f"{self.log.decided} decided, {self.log.empty_claims} empty claims, "
            f"{self.log.reconnects} keep-alive reconnects",
            f"  errors: {self.error_count} ({errors}); server log '{TOO_MANY_CLIENTS}': {self.too_many_clients}",
            f"  latency: p50 {percentile(latencies, 50):.0f} ms, p95 {percentile(latencies, 95):.0f} ms, "
            f"max {max(latencies, default=float('nan')):.0f} ms (login POSTs p50 {percentile(logins, 50):.0f} ms, "
            f"p95 {percentile(logins, 95):.0f} ms; every other request p50 {percentile(others, 50):.0f} ms, "
            f"p95 {percentile(others, 95):.0f} ms)",
            f"  database connections: during the wave (max) {self.during_max}, after it {self.after} "
            f"(pool {self.pool})",
            f"  goal (no error, after <= pool): {'met' if self.goal_met else 'MISSED'}",
        ]


def wave_run(
    number: int,
    server: Server,
    usernames: list[str],
    password: str,
    counter: ConnectionCounter,
    *,
    think_ms: float = 200,
) -> WaveResult:
    """Every reviewer's session at once; the connections counted during and after it."""
    refusals_before = server.log_count(TOO_MANY_CLIENTS)
    logs = [ClientLog() for _ in usernames]
    browsers: list[Browser | None] = [None] * len(usernames)
    start = threading.Barrier(len(usernames))

    def client(index: int) -> None:
        start.wait(timeout=60)
        browsers[index] = reviewer_session(
            server.address, usernames[index], password, think_ms=think_ms, log=logs[index]
        )

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(len(usernames))]
    started = time.perf_counter()
    with counter.sampling() as samples:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=20 * REQUEST_TIMEOUT)
    seconds = time.perf_counter() - started
    time.sleep(SETTLE_SECONDS)
    after = counter.count()  # the browsers are still connected, idle, signed out
    for browser in browsers:
        if browser is not None:
            browser.close()
    merged = ClientLog()
    for log in logs:
        merged.login_ms += log.login_ms
        merged.other_ms += log.other_ms
        merged.errors.update(log.errors)
        merged.reconnects += log.reconnects
        merged.unanswered += log.unanswered
        merged.decided += log.decided
        merged.empty_claims += log.empty_claims
    unfinished = sum(thread.is_alive() for thread in threads)
    if unfinished:
        merged.errors["client did not finish"] += unfinished
    return WaveResult(
        number=number,
        reviewers=len(usernames),
        seconds=seconds,
        log=merged,
        during_max=max([*samples, after]),
        after=after,
        pool=server.pool,
        too_many_clients=server.log_count(TOO_MANY_CLIENTS) - refusals_before,
    )


def waves_run(
    server: Server,
    usernames: list[str],
    password: str,
    counter: ConnectionCounter,
    *,
    waves: int,
    think_ms: float = 200,
    echo: bool = False,
) -> list[WaveResult]:
    results = []
    for number in range(1, waves + 1):
        result = wave_run(number, server, usernames, password, counter, think_ms=think_ms)
        if echo:
            print("\n".join(result.lines()), flush=True)
        results.append(result)
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--waves", type=int, default=3)
    parser.add_argument("--reviewers", type=int, default=50)
    parser.add_argument("--assets", type=int, default=3000, help="seeded assets, a third in review")
    parser.add_argument("--server", choices=SERVERS, default="gunicorn")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--threads", type=int, default=4, help="gunicorn threads per worker")
    parser.add_argument("--conn-max-age", type=int, default=None, help="default: the server's profile's")
    parser.add_argument("--think-ms", type=float, default=200, help="mean pause between a reviewer's steps")
    parser.add_argument("--database", default=BENCH_DB, help="recreated for the bench")
    args = parser.parse_args(argv)
    if args.reviewers * (args.waves + 1) > args.assets // 3:
        parser.error("--assets: a third of them must cover reviewers x (waves + 1) claims")

    base = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
    url = database_url(base, args.database)
    password = secrets.token_urlsafe(16)
    with tempfile.TemporaryDirectory(prefix="greenlight-waves-") as folder:
        var_dir = Path(folder)
        print(f"database {args.database}: recreating, seeding {args.assets} assets and {args.reviewers} reviewers")
        database_recreate(base, args.database)
        django_setup(url, var_dir)
        usernames = reviewers_seed(reviewers=args.reviewers, assets=args.assets, password=password)
        from django.db import connections

        connections.close_all()  # the bench's own connection is not the server's
        env = server_env(
            args.server,
            url=url,
            var_dir=var_dir,
            port=free_port(),
            conn_max_age=args.conn_max_age,
            workers=args.workers,
            threads=args.threads,
        )
        max_age, health_checks = server_settings(env)
        shape = (
            f"gunicorn gthread, {args.workers} workers x {args.threads} threads, production profile"
            if args.server == "gunicorn"
            else "Django runserver (a thread per connection), development profile, DEBUG off"
        )
        print(f"server: {shape}; CONN_MAX_AGE={max_age}, CONN_HEALTH_CHECKS={health_checks}")
        print(
            f"{args.waves} waves of {args.reviewers} reviewers: login form, claim, asset page, decide, logout "
            f"(think time {args.think_ms:.0f} ms); connections counted in pg_stat_activity for {args.database}",
            flush=True,
        )
        counter = ConnectionCounter(base, args.database)
        server = server_start(args.server, env, var_dir / "server.log")
        try:
            results = waves_run(
                server, usernames, password, counter, waves=args.waves, think_ms=args.think_ms, echo=True
            )
        finally:
            server_stop(server)
            counter.close()
    errors = sum(r.error_count for r in results)
    ok = all(r.goal_met for r in results)
    print(
        f"all waves: {sum(r.requests for r in results)} requests, {errors} errors, connections after each wave "
        f"{[r.after for r in results]} (pool {server.pool}): goal {'met' if ok else 'MISSED'}"
    )
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
