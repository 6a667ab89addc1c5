"""Claims on review tasks: a reviewer leases the next asset to review, or gives it back; and the
claim order follows a campaign's kind and deadline when they change."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from prompt_library.models import Campaign
from review.audit import AuditAction
from review.events import audit_event_build
from review.models import QUEUE_ORDER, Asset, queue_position
from review.roles import REVIEW, role_require
from review.states import AssetState

LEASE = timedelta(minutes=10)


def campaign_queue_sync(*, campaign: Campaign) -> int:
    """Re-copy a campaign's kind and deadline onto its assets' claim order (after it changed);
    returns how many assets moved in the queue."""
    priority, deadline = queue_position(campaign)
    return (
        Asset.objects.filter(campaign=campaign)
        .exclude(queue_priority=priority, queue_deadline=deadline)
        .update(queue_priority=priority, queue_deadline=deadline)
    )


@transaction.atomic
def review_task_claim(*, reviewer: User, now: datetime | None = None, lease: timedelta = LEASE) -> Asset | None:
    """Give the reviewer the next asset to review, leased to them until `now + lease`.

    A reviewer who already holds a live claim gets that asset again. Otherwise the next free
    asset is locked with SKIP LOCKED, so concurrent reviewers never get the same one: requests
    with a deadline first (earliest deadline first), then oldest first. Skipped, in the same
    query: assets under another reviewer's live lease, and every asset the reviewer may not
    decide on: those they already decided on, and those of a campaign they requested
    (segregation of duties). Leasing such an asset would hold it from every reviewer who may
    decide on it until the lease ran out.
    """
    role_require(reviewer, REVIEW)
    now = now or timezone.now()
    held = (
        Asset.objects.select_for_update()
        .filter(state=AssetState.IN_REVIEW, claimed_by=reviewer, lease_expires_at__gt=now)
        .exclude(campaign__requested_by=reviewer)
        .order_by("lease_expires_at")
        .first()
    )
    if held is not None:
        return held
    asset = (
        Asset.objects.select_for_update(skip_locked=True, of=("self",))
        .filter(state=AssetState.IN_REVIEW)
        .filter(Q(claimed_by__isnull=True) | Q(lease_expires_at__lte=now))
        .exclude(decisions__reviewer=reviewer)
        .exclude(campaign__requested_by=reviewer)
        .order_by(*QUEUE_ORDER)
        .first()
    )
    if asset is None:
        return None
    previous = asset.claimed_by_id
    asset.claimed_by = reviewer
    asset.lease_expires_at = now + lease
    asset.save(update_fields=["claimed_by", "lease_expires_at", "updated_at"])
    detail: dict[str, Any] = {"lease_expires_at": asset.lease_expires_at.isoformat()}
    if previous is not None:
        detail["lease_lapsed_from_user_id"] = previous
    audit_event_build(asset, AuditAction.CLAIMED, actor=reviewer, **detail).save()
    return asset


@transaction.atomic
def review_task_release(*, asset: Asset, reviewer: User) -> Asset:
    """Give a claimed asset back to the queue before its lease ends."""
    locked = Asset.objects.select_for_update().get(pk=asset.pk)
    if locked.claimed_by_id != reviewer.pk:
        return locked
    locked.claimed_by = None
    locked.lease_expires_at = None
    locked.save(update_fields=["claimed_by", "lease_expires_at", "updated_at"])
    audit_event_build(locked, AuditAction.RELEASED, actor=reviewer).save()
    return locked
