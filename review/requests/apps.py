from __future__ import annotations

from django.apps import AppConfig


class RequestsConfig(AppConfig):
    """Marketing asset requests: briefs, their delivery, and the notifications they send."""

    name = "review.requests"
    label = "requests"
    verbose_name = "Asset requests"

    def ready(self) -> None:
        from django.db.models.signals import post_save

        from review.models import Asset, Run
        from review.requests import signals

        post_save.connect(signals.asset_saved, sender=Asset, dispatch_uid="requests.asset_saved")
        post_save.connect(signals.run_saved, sender=Run, dispatch_uid="requests.run_saved")
