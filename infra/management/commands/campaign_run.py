"""Run a campaign through the Prefect flow (local mode unless PREFECT_API_URL is set)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from infra.orchestration import campaign_run_local


class Command(BaseCommand):
    help = "Generate a campaign's missing variants, sign them and queue them for review."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("campaign", help="campaign name (see prompt_library/library/campaigns)")
        parser.add_argument("--batch-size", type=int, default=settings.GREENLIGHT_BATCH_SIZE)

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            summary = campaign_run_local(campaign=options["campaign"], batch_size=options["batch_size"])
        except Exception as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(self.style.SUCCESS(summary.line()))
