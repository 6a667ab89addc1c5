"""Notifications: what a requester and the reviewers are told about requests, by e-mail (Django's
e-mail backend: the console in development, SMTP in production) and in the dashboard's inbox.

Each notification happens once (a unique key per recipient), is recorded in the audit log in
the same transaction as its row, and is e-mailed after that commits; a failed e-mail is kept on
the row (`email_error`), never raised into the request that caused it.

- the requester: when a run of the request has finished, when every asset has a decision, and
  when the deadline passed with assets still undecided (`requests_deadlines_check`, run on a
  schedule by `manage.py requests_check_deadlines`, never on a page view);
- the reviewers: when a request with a deadline arrives.
"""

from __future__ import annotations

import logging
from datetime import datetime

from django.conf import settings
from django.contrib.auth.models import User
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Count, Q
from django.urls import reverse
from django.utils import timezone

from review.audit import AuditAction
from review.events import audit_event_build
from review.models import Asset, Run
from review.requests.models import AssetRequest, Notification
from review.states import AssetState

logger = logging.getLogger("greenlight.notifications")

UNDECIDED = (AssetState.PENDING, AssetState.GENERATED, AssetState.IN_REVIEW)
DECIDED = (AssetState.APPROVED, AssetState.REJECTED, AssetState.PUBLISHED, AssetState.REVOKED)
Kind = Notification.Kind


def notify(
    *,
    recipient: User,
    kind: str,
    key: str,
    subject: str,
    body: str,
    url: str = "",
    request: AssetRequest | None = None,
) -> Notification | None:
    """Tell `recipient` once (per `key`): the inbox row and its audit event now, the e-mail once
    they commit. Returns the new notification, or None when this one was already sent."""
    with transaction.atomic():
        notification, created = Notification.objects.get_or_create(
            recipient=recipient,
            key=key,
            defaults={"kind": kind, "subject": subject[:200], "body": body, "url": url, "request": request},
        )
        if not created:
            return None
        audit_event_build(
            None,
            AuditAction.NOTIFIED,
            to_state=kind,
            recipient=recipient.get_username(),
            notification=notification.pk,
            request=request.pk if request else None,
            subject=subject[:200],
        ).save()
        transaction.on_commit(lambda: notification_email(notification=notification))
    return notification


def notification_email(*, notification: Notification) -> None:
    """E-mail a notification through Django's backend and record the outcome on its row."""
    recipient = notification.recipient
    if not recipient.email:
        Notification.objects.filter(pk=notification.pk).update(email_error="no e-mail address on the account")
        return
    link = f"\n\n{settings.GREENLIGHT_SITE_URL.rstrip('/')}{notification.url}" if notification.url else ""
    try:
        send_mail(
            subject=f"[Greenlight] {notification.subject}",
            message=notification.body + link,
            from_email=settings.DEFAULT_FROM_EMAIL,
            recipient_list=[recipient.email],
        )
    except Exception as exc:  # an SMTP server is another system: record its failure, never raise it here
        logger.warning("notification %s: e-mail to %s failed: %s", notification.pk, recipient.email, exc)
        Notification.objects.filter(pk=notification.pk).update(email_error=f"{type(exc).__name__}: {exc}"[:2000])
        return
    Notification.objects.filter(pk=notification.pk).update(emailed_at=timezone.now())


def notification_read(*, notification: Notification, user: User) -> Notification:
    """Mark one of the user's notifications read (someone else's is left alone)."""
    if notification.recipient_id == user.pk and notification.read_at is None:
        notification.read_at = timezone.now()
        notification.save(update_fields=["read_at"])
    return notification


def notifications_read_all(*, user: User) -> int:
    """Mark every unread notification of the user read; returns how many."""
    return Notification.objects.filter(recipient=user, read_at=None).update(read_at=timezone.now())


def _request_url(request: AssetRequest) -> str:
    return reverse("review:request", args=[request.pk])


def request_arrived_notify(*, request: AssetRequest) -> list[Notification]:
    """A request with a deadline arrived: tell every active reviewer (not its requester)."""
    if request.deadline is None:
        return []
    reviewers = (
        User.objects.filter(is_active=True)
        .filter(Q(groups__name__in=("reviewer", "admin")) | Q(is_superuser=True))
        .exclude(pk=request.requester_id)
        .distinct()
        .order_by("pk")
    )
    sent = []
    for reviewer in reviewers:
        made = notify(
            recipient=reviewer,
            kind=Kind.REQUEST_ARRIVED,
            key=f"request:{request.pk}:arrived",
            subject=f"New request due {request.deadline:%Y-%m-%d %H:%M} UTC: {request.label}",
            body=(
                f"{request.requester.get_username()} asked for assets ({request.label}), due "
                f"{request.deadline:%Y-%m-%d %H:%M} UTC. Its assets come first in the review queue."
                + (f"\n\nNotes for reviewers: {request.notes}" if request.notes else "")
            ),
            url=_request_url(request),
            request=request,
        )
        if made is not None:
            sent.append(made)
    return sent


def request_events_check(*, request: AssetRequest, now: datetime | None = None) -> list[Notification]:
    """Tell the requester what has happened to the request since the last check: a run finished,
    every asset decided, the deadline passed with assets undecided (each once)."""
    if request.cancelled_at is not None:
        return []
    now = now or timezone.now()
    counts = Asset.objects.filter(campaign_id=request.campaign_id).aggregate(
        total=Count("id"),
        undecided=Count("id", filter=Q(state__in=UNDECIDED)),
        decided=Count("id", filter=Q(state__in=DECIDED)),
        approved=Count("id", filter=Q(state__in=(AssetState.APPROVED, AssetState.PUBLISHED))),
        failed=Count("id", filter=Q(state=AssetState.FAILED)),
    )
    runs = list(Run.objects.filter(campaign_id=request.campaign_id).order_by("-created_at", "-id")[:1])
    run = runs[0] if runs else None
    sent: list[Notification | None] = []
    url = _request_url(request)
    requester = request.requester
    if run is not None and not run.is_open and run.state != Run.State.CANCELLED:
        sent.append(
            notify(
                recipient=requester,
                kind=Kind.RUN_FINISHED,
                key=f"request:{request.pk}:run-finished:{run.pk}",
                subject=f"Your request is generated: {request.label}",
                body=(
                    f"Generation of {request.label} has finished: {run.done} made, {run.failed} failed. "
                    "They are in the review queue now."
                ),
                url=url,
                request=request,
            )
        )
    settled = counts["total"] > 0 and counts["undecided"] == 0 and (run is None or not run.is_open)
    if settled and counts["decided"]:
        sent.append(
            notify(
                recipient=requester,
                kind=Kind.ALL_DECIDED,
                key=f"request:{request.pk}:all-decided:{counts['decided']}",
                subject=f"Every asset of your request has a decision: {request.label}",
                body=(
                    f"All {counts['decided']} decided assets of {request.label} are reviewed: "
                    f"{counts['approved']} approved. Download the approved files from the request's page."
                ),
                url=url,
                request=request,
            )
        )
    if request.deadline is not None and request.deadline <= now and counts["undecided"]:
        sent.append(
            notify(
                recipient=requester,
                kind=Kind.DEADLINE_PASSED,
                key=f"request:{request.pk}:deadline",
                subject=f"Deadline passed with {counts['undecided']} asset(s) undecided: {request.label}",
                body=(
                    f"The deadline of {request.label} ({request.deadline:%Y-%m-%d %H:%M} UTC) has passed; "
                    f"{counts['undecided']} of its {counts['total']} assets have no decision yet."
                ),
                url=url,
                request=request,
            )
        )
    return [n for n in sent if n is not None]


def requests_deadlines_check(*, now: datetime | None = None) -> list[Notification]:
    """Check every open request (the scheduled job behind `manage.py requests_check_deadlines`)."""
    sent: list[Notification] = []
    requests = AssetRequest.objects.filter(cancelled_at=None).select_related("campaign", "requester").order_by("pk")
    for request in requests.iterator(chunk_size=200):
        sent += request_events_check(request=request, now=now)
    return sent
