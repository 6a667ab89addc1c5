"""`manage.py webhooks_retry`: send the webhook deliveries that are due again (run from a timer)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from review.webhooks import webhook_deliveries_retry


class Command(BaseCommand):
    help = "Retry the webhook deliveries whose backoff has passed."

    def handle(self, *args: Any, **options: Any) -> None:
        tried = webhook_deliveries_retry()
        self.stdout.write(f"{tried} webhook deliveries tried")
