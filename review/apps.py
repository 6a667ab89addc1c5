from __future__ import annotations

from django.apps import AppConfig


class ReviewConfig(AppConfig):
    """Every asset's state after it exists: review queue, decisions, audit, publishing."""

    name = "review"
    verbose_name = "Review"
