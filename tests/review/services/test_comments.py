"""Comments: kept in an asset's history, refused when empty or too long."""

from __future__ import annotations

import pytest

from review.errors import ReviewInputError, RoleRequiredError
from review.models import Asset, AuditEvent
from review.services import COMMENT_MAX, asset_comment
from review.states import AssetState
from tests.factories import AssetFactory, make_user

pytestmark = pytest.mark.django_db


def test_comments_go_into_the_history_without_changing_the_state(reviewable_assets: list[Asset]) -> None:
    asset = reviewable_assets[0]
    with pytest.raises(ReviewInputError, match="needs some text") as refused:
        asset_comment(asset=asset, user=make_user(), text="   ")
    assert (refused.value.field, refused.value.value) == ("comment", "   ")
    event = asset_comment(asset=asset, user=make_user(), text="Logo looks stretched")
    assert (event.action, event.detail["comment"], event.to_state) == ("commented", "Logo looks stretched", "in_review")
    assert Asset.objects.get(pk=asset.pk).state == AssetState.IN_REVIEW


def test_a_comment_longer_than_the_limit_is_refused_naming_its_length() -> None:
    asset = AssetFactory.create()
    with pytest.raises(ReviewInputError, match=f"comment length must be at most {COMMENT_MAX} characters") as refused:
        asset_comment(asset=asset, user=make_user(), text="x" * (COMMENT_MAX + 1))
    assert (refused.value.field, refused.value.value) == ("comment length", COMMENT_MAX + 1)
    assert asset_comment(asset=asset, user=make_user(), text=" " + "x" * COMMENT_MAX + " ").detail["comment"] == (
        "x" * COMMENT_MAX
    )
    assert AuditEvent.objects.filter(asset=asset).count() == 1


def test_a_user_without_a_role_may_not_comment() -> None:
    asset = AssetFactory.create()
    with pytest.raises(RoleRequiredError):
        asset_comment(asset=asset, user=make_user(roles=()), text="hello")
    assert not AuditEvent.objects.filter(asset=asset).exists()
