"""Roll back publications a dead process left half written (`review.services.publications_sweep`)."""

from __future__ import annotations

import argparse
from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from review.services import PUBLISH_GRACE, publications_sweep


def seconds(text: str) -> timedelta:
    """A number of seconds, ASCII digits only (`int()` would also take "٣" or " 3_0 ")."""
    if not (text.isascii() and text.isdigit()):
        raise argparse.ArgumentTypeError(f"--grace-seconds must be a whole number of seconds (got {text!r})")
    return timedelta(seconds=int(text))


class Command(BaseCommand):
    help = (
        "Roll back publications still being written after the grace period (a process died mid-publish): "
        "remove their files from the publish target; their assets stay approved."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--grace-seconds",
            dest="grace",
            type=seconds,
            default=PUBLISH_GRACE,
            help=f"leave publications younger than this alone (default {int(PUBLISH_GRACE.total_seconds())})",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        sweep = publications_sweep(grace=options["grace"])
        if not (sweep.assets or sweep.busy or sweep.failed):
            self.stdout.write("Publications: nothing abandoned.")
            return
        if sweep.assets:
            self.stdout.write(
                f"Publications: rolled back {len(sweep.rolled_back)} row(s) of asset(s) "
                f"{', '.join(map(str, sweep.assets))}; removed {len(sweep.removed)} file(s)"
                + (f": {', '.join(sweep.removed)}" if sweep.removed else "")
            )
        if sweep.busy:
            self.stdout.write(f"Publications: asset(s) {', '.join(map(str, sweep.busy))} busy, left for the next sweep")
        if sweep.failed:
            self.stderr.write(
                f"Publications: the publish target refused removals for asset(s) {', '.join(map(str, sweep.failed))}; "
                "they stay being written until a sweep succeeds"
            )
