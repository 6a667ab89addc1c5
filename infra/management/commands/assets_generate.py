"""Generate registered assets that are still pending or failed (regenerations, retries)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from infra.orchestration import assets_generate_local
from pipeline.params import MAX_SERIALS
from review.models import Asset
from review.states import AssetState


class Command(BaseCommand):
    help = "Generate registered assets by serial, or every pending one (--pending), through the Prefect flow."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("serials", nargs="*", type=int, help="asset serials")
        parser.add_argument("--pending", action="store_true", help="every pending asset (and --failed ones)")
        parser.add_argument("--failed", action="store_true", help="with --pending: failed assets too")
        parser.add_argument("--batch-size", type=int, default=settings.GREENLIGHT_BATCH_SIZE)

    def handle(self, *args: Any, **options: Any) -> None:
        serials: list[int] = list(options["serials"])
        if options["pending"]:
            states = [AssetState.PENDING] + ([AssetState.FAILED] if options["failed"] else [])
            serials += list(Asset.objects.filter(state__in=states).order_by("id").values_list("id", flat=True))
        if not serials:
            raise CommandError("name asset serials, or --pending")
        serials = list(dict.fromkeys(serials))
        for start in range(0, len(serials), MAX_SERIALS):  # the most one run takes
            try:
                chunk = serials[start : start + MAX_SERIALS]
                summary = assets_generate_local(serials=chunk, batch_size=options["batch_size"])
            except Exception as exc:
                raise CommandError(str(exc)) from exc
            self.stdout.write(self.style.SUCCESS(summary.line()))
