"""Selectors: the queue's tab counts, an asset's siblings, and the audit log's filter."""

from __future__ import annotations

import pytest

from review.audit import AuditAction
from review.models import AuditEvent
from review.selectors import asset_siblings, asset_state_counts, audit_event_list
from review.states import AssetState
from tests.factories import AssetFactory, CampaignFactory, make_user

pytestmark = pytest.mark.django_db


def test_tab_counts_stop_at_the_cap_and_say_so() -> None:
    AssetFactory.create_batch(5, state=AssetState.IN_REVIEW)
    AssetFactory.create_batch(2, state=AssetState.APPROVED)
    counts = {c.state: c for c in asset_state_counts(cap=3)}
    assert (counts["in_review"].n, counts["in_review"].capped, counts["in_review"].label) == (3, True, "3+")
    assert (counts["approved"].n, counts["approved"].capped, counts["approved"].label) == (2, False, "2")
    assert counts["published"].label == "0"


def test_an_assets_siblings_are_the_other_seeds_of_its_prompt_and_itself() -> None:
    campaign = CampaignFactory.create()
    asset, other_seed = AssetFactory.create_batch(2, campaign=campaign)
    AssetFactory.create(campaign=campaign, prompt="a mug on a beach")  # another prompt
    AssetFactory.create(prompt=asset.prompt)  # the same words, another template version
    assert [a.pk for a in asset_siblings(asset=asset)] == [asset.pk, other_seed.pk]


def test_the_audit_filter_finds_an_action_under_every_spelling_it_was_recorded_with() -> None:
    asset = AssetFactory.create()
    rita = make_user(username="rita")
    old = AuditEvent.objects.create(asset=asset, actor=rita, action="reject")
    new = AuditEvent.objects.create(asset=asset, actor=rita, action=AuditAction.REJECTED)
    AuditEvent.objects.create(asset=asset, actor=rita, action=AuditAction.APPROVED)
    assert [e.pk for e in audit_event_list(action="rejected")] == [new.pk, old.pk]
    assert [e.pk for e in audit_event_list(action="reject")] == [new.pk, old.pk]
    assert [e.action_name for e in audit_event_list(action="rejected")] == ["rejected", "rejected"]
