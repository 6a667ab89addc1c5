"""Load the prompt library's template and campaign files into the database."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from models import ModelError
from prompt_library.errors import PromptLibraryError
from prompt_library.services import library_load


class Command(BaseCommand):
    help = "Load prompt templates (new versions) and campaigns from the library folder."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--root", type=Path, default=None, help="library folder (default: GREENLIGHT_LIBRARY_DIR)")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            report = library_load(root=options["root"])
        except (PromptLibraryError, ModelError) as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            f"Prompt library: {len(report.versions_created)} new version(s) "
            f"{', '.join(report.versions_created)}{' ' if report.versions_created else ''}"
            f"({len(report.versions_unchanged)} unchanged), {len(report.campaigns_saved)} campaign(s): "
            f"{', '.join(report.campaigns_saved)}"
        )
        from prefect.settings import PREFECT_API_URL

        if PREFECT_API_URL.value():  # the campaigns' schedules become their deployments' schedules
            from infra.deployments import schedules_sync

            try:
                names = schedules_sync()
            except Exception as exc:  # the library is loaded; the server can be synced again later
                self.stderr.write(f"Schedules not synced to the Prefect server: {type(exc).__name__}: {exc}")
            else:
                self.stdout.write(f"Schedules: {len(names)} deployment(s) {', '.join(names)}")
