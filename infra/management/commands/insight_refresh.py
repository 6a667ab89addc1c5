"""Refresh the production dashboard's summary views, once or every N seconds."""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from review.insight.refresh import insight_refresh


class Command(BaseCommand):
    help = "Refresh the dashboard's summary views (PostgreSQL materialised views); --every N repeats."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--every", type=int, default=0, help="repeat every N seconds (0: once)")

    def handle(self, *args: Any, every: int, **options: Any) -> None:
        if every < 0:
            raise CommandError(f"--every must be 0 or more seconds (got {every})")
        while True:
            seconds = insight_refresh()
            self.stdout.write(f"insight views refreshed in {seconds:.2f} s")
            if not every:
                return
            time.sleep(every)
