"""Run a campaign: on the generation workers when they are up, else in this process.

    manage.py campaign_run CAMPAIGN [--batch-size N] [--on auto|workers|here]

"workers": with a Prefect server (PREFECT_API_URL) and live generation workers (`infra.workers`)
for the campaign's models, the command starts a run, coordinates it and waits while the workers
make its batches on models they already hold: imports, Prefect's start and the model load are paid
once per worker process, not once per run. "here": the campaign-run flow in this process (Prefect's
local mode unless PREFECT_API_URL is set), loading the model itself. "auto" (the default) takes
the workers when each of the campaign's models has a live one, else makes the batches here.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from infra.orchestration import campaign_run_command


class Command(BaseCommand):
    help = "Generate a campaign's missing variants, sign them and queue them for review."
    # Django's system checks import every URL and view (0.26 s on 2 cores, before a worker gets
    # its first batch); they are `manage.py check`'s and the deploy's. A run checks what it needs:
    # its parameters and campaign here, its model and keys in the preflight of whoever makes it.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("campaign", help="campaign name (see prompt_library/library/campaigns)")
        parser.add_argument("--batch-size", type=int, default=settings.GREENLIGHT_BATCH_SIZE)
        parser.add_argument(
            "--on",
            choices=("auto", "workers", "here"),
            default="auto",
            help="where the batches are made (default auto: the workers when they serve the campaign's models)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            summary = campaign_run_command(
                campaign=options["campaign"], batch_size=options["batch_size"], on=options["on"]
            )
        except Exception as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(self.style.SUCCESS(summary.line()))
