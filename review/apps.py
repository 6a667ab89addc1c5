from __future__ import annotations

from django.apps import AppConfig


class ReviewConfig(AppConfig):
    """Every asset's state after it exists: review queue, decisions, audit, publishing."""

    name = "review"
    verbose_name = "Review"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from review.roles import roles_sync

        post_migrate.connect(roles_sync, sender=self, dispatch_uid="review.roles_sync")
