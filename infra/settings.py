"""Django settings, read from the environment.

Every variable has an embedded default so that `make demo` runs on one machine with nothing
configured: a SQLite file and folders under `var/`, keys under the user's data folder. Production
sets `DATABASE_URL` (PostgreSQL), the storage and publish roots and the signing files.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent


def _env_path(name: str, default: Path) -> Path:
    value = os.environ.get(name)
    return Path(value).expanduser().resolve() if value else default


def _env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


VAR_DIR = _env_path("GREENLIGHT_VAR_DIR", BASE_DIR / "var")
DEBUG = _env_bool("GREENLIGHT_DEBUG", True)
SECRET_KEY = os.environ.get("GREENLIGHT_SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise RuntimeError("GREENLIGHT_SECRET_KEY must be set when GREENLIGHT_DEBUG is off")
    SECRET_KEY = "greenlight-development-only-not-secret"
ALLOWED_HOSTS = [h for h in os.environ.get("GREENLIGHT_ALLOWED_HOSTS", "127.0.0.1,localhost").split(",") if h]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "infra",
    "prompt_library",
    "review",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

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
DATABASES = {
    "default": dj_database_url.config(
        default=f"sqlite:///{VAR_DIR / 'greenlight.sqlite3'}",
        conn_max_age=int(os.environ.get("GREENLIGHT_DB_CONN_MAX_AGE", "60")),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["OPTIONS"] = {"timeout": 30}
    Path(DATABASES["default"]["NAME"]).parent.mkdir(parents=True, exist_ok=True)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "review:queue"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"greenlight": {"handlers": ["console"], "level": "INFO", "propagate": False}},
}

# --- Greenlight -------------------------------------------------------------------------------
# Where generated masters and thumbnails are stored, and where published renditions go.
GREENLIGHT_STORAGE_ROOT = _env_path("GREENLIGHT_STORAGE_ROOT", VAR_DIR / "storage")
GREENLIGHT_PUBLISH_ROOT = _env_path("GREENLIGHT_PUBLISH_ROOT", VAR_DIR / "published")
# The prompt library's files (templates and campaigns) and the model manifests.
GREENLIGHT_LIBRARY_DIR = _env_path("GREENLIGHT_LIBRARY_DIR", BASE_DIR / "prompt_library" / "library")
GREENLIGHT_MODELS_DIR = _env_path("GREENLIGHT_MODELS_DIR", BASE_DIR / "models" / "manifests")
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
GREENLIGHT_BATCH_SIZE = int(os.environ.get("GREENLIGHT_BATCH_SIZE", "8"))
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
# Signing files: kept outside the repository. The development chain is written here by
# `manage.py signing_keys_create`; production points the three files at its own certificate.
_data_home = Path(os.environ.get("XDG_DATA_HOME", "~/.local/share")).expanduser()
GREENLIGHT_KEYS_DIR = _env_path("GREENLIGHT_KEYS_DIR", _data_home / "greenlight" / "keys")
GREENLIGHT_SIGNING_CHAIN = _env_path("GREENLIGHT_SIGNING_CHAIN", GREENLIGHT_KEYS_DIR / "chain.pem")
GREENLIGHT_SIGNING_KEY = _env_path("GREENLIGHT_SIGNING_KEY", GREENLIGHT_KEYS_DIR / "signer.key")
GREENLIGHT_TRUST_ANCHORS = _env_path("GREENLIGHT_TRUST_ANCHORS", GREENLIGHT_KEYS_DIR / "root.pem")
# A key held in a KMS or HSM: the import path "package.module:function" of a callable
# (data: bytes) -> signature bytes. When set, the signer uses it and GREENLIGHT_SIGNING_KEY is
# never read; the certificate chain still comes from GREENLIGHT_SIGNING_CHAIN.
GREENLIGHT_SIGNING_CALLBACK = os.environ.get("GREENLIGHT_SIGNING_CALLBACK", "").strip()
# `verify` (CLI, /verify/ page, POST /api/verify): the largest file accepted, in bytes, and the
# largest image by header dimensions (refused before decoding: a small PNG can claim 20000x20000).
GREENLIGHT_VERIFY_MAX_BYTES = int(os.environ.get("GREENLIGHT_VERIFY_MAX_BYTES", str(50 * 1024 * 1024)))
GREENLIGHT_VERIFY_MAX_PIXELS = int(os.environ.get("GREENLIGHT_VERIFY_MAX_PIXELS", "50000000"))
# Prefect runs in its local (ephemeral) mode unless PREFECT_API_URL points at a server; these
# defaults must be in the environment before `prefect` is first imported.
os.environ.setdefault("PREFECT_HOME", str(VAR_DIR / "prefect"))
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")
os.environ.setdefault("PREFECT_LOGGING_TO_API_ENABLED", "false")
