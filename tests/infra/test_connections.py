"""Database connections of the web server: kept only where threads are reused, and bounded by
the pool. The real servers are started as subprocesses on 127.0.0.1 (gunicorn with
infra/gunicorn.conf.py and the production profile, runserver with the development profile) and
waves of reviewers sign in, claim, decide and sign out over HTTP, with `bench.login_waves`' own
functions: the test is the bench on a smaller scale."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection

from bench.login_waves import (
    ROOT,
    ConnectionCounter,
    WaveResult,
    free_port,
    reviewers_seed,
    server_env,
    server_settings,
    server_start,
    server_stop,
    waves_run,
)
from bench.review_load import database_url

WAVES = 3
REVIEWERS = 15
WORKERS, THREADS = 2, 2  # a pool of 4 connections, well under the 15 reviewers at once


def _settings_env(tmp_path: Path, kind: str, **overrides: str) -> dict[str, str]:
    env = server_env(kind, url="postgres://nobody@127.0.0.1:5432/unused", var_dir=tmp_path, port=free_port())
    env.update(overrides)
    return env


def test_development_profile_closes_connections_after_each_request(tmp_path: Path) -> None:
    """runserver (make demo) starts a thread per HTTP connection, never reused: a connection kept
    past its request would stay open for as long as the server runs."""
    assert server_settings(_settings_env(tmp_path, "runserver")) == (0, True)
    # Set explicitly, it is obeyed (a development setup under gunicorn).
    assert server_settings(_settings_env(tmp_path, "runserver", GREENLIGHT_DB_CONN_MAX_AGE="30")) == (30, True)


def test_production_profile_keeps_health_checked_connections(tmp_path: Path) -> None:
    assert server_settings(_settings_env(tmp_path, "gunicorn")) == (60, True)
    assert server_settings(_settings_env(tmp_path, "gunicorn", GREENLIGHT_DB_CONN_HEALTH_CHECKS="off")) == (60, False)


def test_behind_a_transaction_pooler_no_connection_is_kept_and_no_server_side_cursor_used(tmp_path: Path) -> None:
    env = _settings_env(tmp_path, "gunicorn", GREENLIGHT_DB_TRANSACTION_POOLING="true")
    code = (
        "import django; django.setup(); from django.conf import settings; db = settings.DATABASES['default']; "
        "print(db['CONN_MAX_AGE'], db['DISABLE_SERVER_SIDE_CURSORS'])"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=True
    )
    assert done.stdout.split()[-2:] == ["0", "True"]


def _gunicorn_config(**env: str) -> subprocess.CompletedProcess[str]:
    """gunicorn reads infra/gunicorn.conf.py and prints the settings it would run with."""
    return subprocess.run(
        [sys.executable, "-m", "gunicorn", "-c", "infra/gunicorn.conf.py", "--print-config"],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_gunicorn_config_takes_its_pool_from_the_environment() -> None:
    pool = {"GREENLIGHT_WEB_WORKERS": "3", "GREENLIGHT_WEB_THREADS": "5", "GREENLIGHT_WEB_BIND": "127.0.0.1:9"}
    done = _gunicorn_config(**pool)
    assert done.returncode == 0, done.stderr
    seen = {k.strip(): v.strip() for k, v in (line.split("=", 1) for line in done.stdout.splitlines() if "=" in line)}
    assert (seen["workers"], seen["threads"], seen["worker_class"]) == ("3", "5", "gthread")
    assert seen["bind"] == "['127.0.0.1:9']" and seen["wsgi_app"] == "infra.wsgi:application"
    assert int(seen["max_requests"]) > 0 and int(seen["max_requests_jitter"]) > 0
    assert seen["preload_app"] == "False" and seen["accesslog"] == "-"

    refused = _gunicorn_config(**{**pool, "GREENLIGHT_WEB_THREADS": "many"})
    assert refused.returncode != 0
    assert "GREENLIGHT_WEB_THREADS must be a whole number (given: 'many')" in refused.stdout + refused.stderr


def _waves(kind: str, tmp_path: Path) -> list[WaveResult]:
    """Seed the test database, start the server on it and run the waves; the server is stopped
    before the test's teardown empties the database."""
    password = secrets.token_urlsafe(16)
    usernames = reviewers_seed(reviewers=REVIEWERS, assets=REVIEWERS * (WAVES + 1) * 3, password=password)
    name = connection.settings_dict["NAME"]
    url = database_url(os.environ["DATABASE_URL"], name)
    with connection.cursor() as cursor:  # this test's own connection is not the server's
        cursor.execute("SELECT pg_backend_pid()")
        (own_pid,) = cursor.fetchone()
    env = server_env(kind, url=url, var_dir=tmp_path, port=free_port(), conn_max_age=60 if kind == "gunicorn" else None)
    if kind == "gunicorn":
        env.update(GREENLIGHT_WEB_WORKERS=str(WORKERS), GREENLIGHT_WEB_THREADS=str(THREADS))
    counter = ConnectionCounter(url, name, exclude=(own_pid,))
    try:
        server = server_start(kind, env, tmp_path / "server.log")
        try:
            return waves_run(server, usernames, password, counter, waves=WAVES, think_ms=50)
        finally:
            server_stop(server)
    finally:
        counter.close()


def _assert_clean(results: list[WaveResult], *, pool: int) -> None:
    report = "\n".join(line for r in results for line in r.lines())
    assert len(results) == WAVES, report
    for result in results:
        assert result.error_count == 0, report
        assert result.too_many_clients == 0, report
        assert result.log.decided == REVIEWERS, report
        assert result.pool == pool, report
        assert result.after <= pool, report
        assert result.goal_met, report


@pytest.mark.django_db(transaction=True)
def test_gunicorn_waves_of_reviewers_keep_the_connections_within_the_pool(tmp_path: Path) -> None:
    """3 waves of 15 reviewers at once over HTTP: no error, and the server never holds more
    than workers x threads connections, during a wave or after it, however many browsers."""
    results = _waves("gunicorn", tmp_path)
    _assert_clean(results, pool=WORKERS * THREADS)
    for result in results:
        assert result.during_max <= WORKERS * THREADS, "\n".join(result.lines())


@pytest.mark.django_db(transaction=True)
def test_runserver_waves_of_reviewers_leave_no_connection_behind(tmp_path: Path) -> None:
    """The development server with its profile's default: every connection is closed with its
    request, so signed-out reviewers leave none open (kept, each wave's would pile up)."""
    results = _waves("runserver", tmp_path)
    _assert_clean(results, pool=0)
