"""Decisions: a reviewer approves or rejects an asset in review, one at a time or many at once;
the asset moves once the campaign's quorum of distinct reviewers agrees."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from django.contrib.auth.models import User
from django.db import transaction

from prompt_library.models import Campaign
from review.audit import AuditAction
from review.errors import (
    AlreadyDecidedError,
    ClaimedByOtherError,
    ReviewError,
    ReviewInputError,
    SegregationOfDutiesError,
)
from review.events import asset_move, audit_event_unmoved
from review.models import Asset, ReviewDecision
from review.roles import REVIEW, role_require
from review.states import AssetState, transition_check

# How each decision is recorded in the audit log.
DECISION_ACTION = {
    ReviewDecision.Decision.APPROVE: AuditAction.APPROVED,
    ReviewDecision.Decision.REJECT: AuditAction.REJECTED,
}


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
    action = DECISION_ACTION[ReviewDecision.Decision(decision)]
    if votes >= needed:
        event = asset_move(locked, to_state, action, actor=reviewer, reason=reason, comment=comment, **quorum)
    else:
        event = audit_event_unmoved(locked, action, actor=reviewer, reason=reason, comment=comment, **quorum)
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
    _reason_check(reason)
    return _decide(
        asset=asset,
        reviewer=reviewer,
        decision=ReviewDecision.Decision.REJECT,
        to_state=AssetState.REJECTED,
        reason=reason,
        comment=comment,
    )


def _reason_check(reason: str) -> None:
    if reason not in ReviewDecision.Reason.values:
        raise ReviewInputError("reason", reason, f"must be one of {', '.join(ReviewDecision.Reason.values)}")


# A flagged asset is approved only by a person on its own page, never with a batch of others.
FLAGGED_BULK_REFUSAL = (
    "Asset {serial} was flagged unsafe by the safety classifier (score {score:.2f}): approve it on its own page"
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
        raise ReviewInputError("decision", decision, f"must be one of {', '.join(ReviewDecision.Decision.values)}")
    if decision == ReviewDecision.Decision.REJECT:
        _reason_check(reason)  # once, rather than once per asset
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
            if decision == ReviewDecision.Decision.APPROVE and asset.safety_flagged:
                refused.append((serial, FLAGGED_BULK_REFUSAL.format(serial=serial, score=asset.safety_score or 0.0)))
                continue
            if decision == ReviewDecision.Decision.APPROVE:
                asset_approve(asset=asset, reviewer=reviewer, comment=comment)
            else:
                asset_reject(asset=asset, reviewer=reviewer, reason=reason, comment=comment)
        except ReviewError as exc:
            refused.append((serial, str(exc)))
        else:
            decided.append(serial)
    return BulkResult(decided=decided, refused=refused)
