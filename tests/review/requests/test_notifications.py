"""Notifications: the requester hears when the run finished, when every asset has a decision and
when the deadline passed with assets undecided; reviewers hear when a request with a deadline
arrives. Each once, by e-mail and in the inbox, each in the audit log."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import timedelta
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core import mail
from django.core.management import call_command
from django.utils import timezone

from review.audit import AuditAction
from review.models import Asset, AuditEvent
from review.notifications import requests_deadlines_check
from review.requests.models import AssetRequest, Notification
from review.requests.services import request_create
from review.services import asset_approve, asset_reject
from tests.factories import make_user
from tests.review.requests.conftest import run_made

pytestmark = pytest.mark.django_db
Capture = Callable[..., AbstractContextManager[Any]]
Kind = Notification.Kind


def test_reviewers_hear_of_a_request_with_a_deadline_and_the_requester_does_not(
    library: Path, requester: User, reviewer: User, django_capture_on_commit_callbacks: Capture
) -> None:
    made_user = make_user(username="admin1", roles=("admin",), email="")
    with django_capture_on_commit_callbacks(execute=True):
        made = request_create(
            requester=requester,
            template="catalog-hero",
            values={"product": ["mug"], "scene": ["a table"], "style": ["studio light"]},
            variants_per_combination=1,
            renditions=["web"],
            deadline=timezone.now() + timedelta(hours=5),
            notes="Hero for Monday",
        )
    arrived = Notification.objects.filter(kind=Kind.REQUEST_ARRIVED, request=made)
    assert set(arrived.values_list("recipient__username", flat=True)) == {"vera", "admin1"}
    assert [m.to for m in mail.outbox] == [["vera@example.com"]]  # admin1 has no address: kept, not e-mailed
    assert "Hero for Monday" in mail.outbox[0].body and f"/requests/{made.pk}/" in mail.outbox[0].body
    assert arrived.get(recipient=made_user).email_error == "no e-mail address on the account"
    assert AuditEvent.objects.filter(action=AuditAction.NOTIFIED).count() == 2


def test_the_requester_hears_when_the_run_finished_and_when_every_asset_is_decided(
    library: Path,
    requester: User,
    reviewer: User,
    submitted: list[int],
    django_capture_on_commit_callbacks: Capture,
) -> None:
    made = request_create(
        requester=requester,
        template="catalog-hero",
        values={"product": ["mug"], "scene": ["a table"], "style": ["studio light"]},
        variants_per_combination=2,
        renditions=["web"],
        deadline=None,
        notes="",
    )
    with django_capture_on_commit_callbacks(execute=True):
        run_made(submitted[-1])
    finished = Notification.objects.get(recipient=requester, kind=Kind.RUN_FINISHED)
    assert "2 made, 0 failed" in finished.body
    first, second = Asset.objects.filter(campaign=made.campaign).order_by("id")
    with django_capture_on_commit_callbacks(execute=True):
        asset_approve(asset=first, reviewer=reviewer)
    assert not Notification.objects.filter(kind=Kind.ALL_DECIDED).exists()  # one still in review
    with django_capture_on_commit_callbacks(execute=True):
        asset_reject(asset=second, reviewer=reviewer, reason="off_brand")
    decided = Notification.objects.get(recipient=requester, kind=Kind.ALL_DECIDED)
    assert "1 approved" in decided.body
    assert {m.subject for m in mail.outbox} >= {f"[Greenlight] {finished.subject}", f"[Greenlight] {decided.subject}"}
    # Checking again tells nobody anything twice.
    assert requests_deadlines_check() == []
    assert Notification.objects.filter(recipient=requester).count() == 2


def test_a_passed_deadline_with_undecided_assets_notifies_the_requester_once(
    library: Path, requester: User, django_capture_on_commit_callbacks: Capture
) -> None:
    deadline = timezone.now() + timedelta(hours=1)
    made = request_create(
        requester=requester,
        template="catalog-hero",
        values={"product": ["mug"], "scene": ["a table"], "style": ["studio light"]},
        variants_per_combination=2,
        renditions=["web"],
        deadline=deadline,
        notes="",
    )
    assert requests_deadlines_check(now=deadline - timedelta(minutes=1)) == []
    out = StringIO()
    mail.outbox.clear()
    call_command("requests_check_deadlines", stdout=out)  # the clock has not reached it yet
    assert "nothing new" in out.getvalue()
    with django_capture_on_commit_callbacks(execute=True):
        (sent,) = requests_deadlines_check(now=deadline + timedelta(minutes=1))
    assert sent.kind == Kind.DEADLINE_PASSED and sent.recipient == requester and sent.request == made
    assert "2 of its 2 assets have no decision" in sent.body
    assert [m.to for m in mail.outbox] == [["maria@example.com"]]
    event = AuditEvent.objects.get(action=AuditAction.NOTIFIED, detail__notification=sent.pk)
    assert event.detail["recipient"] == "maria" and event.to_state == Kind.DEADLINE_PASSED
    assert requests_deadlines_check(now=deadline + timedelta(hours=2)) == []


def test_a_cancelled_request_tells_nobody_about_its_deadline(library: Path, requester: User) -> None:
    from review.requests.services import request_cancel

    deadline = timezone.now() + timedelta(hours=1)
    made = request_create(
        requester=requester,
        template="catalog-hero",
        values={"product": ["mug"], "scene": ["a table"], "style": ["studio light"]},
        variants_per_combination=1,
        renditions=["web"],
        deadline=deadline,
        notes="",
    )
    request_cancel(request=made, user=requester)
    assert requests_deadlines_check(now=deadline + timedelta(days=1)) == []
    assert not AssetRequest.objects.get(pk=made.pk).notifications.filter(kind=Kind.DEADLINE_PASSED).exists()
