"""Import this first in code that Prefect workers import (flows): it sets up Django once."""

from __future__ import annotations

import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "infra.settings")
django.setup()
