"""Django settings, read from the environment.

Two profiles, chosen by `GREENLIGHT_ENV`. "development" (the default) has an embedded default for
every variable so that `make demo` runs on one machine with nothing configured: DEBUG on, a
development secret, a SQLite file and folders under `var/`, keys under the user's data folder.
"production" turns DEBUG off, refuses to start without a real secret and host names, and sends
secure cookies, HSTS and an HTTPS redirect; it also sets `DATABASE_URL` (PostgreSQL), the storage
and publish roots and the signing files. `manage.py check --deploy` passes on it without a warning.
Both profiles send the same security headers (Content-Security-Policy, nosniff, referrer policy,
frame denial) and throttle logins (django-axes).
"""

from __future__ import annotations

import json
import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from infra.env import env_bool, env_int, env_list, env_path

BASE_DIR = Path(__file__).resolve().parent.parent


def _secret_key_weakness(value: str) -> str | None:
    """Why `value` cannot sign production sessions, or None. The rule is Django's own
    (security.W009), so a key accepted here never draws that warning from `check --deploy`."""
    if not value:
        return "it is not set"
    if value == DEVELOPMENT_SECRET_KEY:
        return "it is the development key, which is public"
    if len(value) < 50 or len(set(value)) < 5 or value.startswith("django-insecure-"):
        return f"it is too weak ({len(value)} characters, {len(set(value))} distinct; 50 and 5 at least)"
    return None


VAR_DIR = env_path("GREENLIGHT_VAR_DIR", BASE_DIR / "var")

# --- Profile: development (the demo) or production ---------------------------------------------
GREENLIGHT_ENV = os.environ.get("GREENLIGHT_ENV", "development").strip().lower() or "development"
if GREENLIGHT_ENV not in ("development", "production"):
    raise ImproperlyConfigured(f"GREENLIGHT_ENV must be development or production (given: {GREENLIGHT_ENV!r})")
PRODUCTION = GREENLIGHT_ENV == "production"
DEVELOPMENT_SECRET_KEY = "greenlight-development-only-not-secret"
SECRET_KEY = os.environ.get("GREENLIGHT_SECRET_KEY", "")
if PRODUCTION:
    # DEBUG would show any visitor the URL map (every unknown URL) and tracebacks with settings.
    if env_bool("GREENLIGHT_DEBUG", False):
        raise ImproperlyConfigured("GREENLIGHT_DEBUG must be off when GREENLIGHT_ENV is production")
    DEBUG = False
    weakness = _secret_key_weakness(SECRET_KEY)
    if weakness:
        raise ImproperlyConfigured(
            f"GREENLIGHT_SECRET_KEY cannot be used in production: {weakness}. Generate one with: "
            "python -c 'import secrets; print(secrets.token_urlsafe(50))'"
        )
    ALLOWED_HOSTS = env_list("GREENLIGHT_ALLOWED_HOSTS")
    if not ALLOWED_HOSTS:
        raise ImproperlyConfigured(
            "GREENLIGHT_ALLOWED_HOSTS must name the host names the dashboard answers in production "
            "(comma-separated, e.g. greenlight.example.com)"
        )
else:
    DEBUG = env_bool("GREENLIGHT_DEBUG", True)
    if not SECRET_KEY:
        if not DEBUG:
            raise ImproperlyConfigured("GREENLIGHT_SECRET_KEY must be set when GREENLIGHT_DEBUG is off")
        SECRET_KEY = DEVELOPMENT_SECRET_KEY
    ALLOWED_HOSTS = env_list("GREENLIGHT_ALLOWED_HOSTS", "127.0.0.1,localhost")
CSRF_TRUSTED_ORIGINS = env_list("GREENLIGHT_CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "axes",
    "infra",
    "prompt_library",
    "review",
    "review.requests",
    # The REST API (/api/v1/); "ninja" serves its Swagger UI from these static files, not a CDN.
    "ninja",
    "api",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "infra.security.ContentSecurityPolicyMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: it turns a login refused by the lockout into the lockout page.
    "axes.middleware.AxesMiddleware",
]
if PRODUCTION:
    # Serves /static/ from STATIC_ROOT (filled by `manage.py collectstatic`), DEBUG being off;
    # right after SecurityMiddleware, as WhiteNoise asks. Development lets runserver serve them.
    MIDDLEWARE.insert(1, "whitenoise.middleware.WhiteNoiseMiddleware")

ROOT_URLCONF = "infra.urls"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]
WSGI_APPLICATION = "infra.wsgi.application"
ASGI_APPLICATION = "infra.asgi.application"

# PostgreSQL when DATABASE_URL is set (tests always set it); a SQLite file otherwise.
# How long a connection outlives its request. Django keeps one connection per thread, so a kept
# connection is only worth it in a server that reuses its threads: gunicorn's gthread workers
# (`make serve`, the production profile: 60 s, at most workers x threads connections per
# machine). runserver (`make demo`) answers each HTTP connection in a new thread, never reused: a
# connection kept past its request stays open after its browser has gone, one more for every
# reviewer who signs in, so the development profile closes it after each request. Behind a
# transaction-pooling PgBouncer (GREENLIGHT_DB_TRANSACTION_POOLING) the pooler keeps the
# connections: 0 here, and no server-side cursors (they outlive a transaction, which such a
# pooler does not allow). docs/deploy.md sizes the connections.
DB_TRANSACTION_POOLING = env_bool("GREENLIGHT_DB_TRANSACTION_POOLING", False)
DATABASES = {
    "default": dj_database_url.config(
        default=f"sqlite:///{VAR_DIR / 'greenlight.sqlite3'}",
        conn_max_age=env_int("GREENLIGHT_DB_CONN_MAX_AGE", 60 if PRODUCTION and not DB_TRANSACTION_POOLING else 0),
        # A kept connection is checked before each request reuses it (a restarted database,
        # a connection the server or a firewall dropped): the request gets a new one, not an error.
        conn_health_checks=env_bool("GREENLIGHT_DB_CONN_HEALTH_CHECKS", True),
        disable_server_side_cursors=DB_TRANSACTION_POOLING,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["OPTIONS"] = {"timeout": 30}
    Path(DATABASES["default"]["NAME"]).parent.mkdir(parents=True, exist_ok=True)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
# django-axes first: it refuses a locked-out login before any password is checked.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "review:queue"
LOGOUT_REDIRECT_URL = "login"

# --- Login throttling (django-axes) -------------------------------------------------------------
# After GREENLIGHT_LOGIN_FAILURE_LIMIT failed logins for one username from one address, that pair
# is refused (HTTP 429, the right password too) until GREENLIGHT_LOGIN_COOLOFF_MINUTES pass after
# the last failure (0: until unlocked with `manage.py axes_reset` or in the admin). Lockouts and
# unlocks are written to the audit log (review.signals). Both the review login and the admin's.
AXES_ENABLED = True
AXES_FAILURE_LIMIT = env_int("GREENLIGHT_LOGIN_FAILURE_LIMIT", 5, minimum=1)
_cooloff_minutes = env_int("GREENLIGHT_LOGIN_COOLOFF_MINUTES", 15)
AXES_COOLOFF_TIME = timedelta(minutes=_cooloff_minutes) if _cooloff_minutes else None
# By username and address together: one attacker cannot lock everyone out from one address, and
# a user's own mistakes elsewhere do not lock out their colleagues behind the same NAT.
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "infra.security.lockout_response"
# The client's address, the same one the audit log records (see GREENLIGHT_PROXY_COUNT).
AXES_CLIENT_IP_CALLABLE = "review.signals.client_address"
# The audit log is the record of logins; axes keeps only the failure counters it locks out by.
AXES_DISABLE_ACCESS_LOG = True
AXES_VERBOSE = False
# Reverse proxies in front of the web process that append the client's address to
# X-Forwarded-For: the client is the address the outermost of them saw. 0: REMOTE_ADDR itself.
GREENLIGHT_PROXY_COUNT = env_int("GREENLIGHT_PROXY_COUNT", 0)

# --- HTTP security ------------------------------------------------------------------------------
# Sent in every profile. The templates have no inline script or style, so the policy is strict.
GREENLIGHT_CONTENT_SECURITY_POLICY = (
    "default-src 'self'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'; object-src 'none'"
)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
# A proxy that terminates TLS tells Django the request was HTTPS with a header it sets (and strips
# from clients): "X-Forwarded-Proto" (value "https") or "Name: value".
_proxy_ssl_header = os.environ.get("GREENLIGHT_PROXY_SSL_HEADER", "").strip()
if _proxy_ssl_header:
    _name, _, _value = _proxy_ssl_header.partition(":")
    if not _name.strip() or any(c.isspace() for c in _name.strip()):
        raise ImproperlyConfigured(
            f"GREENLIGHT_PROXY_SSL_HEADER must be a header name, optionally ': value' (given: {_proxy_ssl_header!r})"
        )
    SECURE_PROXY_SSL_HEADER = ("HTTP_" + _name.strip().upper().replace("-", "_"), _value.strip() or "https")
if PRODUCTION:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = env_bool("GREENLIGHT_SSL_REDIRECT", True)
    SECURE_HSTS_SECONDS = env_int("GREENLIGHT_HSTS_SECONDS", 365 * 24 * 3600)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("GREENLIGHT_HSTS_INCLUDE_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = env_bool("GREENLIGHT_HSTS_PRELOAD", True)

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = env_path("GREENLIGHT_STATIC_ROOT", VAR_DIR / "static")
# Production serves /static/ through WhiteNoise from STATIC_ROOT, filled by `manage.py
# collectstatic`: hashed names, compressed copies, cached for a year.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if PRODUCTION
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"greenlight": {"handlers": ["console"], "level": "INFO", "propagate": False}},
}

# --- Greenlight -------------------------------------------------------------------------------
# Where generated masters and thumbnails are stored, and where published renditions go.
GREENLIGHT_STORAGE_ROOT = env_path("GREENLIGHT_STORAGE_ROOT", VAR_DIR / "storage")
GREENLIGHT_PUBLISH_ROOT = env_path("GREENLIGHT_PUBLISH_ROOT", VAR_DIR / "published")
# The prompt library's files (templates and campaigns) and the model manifests.
GREENLIGHT_LIBRARY_DIR = env_path("GREENLIGHT_LIBRARY_DIR", BASE_DIR / "prompt_library" / "library")
GREENLIGHT_MODELS_DIR = env_path("GREENLIGHT_MODELS_DIR", BASE_DIR / "models" / "manifests")
# Optional: a URL told of every publication (JSON POST signed with HMAC-SHA256 of this secret).
# Publish to object storage instead of GREENLIGHT_PUBLISH_ROOT: an fsspec URL (s3://bucket/prefix)
# and its filesystem's options as JSON (for S3: endpoint_url, key, secret, client_kwargs...).
GREENLIGHT_PUBLISH_URL = os.environ.get("GREENLIGHT_PUBLISH_URL", "")
try:
    GREENLIGHT_PUBLISH_STORAGE_OPTIONS = json.loads(os.environ.get("GREENLIGHT_PUBLISH_STORAGE_OPTIONS") or "{}")
except ValueError as exc:
    raise RuntimeError(f"GREENLIGHT_PUBLISH_STORAGE_OPTIONS is not valid JSON: {exc}") from exc
if not isinstance(GREENLIGHT_PUBLISH_STORAGE_OPTIONS, dict):
    raise RuntimeError("GREENLIGHT_PUBLISH_STORAGE_OPTIONS must be a JSON object")
GREENLIGHT_PUBLISH_WEBHOOK_URL = os.environ.get("GREENLIGHT_PUBLISH_WEBHOOK_URL", "")
GREENLIGHT_PUBLISH_WEBHOOK_SECRET = os.environ.get("GREENLIGHT_PUBLISH_WEBHOOK_SECRET", "")
if GREENLIGHT_PUBLISH_WEBHOOK_URL and not GREENLIGHT_PUBLISH_WEBHOOK_SECRET:
    raise RuntimeError("GREENLIGHT_PUBLISH_WEBHOOK_SECRET must be set with GREENLIGHT_PUBLISH_WEBHOOK_URL")
# Optional: a URL told of every webhook event (asset.published, asset.decided, run.finished), signed
# with this secret; each delivery is recorded and retried with backoff (review/webhooks.py).
GREENLIGHT_WEBHOOK_URL = os.environ.get("GREENLIGHT_WEBHOOK_URL", "")
GREENLIGHT_WEBHOOK_SECRET = os.environ.get("GREENLIGHT_WEBHOOK_SECRET", "")
if GREENLIGHT_WEBHOOK_URL and not GREENLIGHT_WEBHOOK_SECRET:
    raise RuntimeError("GREENLIGHT_WEBHOOK_SECRET must be set with GREENLIGHT_WEBHOOK_URL")
GREENLIGHT_BATCH_SIZE = int(os.environ.get("GREENLIGHT_BATCH_SIZE", "8"))
# Batches one Prefect task run carries to a worker (made one after another, each its own batch): a
# task run costs its server and the coordinator about 0.1 s of CPU, on the machines that generate.
GREENLIGHT_BATCHES_PER_TASK = env_int("GREENLIGHT_BATCHES_PER_TASK", 2, minimum=1)
# A captioning model (models/manifests/captioners/<name>.yaml) whose caption is added to every
# generated asset's alt text; unset: the template's description alone.
GREENLIGHT_CAPTIONER = os.environ.get("GREENLIGHT_CAPTIONER", "")
# How the dashboard starts generation (regenerations): "thread" runs the flow in a background
# thread of the web process (Prefect's local mode; for the demo and single-machine use),
# "deployment" triggers the `assets-generate` deployment on a Prefect server's work pool,
# "inline" runs it inside the request (tests).
GREENLIGHT_ORCHESTRATOR = os.environ.get("GREENLIGHT_ORCHESTRATOR", "thread")
if GREENLIGHT_ORCHESTRATOR not in ("thread", "deployment", "inline"):
    raise RuntimeError(
        f"GREENLIGHT_ORCHESTRATOR must be thread, deployment or inline (given: {GREENLIGHT_ORCHESTRATOR!r})"
    )
# The function review calls to start a run (review/orchestrator.py); it follows GREENLIGHT_ORCHESTRATOR.
GREENLIGHT_RUN_SUBMIT = "infra.orchestration.assets_generate_submit"
# The function a campaign run is started with (review.services.runs -> review/orchestrator.py):
# "thread" and "inline" coordinate the run in this process, "deployment" triggers the
# `campaign-coordinate` deployment; the batches go to the generation workers (infra/workers.py).
GREENLIGHT_CAMPAIGN_RUN_SUBMIT = "infra.orchestration.run_submit"
# Generation workers: how many `make up` starts, how long a batch's lease lasts without a
# heartbeat (a worker killed mid-batch loses it after this long, and another worker remakes it).
GREENLIGHT_WORKERS = env_int("GREENLIGHT_WORKERS", 2, minimum=1)
GREENLIGHT_LEASE_SECONDS = env_int("GREENLIGHT_LEASE_SECONDS", 30, minimum=2)
# Signing files: kept outside the repository. The development chain is written here by
# `manage.py signing_keys_create`; production points the three files at its own certificate.
_data_home = Path(os.environ.get("XDG_DATA_HOME", "~/.local/share")).expanduser()
GREENLIGHT_KEYS_DIR = env_path("GREENLIGHT_KEYS_DIR", _data_home / "greenlight" / "keys")
GREENLIGHT_SIGNING_CHAIN = env_path("GREENLIGHT_SIGNING_CHAIN", GREENLIGHT_KEYS_DIR / "chain.pem")
GREENLIGHT_SIGNING_KEY = env_path("GREENLIGHT_SIGNING_KEY", GREENLIGHT_KEYS_DIR / "signer.key")
GREENLIGHT_TRUST_ANCHORS = env_path("GREENLIGHT_TRUST_ANCHORS", GREENLIGHT_KEYS_DIR / "root.pem")
# A key held in a KMS or HSM: the import path "package.module:function" of a callable
# (data: bytes) -> signature bytes. When set, the signer uses it and GREENLIGHT_SIGNING_KEY is
# never read; the certificate chain still comes from GREENLIGHT_SIGNING_CHAIN.
GREENLIGHT_SIGNING_CALLBACK = os.environ.get("GREENLIGHT_SIGNING_CALLBACK", "").strip()
# The installation's secret watermark keys (provenance.watermark_keys): a folder of key files
# (one per key id, and `current`), made by `manage.py signing_keys_create`; or a KMS/HSM callback
# "package.module:function" returning (current_id, {id: key bytes}).
GREENLIGHT_WATERMARK_KEYS_DIR = env_path("GREENLIGHT_WATERMARK_KEYS_DIR", GREENLIGHT_KEYS_DIR / "watermark")
GREENLIGHT_WATERMARK_KEY_CALLBACK = os.environ.get("GREENLIGHT_WATERMARK_KEY_CALLBACK", "").strip()
# An RFC 3161 timestamp authority: when set, every manifest is timestamped, and stays valid after
# the signing certificate expires (the authority's root must be in GREENLIGHT_TRUST_ANCHORS; a sign
# it does not answer fails). Empty (the default, and the demo): no timestamp, no network.
# Revoked signing certificates are listed beside the chain (revoked.json, `signing_keys_revoke`).
GREENLIGHT_TSA_URL = os.environ.get("GREENLIGHT_TSA_URL", "").strip()
# `verify` (CLI, /verify/ page, POST /api/verify): the largest file accepted, in bytes, and the
# largest image by header dimensions (refused before decoding: a small PNG can claim 20000x20000).
GREENLIGHT_VERIFY_MAX_BYTES = int(os.environ.get("GREENLIGHT_VERIFY_MAX_BYTES", str(50 * 1024 * 1024)))
GREENLIGHT_VERIFY_MAX_PIXELS = int(os.environ.get("GREENLIGHT_VERIFY_MAX_PIXELS", "50000000"))
# A video's frame size, refused by its stream header before decoding (default: the pipeline's
# largest clip, 4096x4096); verifies at once in one web process (more are answered 429 with
# Retry-After, never queued); and the seconds of work one verify may spend on the web (503 after).
GREENLIGHT_VERIFY_MAX_VIDEO_PIXELS = env_int("GREENLIGHT_VERIFY_MAX_VIDEO_PIXELS", 4096 * 4096, minimum=1)
GREENLIGHT_VERIFY_CONCURRENCY = env_int("GREENLIGHT_VERIFY_CONCURRENCY", 2, minimum=1)
GREENLIGHT_VERIFY_TIMEOUT_SECONDS = env_int("GREENLIGHT_VERIFY_TIMEOUT_SECONDS", 6, minimum=1)
# Prefect runs in its local (ephemeral) mode unless PREFECT_API_URL points at a server; these
# defaults must be in the environment before `prefect` is first imported.
# Every Prefect client builds a TLS context from its CA bundle, even for a plain-HTTP API that
# never uses it: certifi's bundle costs 20-36 ms of CPU a client, and a task run opens four
# (submitting, running, waiting), beside generation on a worker's cores. For an http:// API URL
# the bundle is a one-certificate file whose key does not exist (0.5 ms a client): never consulted
# over plain HTTP. An https:// URL (or a bundle set here) keeps Prefect's own choice.
if os.environ.get("PREFECT_API_URL", "").strip().startswith("http://"):
    os.environ.setdefault("PREFECT_API_SSL_CERT_FILE", str(BASE_DIR / "infra" / "prefect_plain_http.pem"))
os.environ.setdefault("PREFECT_HOME", str(VAR_DIR / "prefect"))
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")
os.environ.setdefault("PREFECT_LOGGING_TO_API_ENABLED", "false")
# Marketing asset requests (review.requests): the most variants one brief, or one "ask for more",
# may make; a larger brief is refused before anything is registered.
GREENLIGHT_REQUEST_MAX_VARIANTS = env_int("GREENLIGHT_REQUEST_MAX_VARIANTS", 48, minimum=1)
# Notifications (review.notifications) go out through Django's e-mail backend: printed on the
# console unless GREENLIGHT_EMAIL_HOST names an SMTP server (README, "Notifications").
EMAIL_HOST = os.environ.get("GREENLIGHT_EMAIL_HOST", "").strip()
EMAIL_BACKEND = (
    "django.core.mail.backends.smtp.EmailBackend" if EMAIL_HOST else "django.core.mail.backends.console.EmailBackend"
)
EMAIL_PORT = env_int("GREENLIGHT_EMAIL_PORT", 587, minimum=1)
EMAIL_HOST_USER = os.environ.get("GREENLIGHT_EMAIL_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("GREENLIGHT_EMAIL_PASSWORD", "")
EMAIL_USE_TLS = env_bool("GREENLIGHT_EMAIL_TLS", True)
EMAIL_TIMEOUT = env_int("GREENLIGHT_EMAIL_TIMEOUT_SECONDS", 10, minimum=1)
DEFAULT_FROM_EMAIL = os.environ.get("GREENLIGHT_EMAIL_FROM", "greenlight@localhost")
# The dashboard's address as people reach it, for links in notification e-mails.
GREENLIGHT_SITE_URL = os.environ.get("GREENLIGHT_SITE_URL", "http://127.0.0.1:8000")
