"""Reading settings from the environment, refusing a malformed value by name: one set of readers
for Django's settings and for the web server's configuration (`infra/gunicorn.conf.py`)."""

from __future__ import annotations

import os
import re
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}
_WHOLE = re.compile(r"^-?[0-9]{1,18}\Z")  # ASCII digits: int() also reads other scripts' digits


def env_path(name: str, default: Path) -> Path:
    value = os.environ.get(name)
    return Path(value).expanduser().resolve() if value else default


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    value = value.strip().lower()
    if value not in _TRUE | _FALSE:
        raise ImproperlyConfigured(f"{name} must be true or false (given: {value!r})")
    return value in _TRUE


def env_int(name: str, default: int, *, minimum: int = 0) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    if not _WHOLE.match(raw):
        raise ImproperlyConfigured(f"{name} must be a whole number (given: {raw!r})")
    value = int(raw)
    if value < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum} (given: {value})")
    return value


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]
