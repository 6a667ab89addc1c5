"""Decisions: approving and rejecting, the refusals, a campaign's approval quorum (distinct
approvers, and what a rejection does), and deciding many assets at once."""

from __future__ import annotations

import pytest

from review.audit import AuditAction
from review.errors import (
    AlreadyDecidedError,
    IllegalTransitionError,
    PublishRefusedError,
    ReviewInputError,
    RoleRequiredError,
    SegregationOfDutiesError,
)
from review.models import Asset, AuditEvent, ReviewDecision
from review.services import asset_approve, asset_publish, asset_reject, assets_decide_bulk
from review.states import AssetState
from tests.factories import AssetFactory, CampaignFactory, make_user

pytestmark = pytest.mark.django_db


def test_approve_moves_to_approved_and_records_decision_and_event(reviewable_assets: list[Asset]) -> None:
    reviewer = make_user()
    asset = asset_approve(asset=reviewable_assets[0], reviewer=reviewer, comment="on brand")
    assert asset.state == AssetState.APPROVED
    event = AuditEvent.objects.filter(asset=asset).latest("id")
    assert (event.action, event.actor, event.from_state, event.to_state) == (
        "approved",
        reviewer,
        "in_review",
        "approved",
    )
    assert event.detail["comment"] == "on brand"


def test_reject_needs_a_known_reason(reviewable_assets: list[Asset]) -> None:
    with pytest.raises(ReviewInputError, match="reason must be one of") as refused:
        asset_reject(asset=reviewable_assets[0], reviewer=make_user(), reason="ugly")
    assert (refused.value.field, refused.value.value) == ("reason", "ugly")
    assert "(got 'ugly')" in str(refused.value)
    asset = asset_reject(asset=reviewable_assets[0], reviewer=make_user(), reason="visual_artifact", comment="smudge")
    assert asset.state == AssetState.REJECTED
    assert asset.decisions.get().reason == "visual_artifact"


def test_a_decided_asset_cannot_be_decided_again(reviewable_assets: list[Asset]) -> None:
    reviewer = make_user()
    asset_approve(asset=reviewable_assets[0], reviewer=reviewer)
    with pytest.raises(IllegalTransitionError):
        asset_reject(asset=reviewable_assets[0], reviewer=make_user(), reason="other")
    assert Asset.objects.get(pk=reviewable_assets[0].pk).state == AssetState.APPROVED


def test_a_reviewer_cannot_decide_twice_on_one_asset(reviewable_assets: list[Asset]) -> None:
    reviewer = make_user()
    asset = reviewable_assets[0]
    ReviewDecision.objects.create(asset=asset, reviewer=reviewer, decision="approve")
    with pytest.raises(AlreadyDecidedError):
        asset_approve(asset=asset, reviewer=reviewer)


def test_services_refuse_users_without_the_role_whatever_calls_them(reviewable_assets: list[Asset]) -> None:
    asset = reviewable_assets[0]
    with pytest.raises(RoleRequiredError, match="needs the reviewer role"):
        asset_approve(asset=asset, reviewer=make_user(roles=("publisher",)))
    approved = asset_approve(asset=asset, reviewer=make_user(roles=("reviewer",)))
    with pytest.raises(RoleRequiredError, match="needs the publisher role"):
        asset_publish(asset=approved, user=make_user(roles=("reviewer",)))
    assert Asset.objects.get(pk=asset.pk).state == AssetState.APPROVED


def test_a_requester_cannot_approve_assets_of_their_own_request(reviewable_assets: list[Asset]) -> None:
    asset = reviewable_assets[0]
    requester = make_user(roles=("reviewer", "requester"))
    asset.campaign.requested_by = requester
    asset.campaign.save()
    with pytest.raises(SegregationOfDutiesError, match="cannot also decide on it"):
        asset_approve(asset=asset, reviewer=requester)
    assert asset_approve(asset=asset, reviewer=make_user()).state == AssetState.APPROVED


# --- The quorum -------------------------------------------------------------------------


def paid_media_asset(on_reject: str = "reject") -> Asset:
    asset: Asset = AssetFactory.create(campaign=CampaignFactory.create(approvals_required=2, on_reject=on_reject))
    return asset


def test_two_distinct_approvers_are_needed_before_an_asset_is_approved_or_published() -> None:
    asset = paid_media_asset()
    first, second = make_user(), make_user()
    asset_approve(asset=asset, reviewer=first)
    assert Asset.objects.get(pk=asset.pk).state == AssetState.IN_REVIEW
    with pytest.raises(AlreadyDecidedError):
        asset_approve(asset=asset, reviewer=first)
    with pytest.raises(PublishRefusedError):
        asset_publish(asset=asset, user=make_user())
    assert asset_approve(asset=asset, reviewer=second).state == AssetState.APPROVED
    events = list(AuditEvent.objects.filter(asset=asset, action=AuditAction.APPROVED).values_list("to_state", "detail"))
    assert [(to, d["votes"], d["needed"]) for to, d in events] == [("in_review", 1, 2), ("approved", 2, 2)]


def test_one_rejection_rejects_when_the_policy_says_so() -> None:
    asset = paid_media_asset("reject")
    asset_approve(asset=asset, reviewer=make_user())
    assert asset_reject(asset=asset, reviewer=make_user(), reason="off_brand").state == AssetState.REJECTED


def test_with_return_a_rejection_is_one_vote_and_the_quorum_rejects() -> None:
    asset = paid_media_asset("return")
    assert asset_reject(asset=asset, reviewer=make_user(), reason="off_brand").state == AssetState.IN_REVIEW
    assert asset_reject(asset=asset, reviewer=make_user(), reason="text_error").state == AssetState.REJECTED


# --- In bulk ----------------------------------------------------------------------------


def test_a_bulk_decision_decides_each_asset_and_reports_each_refusal() -> None:
    a1, a2, a3 = AssetFactory.create_batch(3)
    reviewer = make_user(username="rita")
    asset_approve(asset=a3, reviewer=reviewer)

    result = assets_decide_bulk(serials=[a1.pk, a2.pk, a3.pk, a1.pk, 999999], reviewer=reviewer, decision="approve")

    assert result.decided == [a1.pk, a2.pk]
    assert [serial for serial, _ in result.refused] == [a3.pk, 999999]
    assert "is approved: it cannot become approved" in result.refused[0][1]
    assert result.refused[1][1] == "Asset 999999 does not exist"
    assert set(Asset.objects.filter(pk__in=[a1.pk, a2.pk]).values_list("state", flat=True)) == {AssetState.APPROVED}


@pytest.mark.parametrize(
    ("decision", "reason", "field"),
    [("maybe", "", "decision"), ("reject", "", "reason"), ("reject", "ugly", "reason")],
)
def test_a_bulk_decision_with_a_bad_value_is_refused_before_deciding_anything(
    decision: str, reason: str, field: str
) -> None:
    assets = AssetFactory.create_batch(2)

    with pytest.raises(ReviewInputError, match=f"^{field} must be one of") as refused:
        assets_decide_bulk(serials=[a.pk for a in assets], reviewer=make_user(), decision=decision, reason=reason)

    assert (refused.value.field, refused.value.value) == (field, decision if field == "decision" else reason)
    assert not ReviewDecision.objects.exists()
    assert set(Asset.objects.values_list("state", flat=True)) == {AssetState.IN_REVIEW}
