"""Sweep crash leftovers (`infra.sweep`): stored files no asset references, flow runs whose
process died, publications a dead process left writing; print what was removed and marked."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from infra.errors import SweepRefusedError
from infra.sweep import FILES_GRACE, RUNS_STALE, sweep
from review.services import PUBLISH_GRACE


def seconds(option: str) -> Callable[[str], timedelta]:
    """A parser of a whole number of seconds, ASCII digits only (`int()` would take "٣" or "3_0")."""

    def parse(text: str) -> timedelta:
        if not (text.isascii() and text.isdigit()):
            raise argparse.ArgumentTypeError(f"{option} must be a whole number of seconds (got {text!r})")
        return timedelta(seconds=int(text))

    return parse


class Command(BaseCommand):
    help = (
        "Sweep crash leftovers: remove stored files no asset references (older than the grace), mark "
        "Crashed the flow runs whose process died, roll back publications left writing. Records its "
        "report for the dashboard's health page; exits 1 when a part of it failed."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        for option, dest, default, what in (
            ("--grace-seconds", "grace", FILES_GRACE, "leave stored files younger than this alone"),
            ("--stale-seconds", "stale_after", RUNS_STALE, "a run elsewhere is dead this long without a heartbeat"),
            ("--publish-grace-seconds", "publish_grace", PUBLISH_GRACE, "leave publications younger than this alone"),
        ):
            parser.add_argument(
                option, dest=dest, type=seconds(option), default=default,
                help=f"{what} (default {int(default.total_seconds())})",
            )  # fmt: skip
        parser.add_argument("--dry-run", action="store_true", help="say what would be swept; change and record nothing")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            report = sweep(
                grace=options["grace"],
                stale_after=options["stale_after"],
                publish_grace=options["publish_grace"],
                dry_run=options["dry_run"],
            )
        except SweepRefusedError as exc:
            raise CommandError(str(exc)) from exc
        title = "Sweep (dry run: nothing changed)" if report.dry_run else "Sweep"
        self.stdout.write(self.style.MIGRATE_HEADING(f"{title}, {report.seconds:.1f} s"))
        files = report.files
        for line in report.lines():
            self.stdout.write(f"  {line}")
        if files is not None:
            for path in files.removed + files.temporary:
                self.stdout.write(f"    {'would remove' if report.dry_run else 'removed'} {path}")
            more = files.removed_count + files.temporary_count - len(files.removed) - len(files.temporary)
            if more:
                self.stdout.write(f"    ... and {more} more")
        if report.errors:
            raise CommandError(f"the sweep of {', '.join(report.errors)} failed (see above)")
