"""A campaign's approval quorum: distinct approvers, and what a rejection does."""

from __future__ import annotations

import pytest

from review.errors import AlreadyDecidedError, PublishRefusedError
from review.models import Asset, AuditEvent
from review.services import asset_approve, asset_publish, asset_reject
from review.states import AssetState
from tests.factories import AssetFactory, CampaignFactory, make_user

pytestmark = pytest.mark.django_db


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
    events = list(AuditEvent.objects.filter(asset=asset, action="approve").values_list("to_state", "detail"))
    assert [(to, d["votes"], d["needed"]) for to, d in events] == [("in_review", 1, 2), ("approved", 2, 2)]


def test_one_rejection_rejects_when_the_policy_says_so() -> None:
    asset = paid_media_asset("reject")
    asset_approve(asset=asset, reviewer=make_user())
    assert asset_reject(asset=asset, reviewer=make_user(), reason="off_brand").state == AssetState.REJECTED


def test_with_return_a_rejection_is_one_vote_and_the_quorum_rejects() -> None:
    asset = paid_media_asset("return")
    assert asset_reject(asset=asset, reviewer=make_user(), reason="off_brand").state == AssetState.IN_REVIEW
    assert asset_reject(asset=asset, reviewer=make_user(), reason="text_error").state == AssetState.REJECTED
