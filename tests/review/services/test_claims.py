"""Claiming review tasks: leases, SKIP LOCKED, priorities and expiry."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from review.audit import AuditAction
from review.errors import ClaimedByOtherError
from review.models import Asset, AuditEvent
from review.services import LEASE, asset_approve, review_task_claim, review_task_release
from tests.factories import AssetFactory, CampaignFactory, make_user


def queue(n: int) -> list[Asset]:
    """`n` assets in review, created oldest first."""
    return [AssetFactory.create() for _ in range(n)]


@pytest.mark.django_db
def test_a_reviewer_gets_the_oldest_free_asset_and_keeps_it_until_deciding() -> None:
    first, second, _ = queue(3)
    rita, sam = make_user(), make_user()
    claimed = review_task_claim(reviewer=rita)
    assert claimed is not None and claimed.pk == first.pk
    assert claimed.lease_expires_at is not None and claimed.lease_expires_at > timezone.now() + LEASE * 0.9
    again = review_task_claim(reviewer=rita)
    assert again is not None and again.pk == first.pk  # no second claim while one is live
    other = review_task_claim(reviewer=sam)
    assert other is not None and other.pk == second.pk
    asset_approve(asset=first, reviewer=rita)
    following = review_task_claim(reviewer=rita)
    assert following is not None and following.pk not in (first.pk, second.pk)
    assert AuditEvent.objects.filter(asset=first, action=AuditAction.CLAIMED, actor=rita).exists()


@pytest.mark.django_db
def test_requests_with_a_deadline_come_before_campaign_assets() -> None:
    queue(2)
    soon = CampaignFactory.create(kind="request", deadline=timezone.now() + timedelta(days=1))
    later = CampaignFactory.create(kind="request", deadline=timezone.now() + timedelta(days=3))
    later_asset = AssetFactory.create(campaign=later)
    soon_asset = AssetFactory.create(campaign=soon)
    reviewer = make_user()
    order = []
    for _ in range(2):
        claimed = review_task_claim(reviewer=reviewer)
        assert claimed is not None
        order.append(claimed.pk)
        review_task_release(asset=claimed, reviewer=reviewer)
        asset_approve(asset=claimed, reviewer=reviewer)
    assert order == [soon_asset.pk, later_asset.pk]


@pytest.mark.django_db
def test_an_expired_lease_returns_the_asset_to_the_queue() -> None:
    (only,) = queue(1)
    rita, sam = make_user(), make_user()
    now = timezone.now()
    assert review_task_claim(reviewer=rita, now=now) is not None
    assert review_task_claim(reviewer=sam, now=now + LEASE - timedelta(seconds=1)) is None
    taken = review_task_claim(reviewer=sam, now=now + LEASE + timedelta(seconds=1))
    assert taken is not None and taken.pk == only.pk and taken.claimed_by == sam
    event = AuditEvent.objects.filter(asset=only, action=AuditAction.CLAIMED, actor=sam).get()
    assert event.detail["lease_lapsed_from_user_id"] == rita.pk


@pytest.mark.django_db
def test_release_gives_the_asset_back() -> None:
    (only,) = queue(1)
    rita, sam = make_user(), make_user()
    claimed = review_task_claim(reviewer=rita)
    assert claimed is not None
    review_task_release(asset=claimed, reviewer=rita)
    taken = review_task_claim(reviewer=sam)
    assert taken is not None and taken.pk == only.pk


@pytest.mark.django_db
def test_deciding_an_asset_another_reviewer_holds_is_refused() -> None:
    (only,) = queue(1)
    rita, sam = make_user(username="rita"), make_user(username="sam")
    assert review_task_claim(reviewer=rita) is not None
    with pytest.raises(ClaimedByOtherError, match=f"Asset {only.pk} is claimed by rita until"):
        asset_approve(asset=only, reviewer=sam)
    approved = asset_approve(asset=only, reviewer=rita)
    assert approved.claimed_by is None and approved.lease_expires_at is None


@pytest.mark.django_db(transaction=True)
def test_concurrent_reviewers_never_get_the_same_asset() -> None:
    queue(12)
    reviewers = [make_user() for _ in range(8)]
    barrier = threading.Barrier(len(reviewers))
    claimed: list[int | None] = []
    errors: list[BaseException] = []

    def work(reviewer_index: int) -> None:
        try:
            barrier.wait()
            asset = review_task_claim(reviewer=reviewers[reviewer_index])
            claimed.append(asset.pk if asset else None)
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(reviewers))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not errors
    assert None not in claimed and len(claimed) == len(reviewers)
    assert len(set(claimed)) == len(reviewers)


@pytest.mark.django_db
def test_a_campaign_given_a_deadline_later_moves_its_assets_ahead() -> None:
    older = queue(1)[0]
    request = CampaignFactory.create(kind="request", deadline=None)
    late = AssetFactory.create(campaign=request)
    reviewer = make_user()
    first = review_task_claim(reviewer=reviewer)
    assert first is not None and first.pk == older.pk
    review_task_release(asset=first, reviewer=reviewer)
    request.deadline = timezone.now() + timedelta(hours=2)
    request.save()  # what loading the library does when a request's file gains a deadline
    late.refresh_from_db()
    assert (late.queue_priority, late.queue_deadline) == (0, request.deadline)
    claimed = review_task_claim(reviewer=reviewer)
    assert claimed is not None and claimed.pk == late.pk


@pytest.mark.django_db
def test_a_requester_who_also_reviews_is_never_handed_assets_of_their_own_request() -> None:
    requester = make_user(username="rosa", roles=("reviewer", "requester"))
    own = AssetFactory.create(campaign=CampaignFactory.create(kind="request", requested_by=requester))
    other = AssetFactory.create()  # later, and with no deadline: behind `own` in claim order
    claimed = review_task_claim(reviewer=requester)
    assert claimed is not None and claimed.pk == other.pk
    # Not leased to the requester, so a reviewer who may decide on it gets it at once.
    sam = make_user(username="sam")
    taken = review_task_claim(reviewer=sam)
    assert taken is not None and taken.pk == own.pk
    asset_approve(asset=taken, reviewer=sam)
    asset_approve(asset=claimed, reviewer=requester)
    assert review_task_claim(reviewer=requester) is None


@pytest.mark.django_db
def test_a_requester_with_only_their_own_assets_waiting_gets_nothing_and_holds_nothing() -> None:
    requester = make_user(roles=("reviewer", "requester"))
    own = AssetFactory.create(campaign=CampaignFactory.create(kind="request", requested_by=requester))
    assert review_task_claim(reviewer=requester) is None
    own.refresh_from_db()
    assert own.claimed_by is None and own.lease_expires_at is None
    assert not AuditEvent.objects.filter(asset=own, action=AuditAction.CLAIMED).exists()
