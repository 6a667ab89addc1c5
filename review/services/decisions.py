"""Services: the only code that changes an asset's state.

Each state change runs in a transaction that locks the asset row and writes an audit event, so
the audit log and the asset table never disagree.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from prompt_library.models import Campaign
from prompt_library.selectors import variants_build
from review.errors import (
    AlreadyDecidedError,
    ClaimedByOtherError,
    PublishRefusedError,
    RegenerateRefusedError,
    ReviewError,
    RoleRequiredError,
    SegregationOfDutiesError,
)
from review.events import asset_move, audit_event_build
from review.intake import assets_register, manifest_record_build
from review.models import (
    QUEUE_ORDER,
    Asset,
    AuditEvent,
    ManifestRecord,
    Publication,
    ReviewDecision,
    queue_position,
)
from review.publishing import renditions_delete, renditions_write
from review.roles import PUBLISH, REQUEST, REVIEW, VIEW, role_require
from review.states import AssetState, transition_check
from review.webhooks import webhook_send

logger = logging.getLogger("greenlight.review")


def campaign_queue_sync(*, campaign: Campaign) -> int:
    """Re-copy a campaign's kind and deadline onto its assets' claim order (after it changed);
    returns how many assets moved in the queue."""
    priority, deadline = queue_position(campaign)
    return (
        Asset.objects.filter(campaign=campaign)
        .exclude(queue_priority=priority, queue_deadline=deadline)
        .update(queue_priority=priority, queue_deadline=deadline)
    )


LEASE = timedelta(minutes=10)


@transaction.atomic
def review_task_claim(*, reviewer: User, now: datetime | None = None, lease: timedelta = LEASE) -> Asset | None:
    """Give the reviewer the next asset to review, leased to them until `now + lease`.

    A reviewer who already holds a live claim gets that asset again. Otherwise the next free
    asset is locked with SKIP LOCKED, so concurrent reviewers never get the same one: requests
    with a deadline first (earliest deadline first), then oldest first; assets the reviewer
    already decided on and assets under another reviewer's live lease are skipped.
    """
    role_require(reviewer, REVIEW)
    now = now or timezone.now()
    held = (
        Asset.objects.select_for_update()
        .filter(state=AssetState.IN_REVIEW, claimed_by=reviewer, lease_expires_at__gt=now)
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
    audit_event_build(asset, "claimed", actor=reviewer, **detail).save()
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
    audit_event_build(locked, "released", actor=reviewer).save()
    return locked


def _decide(*, asset: Asset, reviewer: User, decision: str, to_state: str, reason: str, comment: str) -> Asset:
    role_require(reviewer, REVIEW)
    locked = Asset.objects.select_for_update(of=("self",)).select_related("campaign").get(pk=asset.pk)
    transition_check(serial=locked.pk, from_state=locked.state, to_state=to_state)
    if locked.campaign.requested_by_id == reviewer.pk:
        raise SegregationOfDutiesError(locked.pk, reviewer.get_username())
    if locked.lease_live() and locked.claimed_by_id != reviewer.pk:
        holder = Asset.objects.values_list("claimed_by__username", flat=True).get(pk=locked.pk)
        assert locked.lease_expires_at is not None
        raise ClaimedByOtherError(locked.pk, holder or "?", locked.lease_expires_at.strftime("%H:%M:%S UTC"))
    if ReviewDecision.objects.filter(asset=locked, reviewer=reviewer).exists():
        raise AlreadyDecidedError(locked.pk, reviewer.get_username())
    ReviewDecision.objects.create(asset=locked, reviewer=reviewer, decision=decision, reason=reason, comment=comment)
    # The campaign's quorum: the asset moves once enough distinct reviewers agree.
    needed = locked.campaign.approvals_required
    if decision == ReviewDecision.Decision.REJECT and locked.campaign.on_reject == Campaign.OnReject.REJECT:
        needed = 1
    # With a quorum of one, this decision is the vote that counts (and saves a query per decision).
    votes = 1 if needed == 1 else ReviewDecision.objects.filter(asset=locked, decision=decision).count()
    quorum = {"votes": votes, "needed": needed}
    if votes >= needed:
        event = asset_move(locked, to_state, decision, actor=reviewer, reason=reason, comment=comment, **quorum)
    else:
        event = audit_event_build(
            locked,
            decision,
            actor=reviewer,
            from_state=locked.state,
            to_state=locked.state,
            reason=reason,
            comment=comment,
            **quorum,
        )
    locked.claimed_by = None
    locked.lease_expires_at = None
    locked.save(update_fields=["state", "claimed_by", "lease_expires_at", "updated_at"])
    event.save()
    return locked


@transaction.atomic
def asset_approve(*, asset: Asset, reviewer: User, comment: str = "") -> Asset:
    """Approve an asset in review."""
    return _decide(
        asset=asset,
        reviewer=reviewer,
        decision=ReviewDecision.Decision.APPROVE,
        to_state=AssetState.APPROVED,
        reason="",
        comment=comment,
    )


@transaction.atomic
def asset_reject(*, asset: Asset, reviewer: User, reason: str, comment: str = "") -> Asset:
    """Reject an asset in review, with a reason code."""
    if reason not in ReviewDecision.Reason.values:
        raise ValueError(f"reason must be one of {', '.join(ReviewDecision.Reason.values)} (got {reason!r})")
    return _decide(
        asset=asset,
        reviewer=reviewer,
        decision=ReviewDecision.Decision.REJECT,
        to_state=AssetState.REJECTED,
        reason=reason,
        comment=comment,
    )


@dataclass(frozen=True)
class BulkResult:
    """What a bulk decision did: serials decided, and each refusal with its reason."""

    decided: list[int]
    refused: list[tuple[int, str]]


def assets_decide_bulk(
    *, serials: Sequence[int], reviewer: User, decision: str, reason: str = "", comment: str = ""
) -> BulkResult:
    """Approve or reject many assets; each is decided in its own transaction, so one refusal
    (already decided, claimed by someone else, not in review) does not undo the others."""
    if decision not in ReviewDecision.Decision.values:
        raise ValueError(f"decision must be one of {', '.join(ReviewDecision.Decision.values)} (got {decision!r})")
    role_require(reviewer, REVIEW)
    decided: list[int] = []
    refused: list[tuple[int, str]] = []
    assets = {a.pk: a for a in Asset.objects.filter(pk__in=serials)}
    for serial in dict.fromkeys(serials):
        asset = assets.get(serial)
        if asset is None:
            refused.append((serial, f"Asset {serial} does not exist"))
            continue
        try:
            if decision == ReviewDecision.Decision.APPROVE:
                asset_approve(asset=asset, reviewer=reviewer, comment=comment)
            else:
                asset_reject(asset=asset, reviewer=reviewer, reason=reason, comment=comment)
        except (ReviewError, ValueError) as exc:
            refused.append((serial, str(exc)))
        else:
            decided.append(serial)
    return BulkResult(decided=decided, refused=refused)


@transaction.atomic
def asset_publish(*, asset: Asset, user: User) -> list[Publication]:
    """Write the asset's signed renditions to the publish target; only approved assets.

    Each rendition's manifest goes into the manifest store in the same transaction.

    The refusal is here, not in the view, so nothing that calls this can publish an asset no
    person approved.
    """
    role_require(user, PUBLISH)
    locked = Asset.objects.select_for_update(of=("self",)).select_related("prompt_version", "campaign").get(pk=asset.pk)
    if locked.state != AssetState.APPROVED:
        raise PublishRefusedError(locked.pk, locked.state)
    written = renditions_write(locked)
    publications = Publication.objects.bulk_create(
        [
            Publication(
                asset=locked,
                rendition=w.name,
                path=w.path,
                mime=w.mime,
                width=w.width,
                height=w.height,
                sha256=w.sha256,
                size=w.size,
                published_by=user,
            )
            for w in written
        ]
    )
    ManifestRecord.objects.bulk_create([manifest_record_build(locked, w.manifest) for w in written])
    event = asset_move(locked, AssetState.PUBLISHED, "published", actor=user, renditions=[w.path for w in written])
    locked.save(update_fields=["state", "updated_at"])
    event.save()
    payload = {
        "event": "asset.published",
        "asset": locked.pk,
        "campaign": locked.campaign.name,
        "published_by": user.get_username(),
        "at": event.created_at.isoformat(),
        "renditions": [
            {"name": w.name, "path": w.path, "mime": w.mime, "width": w.width, "height": w.height, "sha256": w.sha256}
            for w in written
        ],
    }
    # Only once the publication is committed: a receiver must never hear of one that rolled back.
    transaction.on_commit(lambda: _webhook_notify(locked, payload))
    logger.info("published asset %s: %s", locked.pk, ", ".join(w.path for w in written))
    return publications


COMMENT_MAX = 2000


@transaction.atomic
def asset_comment(*, asset: Asset, user: User, text: str) -> AuditEvent:
    """A comment on an asset, kept in its history (the append-only audit log)."""
    role_require(user, VIEW)
    text = text.strip()
    if not text:
        raise ValueError("a comment needs some text")
    if len(text) > COMMENT_MAX:
        raise ValueError(f"a comment is at most {COMMENT_MAX} characters (got {len(text)})")
    locked = Asset.objects.select_for_update().get(pk=asset.pk)
    event = audit_event_build(
        locked, "commented", actor=user, from_state=locked.state, to_state=locked.state, comment=text
    )
    event.save()
    return event


@transaction.atomic
def asset_revoke(*, asset: Asset, user: User, reason: str) -> Asset:
    """Unpublish: delete the asset's published files and record who did it and why."""
    role_require(user, PUBLISH)
    if not reason.strip():
        raise ValueError("revoking needs a reason")
    locked = Asset.objects.select_for_update().get(pk=asset.pk)
    live = list(locked.publications.filter(revoked_at__isnull=True))
    paths = [p.path for p in live]
    event = asset_move(locked, AssetState.REVOKED, "revoked", actor=user, reason=reason.strip(), removed=paths)
    renditions_delete(paths)
    locked.publications.filter(pk__in=[p.pk for p in live]).update(revoked_at=timezone.now())
    locked.save(update_fields=["state", "updated_at"])
    event.save()
    logger.info("revoked asset %s: removed %s", locked.pk, ", ".join(paths) or "nothing")
    return locked


REGENERATE_MAX = 8  # new variants per request


@transaction.atomic
def asset_regenerate(*, asset: Asset, user: User, count: int, variables: dict[str, str] | None = None) -> list[int]:
    """Ask for `count` new variants of a rejected asset: new seeds, and optionally edited
    variable values. They are registered as pending assets linked to the original (the caller
    hands their serials to the orchestrator) and the request is recorded in its history.

    Seeds follow from the asset's serial and how many variants were asked for before, so the
    same request made twice does not repeat an image, and a run can be reproduced.
    """
    if not (user.has_perm(REVIEW) or user.has_perm(REQUEST)):
        raise RoleRequiredError(user.get_username(), REVIEW, "reviewer or requester")
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= REGENERATE_MAX:
        raise ValueError(f"count must be 1 to {REGENERATE_MAX} new variants (got {count!r})")
    locked = Asset.objects.select_for_update(of=("self",)).select_related("campaign", "prompt_version").get(pk=asset.pk)
    if locked.state != AssetState.REJECTED:
        raise RegenerateRefusedError(locked.pk, locked.state)
    values = {**locked.variables, **(variables or {})}
    earlier = Asset.objects.filter(regenerated_from=locked).count()
    seeds = [_regeneration_seed(locked.pk, earlier + i) for i in range(count)]
    variants = variants_build(campaign=locked.campaign.name, version=locked.prompt_version, values=values, seeds=seeds)
    refs = assets_register(variants=variants, regenerated_from=locked)
    serials = [refs[v.key].serial for v in variants]
    changed = {k: v for k, v in values.items() if locked.variables.get(k) != v}
    audit_event_build(
        locked,
        "regeneration_requested",
        actor=user,
        from_state=locked.state,
        to_state=locked.state,
        serials=serials,
        seeds=seeds,
        variables=changed,
    ).save()
    return serials


def _regeneration_seed(serial: int, index: int) -> int:
    """The `index`-th regeneration seed of asset `serial`: 31 bits of a hash of both."""
    digest = hashlib.sha256(f"greenlight-regenerate:{serial}:{index}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def _webhook_notify(asset: Asset, payload: dict[str, Any]) -> None:
    """Send the publish webhook and record the outcome in the asset's history."""
    if not settings.GREENLIGHT_PUBLISH_WEBHOOK_URL:
        return
    delivered, detail = webhook_send(payload)
    if not delivered:
        logger.warning("publish webhook for asset %s failed: %s", asset.pk, detail)
    action = "webhook_delivered" if delivered else "webhook_failed"
    AuditEvent.objects.create(
        asset=asset, action=action, from_state=asset.state, to_state=asset.state, detail={"result": detail}
    )
