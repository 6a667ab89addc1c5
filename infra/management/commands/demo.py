"""Set up and run the demo: keys, a reviewer, the prompt library, the demo campaigns (stills, then
clips) through the flow."""

from __future__ import annotations

import os
import time
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser

from review.models import Asset

DEMO_USER = "reviewer"
DEMO_REQUESTER = "marketing"  # a requester: asks for assets on /requests/ (the sample request is theirs)
# catalog stills, the product photo placed in three scenes (inpainting), then catalog clips
DEMO_CAMPAIGNS = ("demo-catalog", "demo-placement", "demo-clips")


class Command(BaseCommand):
    help = "Prepare the demo (idempotent) and run the demo campaigns (stills, then clips) on the embedded model."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--campaign",
            action="append",
            dest="campaigns",
            help=f"a campaign to run (repeatable; default: {', '.join(DEMO_CAMPAIGNS)})",
        )
        parser.add_argument("--address", default="http://127.0.0.1:8000")

    def handle(self, *args: Any, **options: Any) -> None:
        started = time.perf_counter()
        step = self._step
        step(1, "signing keys")
        call_command("signing_keys_create", stdout=self.stdout)
        step(2, "demo reviewer account")
        password = os.environ.get("GREENLIGHT_DEMO_PASSWORD", "greenlight-demo")
        user, created = get_user_model().objects.get_or_create(
            username=DEMO_USER, defaults={"is_staff": True, "is_superuser": True}
        )
        if created:
            user.set_password(password)
            user.save()
        user.groups.set(Group.objects.filter(name__in=["reviewer", "publisher", "admin"]))
        self.stdout.write(f"{'Created' if created else 'Kept'} user '{DEMO_USER}'")
        step(3, "prompt library")
        call_command("library_load", stdout=self.stdout)
        campaigns = options["campaigns"] or DEMO_CAMPAIGNS
        step(4, f"campaign{'s' if len(campaigns) > 1 else ''} {', '.join(campaigns)} through the Prefect flow")
        before = Asset.objects.count()
        for campaign in campaigns:
            call_command("campaign_run", campaign, stdout=self.stdout)
        self._sample_request(password)
        call_command("insight_refresh", stdout=self.stdout)  # the dashboard's figures for what was made
        made = Asset.objects.count() - before
        self.stdout.write(
            self.style.SUCCESS(
                f"\nDemo ready in {time.perf_counter() - started:.1f} s: {made} new asset(s), "
                f"{Asset.objects.count()} in total."
            )
        )
        self.stdout.write(f"Review dashboard: {options['address']}/   login: {DEMO_USER} / {password}")
        self.stdout.write(f"Asset requests:   {options['address']}/requests/   login: {DEMO_REQUESTER} / {password}")

    def _sample_request(self, password: str) -> None:
        """A requester account and, the first time, one sample request made through the same
        service as the request pages; its run is made here, before the dashboard starts."""
        from datetime import timedelta

        from django.test import override_settings
        from django.utils import timezone

        from review.requests.models import AssetRequest
        from review.requests.services import request_create

        user, created = get_user_model().objects.get_or_create(
            username=DEMO_REQUESTER, defaults={"email": "marketing@example.com"}
        )
        if created:
            user.set_password(password)
            user.save()
        user.groups.set(Group.objects.filter(name="requester"))
        if AssetRequest.objects.filter(requester=user).exists():
            self.stdout.write(f"Kept user '{DEMO_REQUESTER}' and their sample request")
            return
        with override_settings(GREENLIGHT_ORCHESTRATOR="inline"):  # made now, not by a thread that exits with us
            made = request_create(
                requester=user,
                template="catalog-scene",
                values={"colour": ["blue"], "product": ["bottle"], "scene": ["on a white studio background"]},
                variants_per_combination=3,
                renditions=["web", "thumb"],
                deadline=timezone.now() + timedelta(days=3),
                notes="Sample request: the bottle must read clearly blue on white.",
                title="Blue bottles for the newsletter (sample request)",
            )
        self.stdout.write(f"Created user '{DEMO_REQUESTER}' and sample request {made.pk} ({made.campaign.name})")

    def _step(self, number: int, title: str) -> None:
        self.stdout.write(self.style.MIGRATE_HEADING(f"[{number}/4] {title}"))
