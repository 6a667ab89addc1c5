"""The settings profiles: GREENLIGHT_ENV=production passes `check --deploy` without a warning,
refuses to start with the development secret, a weak one or no host names, and answers with the
security headers and friendly error pages (no URL map, no traceback); development, the default,
still needs nothing configured. Each profile is loaded in a new process, as a server would."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse
from django.test import Client
from django.urls import include, path

from tests.fixture_types import SettingsWrapper

BASE_DIR = Path(__file__).resolve().parents[2]
GOOD_SECRET = "k3Y-for-tests-only_" + "x7Qp2Lm9Zr" * 4  # 59 characters, many distinct
DEVELOPMENT_SECRET = "greenlight-development-only-not-secret"


def _env(tmp_path: Path, **overrides: str) -> dict[str, str]:
    """The test process's environment without any GREENLIGHT_* setting, plus `overrides`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GREENLIGHT_")}
    env.update(DJANGO_SETTINGS_MODULE="infra.settings", GREENLIGHT_VAR_DIR=str(tmp_path / "var"), **overrides)
    return env


def _production(tmp_path: Path, **overrides: str) -> dict[str, str]:
    production = {
        "GREENLIGHT_ENV": "production",
        "GREENLIGHT_SECRET_KEY": GOOD_SECRET,
        "GREENLIGHT_ALLOWED_HOSTS": "greenlight.example.com,testserver",
    }
    return _env(tmp_path, **{**production, **overrides})


def _run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=180, check=False
    )


# Loads the settings and answers requests through the whole middleware stack with Django's test
# client (no database needed), printing what a browser would get as JSON.
PROBE = """
import json, django
django.setup()
from django.conf import settings
from django.test import Client
client = Client()
def seen(response):
    cookies = {k: {"secure": bool(v["secure"]), "httponly": bool(v["httponly"])} for k, v in response.cookies.items()}
    return {"status": response.status_code, "headers": dict(response.headers), "cookies": cookies,
            "body": response.content.decode(errors="replace")}
css = settings.STORAGES["staticfiles"]["BACKEND"]
print(json.dumps({
    "debug": settings.DEBUG,
    "axes": [settings.AXES_FAILURE_LIMIT, str(settings.AXES_COOLOFF_TIME)],
    "db": [settings.DATABASES["default"]["CONN_MAX_AGE"], settings.DATABASES["default"]["CONN_HEALTH_CHECKS"]],
    "unknown": seen(client.get("/no/such/page", secure=True)),
    "unknown_http": seen(client.get("/no/such/page")),
    "forwarded_https": seen(client.get("/login/", HTTP_X_FORWARDED_PROTO="https")),
    "login": seen(client.get("/login/", secure=True)),
}))
"""


def _probe(env: dict[str, str]) -> dict[str, Any]:
    result = _run(env, "-c", PROBE)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_the_production_profile_passes_check_deploy_without_a_warning(tmp_path: Path) -> None:
    result = _run(_production(tmp_path), "manage.py", "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout
    assert "WARNING" not in result.stdout + result.stderr


def test_the_development_profile_would_fail_check_deploy(tmp_path: Path) -> None:
    """What production is compared with: the demo's settings draw the deployment warnings."""
    result = _run(_env(tmp_path), "manage.py", "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode != 0
    for warning in ("security.W004", "security.W008", "security.W009", "security.W012", "security.W018"):
        assert warning in result.stderr


@pytest.mark.parametrize(
    ("secret", "why"),
    [
        (DEVELOPMENT_SECRET, "it is the development key"),
        ("", "it is not set"),
        ("short-secret", "it is too weak (12 characters"),
        ("ab" * 30, "2 distinct"),
    ],
    ids=["development", "empty", "short", "few-distinct"],
)
def test_production_refuses_to_start_with_a_weak_secret(tmp_path: Path, secret: str, why: str) -> None:
    result = _run(_production(tmp_path, GREENLIGHT_SECRET_KEY=secret), "manage.py", "check")
    assert result.returncode != 0
    assert "ImproperlyConfigured: GREENLIGHT_SECRET_KEY cannot be used in production" in result.stderr
    assert why in result.stderr
    if secret:
        assert secret not in result.stderr  # the refusal never prints the secret itself


def test_production_refuses_to_start_without_allowed_hosts(tmp_path: Path) -> None:
    result = _run(_production(tmp_path, GREENLIGHT_ALLOWED_HOSTS=" , "), "manage.py", "check")
    assert result.returncode != 0
    assert "ImproperlyConfigured: GREENLIGHT_ALLOWED_HOSTS must name the host names" in result.stderr


def test_production_refuses_debug(tmp_path: Path) -> None:
    result = _run(_production(tmp_path, GREENLIGHT_DEBUG="true"), "manage.py", "check")
    assert result.returncode != 0
    assert "GREENLIGHT_DEBUG must be off when GREENLIGHT_ENV is production" in result.stderr


def test_an_unknown_profile_or_a_malformed_number_is_refused(tmp_path: Path) -> None:
    result = _run(_env(tmp_path, GREENLIGHT_ENV="prod"), "manage.py", "check")
    assert "GREENLIGHT_ENV must be development or production (given: 'prod')" in result.stderr
    result = _run(_env(tmp_path, GREENLIGHT_LOGIN_FAILURE_LIMIT="five"), "manage.py", "check")
    assert "GREENLIGHT_LOGIN_FAILURE_LIMIT must be a whole number (given: 'five')" in result.stderr


def test_production_answers_with_the_friendly_404_secure_headers_and_static_files(tmp_path: Path) -> None:
    env = _production(
        tmp_path,
        GREENLIGHT_PROXY_SSL_HEADER="X-Forwarded-Proto",
        GREENLIGHT_LOGIN_FAILURE_LIMIT="3",
        GREENLIGHT_LOGIN_COOLOFF_MINUTES="30",
    )
    collected = _run(env, "manage.py", "collectstatic", "--noinput")
    assert collected.returncode == 0, collected.stderr
    seen = _probe(env)
    assert seen["debug"] is False
    assert seen["axes"] == [3, "0:30:00"]
    assert seen["db"] == [60, True]

    unknown = seen["unknown"]
    assert unknown["status"] == 404
    assert "Page not found" in unknown["body"] and 'id="back-to-queue"' in unknown["body"]
    for leak in ("URLconf", "admin/", "api/verify", "Traceback", "DEBUG"):
        assert leak not in unknown["body"]
    assert unknown["headers"]["Content-Security-Policy"] == settings.GREENLIGHT_CONTENT_SECURITY_POLICY

    # Plain HTTP is sent to HTTPS; a request the proxy marks as HTTPS is served.
    assert seen["unknown_http"]["status"] == 301
    assert seen["unknown_http"]["headers"]["Location"] == "https://testserver/no/such/page"
    assert seen["forwarded_https"]["status"] == 200

    login = seen["login"]
    headers = login["headers"]
    assert login["status"] == 200
    assert headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains; preload"
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "same-origin"
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    assert login["cookies"]["csrftoken"]["secure"] is True

    # The stylesheet is served by the web process itself, under its hashed name, cached for long.
    link = re.search(r'<link rel="stylesheet" href="([^"]+)"', login["body"])
    assert link is not None
    stylesheet = link.group(1)
    assert stylesheet.startswith("/static/review/app.") and stylesheet != "/static/review/app.css"
    served = _run(
        env,
        "-c",
        "import django; django.setup(); from django.test import Client; "
        f"r = Client().get({stylesheet!r}, secure=True); print(r.status_code, r.headers['Cache-Control'])",
    )
    assert served.stdout.split()[0] == "200", served.stderr[-2000:]
    assert "immutable" in served.stdout


def test_the_development_profile_needs_nothing_configured(tmp_path: Path) -> None:
    result = _run(_env(tmp_path), "manage.py", "check")
    assert result.returncode == 0, result.stderr
    shown = _run(
        _env(tmp_path),
        "-c",
        "import django; django.setup(); from django.conf import settings as s; "
        "print(s.DEBUG, s.SECRET_KEY, s.ALLOWED_HOSTS, s.SESSION_COOKIE_SECURE, "
        "s.AXES_FAILURE_LIMIT, s.AXES_COOLOFF_TIME)",
    )
    assert (
        shown.stdout.strip().splitlines()[-1] == f"True {DEVELOPMENT_SECRET} ['127.0.0.1', 'localhost'] False 5 0:15:00"
    )


# --- In this process: the error pages with DEBUG off, and the header in every response ---------


@login_not_required
def _boom(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("secret internals: DATABASE password=hunter2")


urlpatterns = [path("boom/", _boom), path("", include("infra.urls"))]


@pytest.fixture
def debug_off(settings: SettingsWrapper) -> Iterator[SettingsWrapper]:
    settings.DEBUG = False
    yield settings


@pytest.mark.django_db
def test_with_debug_off_an_unknown_url_gets_the_friendly_404_without_the_url_map(debug_off: SettingsWrapper) -> None:
    response = Client().get("/assets/1/nope/nothing")
    body = response.content.decode()
    assert response.status_code == 404
    assert "Page not found" in body and 'href="/"' in body
    assert "URLconf" not in body and "review:" not in body and "admin/" not in body
    assert response["Content-Security-Policy"] == settings.GREENLIGHT_CONTENT_SECURITY_POLICY


@pytest.mark.urls("tests.infra.test_settings")
@pytest.mark.django_db
def test_with_debug_off_a_server_error_gets_the_friendly_500_without_the_traceback(
    debug_off: SettingsWrapper,
) -> None:
    response = Client(raise_request_exception=False).get("/boom/")
    body = response.content.decode()
    assert response.status_code == 500
    assert "Something went wrong" in body and 'id="back-to-queue"' in body
    assert "hunter2" not in body and "Traceback" not in body and "RuntimeError" not in body


@pytest.mark.django_db
def test_with_debug_off_a_stale_form_gets_the_friendly_csrf_page(debug_off: SettingsWrapper) -> None:
    response = Client(enforce_csrf_checks=True).post("/login/", {"username": "x", "password": "y"})
    assert response.status_code == 403
    assert "This form has expired" in response.content.decode()


@pytest.mark.django_db
def test_the_content_security_policy_is_sent_in_development_too() -> None:
    response = Client().get("/login/")
    assert response.status_code == 200
    assert response["Content-Security-Policy"] == (
        "default-src 'self'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'; object-src 'none'"
    )
    assert response["X-Frame-Options"] == "DENY"


# The CA bundle a Prefect client of this process builds its TLS context from.
PREFECT_CLIENT_PROBE = """
import json, django
django.setup()
from prefect.client.orchestration import SyncPrefectClient
from prefect.settings import PREFECT_API_SSL_CERT_FILE, PREFECT_API_URL
SyncPrefectClient(PREFECT_API_URL.value())  # builds its TLS context from the bundle
print(json.dumps({"bundle": PREFECT_API_SSL_CERT_FILE.value()}))
"""


@pytest.mark.parametrize(
    ("url", "bundle", "placeholder"),
    [
        ("http://127.0.0.1:4200/api", "", True),  # plain HTTP: the one-certificate placeholder
        ("https://prefect.example.com/api", "", False),  # TLS: Prefect's own bundle (certifi)
        ("http://127.0.0.1:4200/api", "{own}", False),  # an operator's bundle is kept
    ],
)
def test_prefect_clients_of_a_plain_http_api_skip_loading_a_ca_bundle(
    tmp_path: Path, url: str, bundle: str, placeholder: bool
) -> None:
    own = tmp_path / "own-ca.pem"
    own.write_bytes((BASE_DIR / "infra" / "prefect_plain_http.pem").read_bytes())
    overrides = {"PREFECT_API_URL": url, "PREFECT_HOME": str(tmp_path / "prefect")}
    if bundle:
        overrides["PREFECT_API_SSL_CERT_FILE"] = bundle.format(own=own)
    env = {k: v for k, v in _env(tmp_path, **overrides).items() if bundle or k != "PREFECT_API_SSL_CERT_FILE"}
    result = _run(env, "-c", PREFECT_CLIENT_PROBE)
    assert result.returncode == 0, result.stderr[-3000:]
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    placeholder_path = str(BASE_DIR / "infra" / "prefect_plain_http.pem")
    if placeholder:
        assert seen["bundle"] == placeholder_path
    elif bundle:
        assert seen["bundle"] == str(own)
    else:  # Prefect's own default (certifi's bundle, or the machine's SSL_CERT_FILE)
        assert seen["bundle"] != placeholder_path


def test_the_plain_http_placeholder_certifies_nothing() -> None:
    from cryptography import x509

    (certificate,) = x509.load_pem_x509_certificates((BASE_DIR / "infra" / "prefect_plain_http.pem").read_bytes())
    assert certificate.issuer == certificate.subject  # self-signed: no public authority's chain leads to it
    assert "no key" in certificate.subject.rfc4514_string()
