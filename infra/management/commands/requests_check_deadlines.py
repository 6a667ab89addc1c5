"""Tell requesters what happened to their requests (`review.notifications.requests_deadlines_check`):
a run finished, every asset decided, a deadline passed with assets undecided. Run it on a
schedule (a systemd timer or cron, every few minutes): notifications never wait for a page view."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from review.notifications import requests_deadlines_check


class Command(BaseCommand):
    help = (
        "Check every open asset request and notify its requester (e-mail and inbox, once each) of a finished run, "
        "every asset decided, or a deadline passed with assets undecided."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        sent = requests_deadlines_check()
        if not sent:
            self.stdout.write("Requests: nothing new to tell.")
            return
        for notification in sent:
            self.stdout.write(f"Notified {notification.recipient.get_username()}: {notification.subject}")
        self.stdout.write(self.style.SUCCESS(f"Requests: {len(sent)} notification(s) sent."))
