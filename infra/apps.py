from __future__ import annotations

from django.apps import AppConfig


class InfraConfig(AppConfig):
    """Wiring: management commands for keys, the prompt library, campaigns and the demo."""

    name = "infra"
    verbose_name = "Greenlight infrastructure"
