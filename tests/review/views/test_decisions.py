"""Deciding from the dashboard: claim and release, approve and reject (one or a selection),
regenerate, publish, comment; roles, CSRF, and every refusal shown as a message."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from review.models import Asset
from review.states import AssetState
from tests.factories import AssetFactory, CampaignFactory, make_user
from tests.fixture_types import SettingsWrapper

pytestmark = pytest.mark.django_db


def test_approve_by_post_moves_on_to_the_next_asset(reviewer_client: Client, reviewable_assets: list[Asset]) -> None:
    first, second = reviewable_assets[:2]
    response = reviewer_client.post(reverse("review:approve", args=[first.pk]), {"comment": ""})
    assert response.status_code == 302 and response["Location"] == reverse("review:asset", args=[second.pk])
    assert Asset.objects.get(pk=first.pk).state == AssetState.APPROVED


def test_reject_without_a_reason_is_refused_with_a_message(
    reviewer_client: Client, reviewable_assets: list[Asset]
) -> None:
    asset = reviewable_assets[0]
    response = reviewer_client.post(reverse("review:reject", args=[asset.pk]), {"reason": ""}, follow=True)
    assert "choose a reason" in response.content.decode()
    assert Asset.objects.get(pk=asset.pk).state == AssetState.IN_REVIEW


def test_publish_of_an_unapproved_asset_shows_the_refusal(
    reviewer_client: Client, reviewable_assets: list[Asset]
) -> None:
    asset = reviewable_assets[0]
    response = reviewer_client.post(reverse("review:publish", args=[asset.pk]), follow=True)
    assert "only approved assets can be published" in response.content.decode()
    assert Asset.objects.get(pk=asset.pk).state == AssetState.IN_REVIEW


def test_forms_need_a_csrf_token(reviewable_assets: list[Asset]) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(make_user())
    response = client.post(reverse("review:approve", args=[reviewable_assets[0].pk]))
    assert response.status_code == 403


def test_review_next_claims_the_oldest_asset_and_says_when_nothing_is_left(
    reviewer_client: Client, reviewable_assets: list[Asset]
) -> None:
    response = reviewer_client.post(reverse("review:claim"))
    first = reviewable_assets[0]
    assert response["Location"] == reverse("review:asset", args=[first.pk])
    claimed = Asset.objects.get(pk=first.pk)
    assert claimed.claimed_by is not None and claimed.claimed_by.username == "rita"
    assert "Claimed by rita" in reviewer_client.get(response["Location"]).content.decode()
    Asset.objects.update(state=AssetState.REJECTED)
    nothing = reviewer_client.post(reverse("review:claim"), follow=True)
    assert "Nothing is waiting for your review." in nothing.content.decode()


def test_release_puts_the_asset_back(reviewer_client: Client, reviewable_assets: list[Asset]) -> None:
    reviewer_client.post(reverse("review:claim"))
    first = reviewable_assets[0]
    reviewer_client.post(reverse("review:release", args=[first.pk]))
    assert Asset.objects.get(pk=first.pk).claimed_by is None


def test_a_reviewer_may_not_publish_and_a_publisher_may_not_approve(
    client: Client, reviewable_assets: list[Asset]
) -> None:
    asset = reviewable_assets[0]
    client.force_login(make_user(roles=("reviewer",)))
    assert client.post(reverse("review:approve", args=[asset.pk])).status_code == 302
    assert Asset.objects.get(pk=asset.pk).state == AssetState.APPROVED
    assert client.post(reverse("review:publish", args=[asset.pk])).status_code == 403
    assert "Publish signed renditions" not in client.get(reverse("review:asset", args=[asset.pk])).content.decode()
    client.force_login(make_user(roles=("publisher",)))
    assert client.post(reverse("review:approve", args=[reviewable_assets[1].pk])).status_code == 403
    assert client.post(reverse("review:claim")).status_code == 403
    assert client.post(reverse("review:publish", args=[asset.pk])).status_code == 302
    assert Asset.objects.get(pk=asset.pk).state == AssetState.PUBLISHED


def test_bulk_decisions_report_each_refusal_and_need_a_reason_to_reject(
    reviewer_client: Client, reviewable_assets: list[Asset]
) -> None:
    a1, a2, a3, _ = reviewable_assets
    url = reverse("review:bulk")
    no_reason = reviewer_client.post(url, {"decision": "reject", "serials": [a1.pk]}, follow=True)
    assert "choose a reason" in no_reason.content.decode()
    assert Asset.objects.get(pk=a1.pk).state == AssetState.IN_REVIEW
    Asset.objects.filter(pk=a3.pk).update(state=AssetState.REJECTED)
    response = reviewer_client.post(url, {"decision": "approve", "serials": [a1.pk, a2.pk, a3.pk, 999999]}, follow=True)
    html = response.content.decode()
    assert f"Approved 2 asset(s): {a1.pk}, {a2.pk}." in html
    assert f"Asset {a3.pk} is rejected: it cannot become approved" in html
    assert "Asset 999999 does not exist" in html


def test_asset_page_shows_quorum_progress_and_hides_buttons_after_deciding(
    reviewer_client: Client, reviewable_assets: list[Asset]
) -> None:
    asset = reviewable_assets[0]
    asset.campaign.approvals_required = 2
    asset.campaign.save()
    reviewer_client.post(reverse("review:approve", args=[asset.pk]))
    html = reviewer_client.get(reverse("review:asset", args=[asset.pk])).content.decode()
    assert "1 of 2 approvals" in html and "rita: approve" in html
    assert 'id="approve"' not in html and "waiting for other reviewers" in html


def test_comment_is_shown_escaped_in_the_history(reviewer_client: Client, reviewable_assets: list[Asset]) -> None:
    asset = reviewable_assets[0]
    reviewer_client.post(reverse("review:comment", args=[asset.pk]), {"text": "<b>too dark</b>"})
    html = reviewer_client.get(reverse("review:asset", args=[asset.pk])).content.decode()
    assert "&lt;b&gt;too dark&lt;/b&gt;" in html and "<b>too dark</b>" not in html


def test_bad_regenerate_form_input_changes_nothing(reviewer_client_rejected: tuple[Client, Asset]) -> None:
    client, asset = reviewer_client_rejected
    response = client.post(
        f"/assets/{asset.pk}/regenerate", {"count": "3", "var_product": "mug", "var_scene": ""}, follow=True
    )
    assert "Nothing regenerated" in response.content.decode()
    assert not Asset.objects.filter(regenerated_from=asset).exists()


@pytest.fixture
def reviewer_client_rejected() -> tuple[Client, Asset]:
    asset = AssetFactory.create(state=AssetState.REJECTED, variables={"product": "mug", "scene": "a table"})
    client = Client()
    client.force_login(make_user(roles=("reviewer",)))
    return client, asset


def test_a_comment_the_service_refuses_is_reported_not_saved(
    reviewer_client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    from review.services import comments

    asset = AssetFactory.create()
    monkeypatch.setattr(comments, "COMMENT_MAX", 5)
    response = reviewer_client.post(reverse("review:comment", args=[asset.pk]), {"text": "far too long"}, follow=True)
    assert "Comment not saved: comment length must be at most 5 characters (got 12)" in response.content.decode()
    assert not asset.events.exists()


def _arabic_indic(number: int) -> str:
    """`number` in ARABIC-INDIC digits: str.isdigit() is true and int() reads it back."""
    return "".join(chr(0x660 + int(d)) for d in str(number))


@pytest.mark.parametrize(
    "sent",
    [
        pytest.param("²", id="superscript-two"),  # isdigit(), but int() refuses it: was a 500
        pytest.param("arabic-indic", id="arabic-indic"),  # int() reads it: was taken as the serial
        pytest.param("9" * 19, id="past-bigint"),
        pytest.param("-1", id="negative"),
        pytest.param("1\x00", id="nul"),
    ],
)
def test_bulk_refuses_serials_not_written_in_ascii_digits_naming_the_value(reviewer_client: Client, sent: str) -> None:
    asset = AssetFactory.create()
    value = _arabic_indic(asset.pk) if sent == "arabic-indic" else sent
    response = reviewer_client.post(
        reverse("review:bulk"), {"decision": "approve", "serials": [str(asset.pk), value]}, follow=True
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert "Nothing decided: serials" in html and "digits 0-9" in html
    assert repr(value)[1:-1] in html  # the value sent, quoted back
    assert Asset.objects.get(pk=asset.pk).state == AssetState.IN_REVIEW  # none of the selection decided


def test_bulk_refuses_more_serials_than_a_decision_takes(reviewer_client: Client) -> None:
    from review.forms import BULK_MAX

    response = reviewer_client.post(
        reverse("review:bulk"),
        {"decision": "approve", "serials": [str(n) for n in range(1, BULK_MAX + 2)]},
        follow=True,
    )
    assert f"at most {BULK_MAX} assets at once" in response.content.decode()


def test_a_requester_who_reviews_is_shown_why_they_cannot_decide_and_review_next_passes_over_it(
    client: Client,
) -> None:
    requester = make_user(username="rosa", roles=("reviewer", "requester"))
    own = AssetFactory.create(campaign=CampaignFactory.create(kind="request", requested_by=requester))
    client.force_login(requester)
    html = client.get(reverse("review:asset", args=[own.pk])).content.decode()
    assert 'id="requested-by-me"' in html and 'id="approve"' not in html
    nothing = client.post(reverse("review:claim"), follow=True)
    assert "Nothing is waiting for your review." in nothing.content.decode()
    assert Asset.objects.get(pk=own.pk).claimed_by is None


def test_publishing_an_asset_whose_master_is_missing_from_storage_says_so(
    client: Client, greenlight_settings: SettingsWrapper, caplog: pytest.LogCaptureFixture
) -> None:
    asset = AssetFactory.create(state=AssetState.APPROVED, file_path="masters/gone.png", mime="image/png")
    client.force_login(make_user(roles=("publisher",)))
    response = client.post(reverse("review:publish", args=[asset.pk]), follow=True)
    html = response.content.decode()
    assert response.status_code == 200
    assert f"Asset {asset.pk} not published: a stored or published file could not be read or written" in html
    assert str(greenlight_settings.GREENLIGHT_STORAGE_ROOT) not in html  # the server's paths stay in its log
    assert Asset.objects.get(pk=asset.pk).state == AssetState.APPROVED
    assert any("gone.png" in r.getMessage() for r in caplog.records if r.name == "greenlight.review")


def test_the_reject_form_preselects_no_reason(reviewer_client: Client, reviewable_assets: list[Asset]) -> None:
    html = reviewer_client.get(reverse("review:asset", args=[reviewable_assets[0].pk])).content.decode()
    select = html[html.index('name="reason"') : html.index("</select>", html.index('name="reason"'))]
    assert '<option value="" selected>Choose a reason…</option>' in select
    assert select.count("selected") == 1
