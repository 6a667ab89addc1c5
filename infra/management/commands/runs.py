"""Campaign runs from the command line: list them, start one, pause, resume or cancel it.

    manage.py runs list [--campaign NAME]
    manage.py runs start CAMPAIGN --user NAME [--priority 0-9]
    manage.py runs pause|resume|cancel RUN_ID --user NAME
    manage.py runs coordinate RUN_ID      # run a run's coordinator here, until it ends or pauses

Each change goes through the same service as the Campaigns page and the API (the user needs the
operator or admin role) and is in the audit log.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User
from django.core.management.base import BaseCommand, CommandError, CommandParser

from prompt_library.models import Campaign
from review.errors import ReviewError
from review.models import Run
from review.selectors import run_list, run_progress
from review.services.runs import campaign_run_start, run_cancel, run_pause, run_resume


class Command(BaseCommand):
    help = "List, start, pause, resume or cancel campaign runs."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        listing = sub.add_parser("list", help="the latest runs and their progress")
        listing.add_argument("--campaign", default="")
        start = sub.add_parser("start", help="start a run of a campaign")
        start.add_argument("campaign")
        start.add_argument("--user", required=True)
        start.add_argument("--priority", type=int, default=None)
        for name in ("pause", "resume", "cancel"):
            one = sub.add_parser(name, help=f"{name} a run")
            one.add_argument("run_id", type=int)
            one.add_argument("--user", required=True)
        coordinate = sub.add_parser("coordinate", help="coordinate a run in this process")
        coordinate.add_argument("run_id", type=int)

    def handle(self, *args: Any, **options: Any) -> None:
        action = options["action"]
        if action == "list":
            for run in run_list(campaign=options["campaign"] or None):
                self.stdout.write(_line(run))
            return
        if action == "coordinate":
            from infra.orchestration import run_coordinate_local

            self.stdout.write(run_coordinate_local(run_id=_run(options["run_id"]).pk))
            return
        user = User.objects.filter(username=options["user"]).first()
        if user is None:
            raise CommandError(f"--user {options['user']!r}: no such user")
        try:
            if action == "start":
                campaign = Campaign.objects.filter(name=options["campaign"]).first()
                if campaign is None:
                    raise CommandError(f"campaign {options['campaign']!r}: no such campaign (load the library first)")
                run = campaign_run_start(campaign=campaign, actor=user, priority=options["priority"])
            else:
                service = {"pause": run_pause, "resume": run_resume, "cancel": run_cancel}[action]
                run = service(run=_run(options["run_id"]), actor=user)
        except ReviewError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(self.style.SUCCESS(_line(run)))


def _run(run_id: int) -> Run:
    run = Run.objects.filter(pk=run_id).first()
    if run is None:
        raise CommandError(f"run {run_id}: no such run")
    return run


def _line(run: Run) -> str:
    p = run_progress(run=run)
    rate = f"{p.images_per_second:.2f} img/s" if p.images_per_second is not None else "-"
    return (
        f"run {run.pk} {run.campaign.name if run.campaign else '-'} {p.state} priority {run.priority}: "
        f"{p.done} done, {p.failed} failed, {p.cancelled} cancelled, {p.left} left of {p.total}; {rate}"
        + (f"; error: {run.error}" if run.error else "")
    )
