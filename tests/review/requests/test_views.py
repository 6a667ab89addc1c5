"""The request pages: a requester submits a brief through the form (every bad field named with
its value, 400, never a 500), sees only their own requests, polls progress, cancels; another
requester gets a 404 for each of it; an admin sees every request; reviewers see notes and deadline."""

from __future__ import annotations

import html
from datetime import timedelta
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from review.models import Asset
from review.requests.models import AssetRequest
from review.requests.services import request_create
from tests.factories import make_user

pytestmark = pytest.mark.django_db


def form_data(**overrides: str) -> dict[str, str]:
    data = {
        "template": "catalog-hero",
        "title": "Mugs for spring",
        "var_product": "mug\nlamp",
        "var_scene": "a table",
        "var_style": "studio light",
        "variants_per_combination": "2",
        "renditions": "web",
        "deadline": (timezone.now() + timedelta(days=3)).strftime("%Y-%m-%dT%H:%M"),
        "notes": "Label must read GREEN",
    }
    return data | overrides


def make_request(user: User, **overrides: object) -> AssetRequest:
    fields: dict[str, object] = {
        "template": "catalog-hero",
        "values": {"product": ["mug"], "scene": ["a table"], "style": ["studio light"]},
        "variants_per_combination": 1,
        "renditions": ["web"],
        "deadline": timezone.now() + timedelta(days=1),
        "notes": "Label must read GREEN",
    }
    return request_create(requester=user, **(fields | overrides))  # type: ignore[arg-type]


def test_the_form_shows_each_template_and_submits_a_brief(library: Path, requester: User, client: Client) -> None:
    client.force_login(requester)
    page = client.get("/requests/new?template=catalog-hero")
    assert page.status_code == 200
    text = page.content.decode()
    for name in ("catalog-hero", "catalog-scene", "catalog-clip"):
        assert f'data-template="{name}"' in text
    assert "product, scene, style" in text and "512×512 PNG" in text and 'id="variant-total"' in text
    response = client.post("/requests/new", form_data())
    made = AssetRequest.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/requests/{made.pk}/"
    assert made.requester == requester and made.notes == "Label must read GREEN"
    assert Asset.objects.filter(campaign=made.campaign).count() == 4


@pytest.mark.parametrize(
    ("field", "value", "named"),
    [
        ("variants_per_combination", "٣", "variants_per_combination '٣'"),
        ("variants_per_combination", "30", "variants_per_combination makes 60 new variants"),
        ("var_product", "", "var_product '': This field is required"),
        ("var_product", "{x}", "values.product needs 1 to 200"),
        ("renditions", "poster", "renditions 'poster'"),
        ("deadline", "yesterday", "deadline 'yesterday'"),
        ("deadline", "2020-01-01T10:00", "deadline has already passed"),
        ("template", "nope", "template 'nope'"),
    ],
)
def test_a_bad_field_answers_400_naming_it_and_its_value(
    library: Path, requester: User, client: Client, field: str, value: str, named: str
) -> None:
    client.force_login(requester)
    response = client.post("/requests/new", form_data(**{field: value}))
    assert response.status_code == 400
    assert named in html.unescape(response.content.decode())
    assert not AssetRequest.objects.exists() and not Asset.objects.exists()


def test_a_requester_sees_only_their_own_requests(library: Path, requester: User, client: Client) -> None:
    mine = make_request(requester, title="mine")
    other_user = make_user(username="otto", roles=("requester",))
    theirs = make_request(other_user, title="theirs")
    client.force_login(requester)
    listing = client.get("/requests/").content.decode()
    assert f'data-request="{mine.pk}"' in listing and f'data-request="{theirs.pk}"' not in listing
    for url in (
        f"/requests/{theirs.pk}/",
        f"/requests/{theirs.pk}/progress.json",
        f"/requests/{theirs.pk}/approved.zip",
    ):
        assert client.get(url).status_code == 404, url
    for url in (f"/requests/{theirs.pk}/cancel", f"/requests/{theirs.pk}/more"):
        assert client.post(url, {"more_seeds": "1"}).status_code == 404, url
    assert AssetRequest.objects.get(pk=theirs.pk).cancelled_at is None
    progress = client.get(f"/requests/{mine.pk}/progress.json").json()
    assert progress["total"] == 1 and progress["counts"]["pending"] == 1 and progress["run"]["open"] is True


def test_an_admin_sees_every_request(library: Path, requester: User, client: Client) -> None:
    made = make_request(requester)
    client.force_login(make_user(username="ada", roles=("admin",)))
    assert f'data-request="{made.pk}"' in client.get("/requests/").content.decode()
    assert client.get(f"/requests/{made.pk}/").status_code == 200


def test_a_reviewer_cannot_ask_for_assets_or_change_a_request(
    library: Path, requester: User, reviewer: User, client: Client
) -> None:
    made = make_request(requester)
    client.force_login(reviewer)
    assert client.get("/requests/new").status_code == 403
    assert client.get("/requests/").status_code == 403
    page = client.get(f"/requests/{made.pk}/").content.decode()  # a reviewer may read it
    assert "Label must read GREEN" in page and 'id="cancel-request"' not in page
    assert client.post(f"/requests/{made.pk}/cancel").status_code == 404
    assert AssetRequest.objects.get(pk=made.pk).cancelled_at is None


def test_the_requester_cancels_from_the_page(library: Path, requester: User, client: Client) -> None:
    made = make_request(requester)
    client.force_login(requester)
    response = client.post(f"/requests/{made.pk}/cancel", follow=True)
    assert "cancelled" in response.content.decode()
    assert AssetRequest.objects.get(pk=made.pk).cancelled_at is not None
    assert set(Asset.objects.filter(campaign=made.campaign).values_list("state", flat=True)) == {"cancelled"}


def test_reviewers_see_the_requests_notes_and_deadline_on_the_asset_page_and_in_the_queue(
    library: Path, requester: User, reviewer: User, client: Client
) -> None:
    made = make_request(requester)
    asset = Asset.objects.get(campaign=made.campaign)
    Asset.objects.filter(pk=asset.pk).update(state="in_review")
    client.force_login(reviewer)
    page = client.get(f"/assets/{asset.pk}/").content.decode()
    assert 'id="request-brief"' in page and "Label must read GREEN" in page
    assert made.deadline is not None and made.deadline.strftime("%Y-%m-%d %H:%M") in page
    queue = client.get("/").content.decode()
    assert f"due {made.deadline:%Y-%m-%d %H:%M}" in queue


def test_the_inbox_lists_notifications_and_marks_them_read(
    library: Path, requester: User, reviewer: User, client: Client
) -> None:
    make_request(requester)  # a deadline: every reviewer hears of it
    client.force_login(reviewer)
    assert client.get("/inbox/count.json").json() == {"unread": 1}
    assert "New request due" in client.get("/inbox/").content.decode()
    assert client.post("/inbox/read").status_code == 302
    assert client.get("/inbox/count.json").json() == {"unread": 0}
    assert client.post("/inbox/read", {"id": "١"}).status_code == 302  # refused, named, never a 500


def test_another_requester_sees_no_notes_of_a_request_on_its_assets(
    library: Path, requester: User, client: Client
) -> None:
    made = make_request(requester)
    asset = Asset.objects.get(campaign=made.campaign)
    Asset.objects.filter(pk=asset.pk).update(state="in_review")
    client.force_login(make_user(username="otto", roles=("requester",)))
    page = client.get(f"/assets/{asset.pk}/").content.decode()
    assert "Label must read GREEN" not in page and 'id="request-brief"' not in page
    queue = client.get("/").content.decode()
    assert "Label must read GREEN" not in queue
    client.force_login(requester)  # the request's own requester does see them
    assert "Label must read GREEN" in client.get(f"/assets/{asset.pk}/").content.decode()
