"""Assets through the API: the list (filters, cursor pages, a query count that does not grow with
the page), one asset with provenance and history, its files, comments and regeneration."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from review.models import Asset, AuditEvent, Publication
from review.states import AssetState
from tests.api.conftest import ApiClient, problem_of
from tests.factories import AssetFactory, CampaignFactory, PromptVersionFactory, make_user
from tests.fixture_types import SettingsWrapper

pytestmark = pytest.mark.django_db


def _serials(response: Any) -> list[int]:
    assert response.status_code == 200, response.content[:500]
    return [item["serial"] for item in json.loads(response.content)["items"]]


def test_the_list_filters_by_state_campaign_version_model_dates_and_prompt_text(
    api_as: Callable[..., ApiClient],
) -> None:
    spring = CampaignFactory.create(name="spring")
    autumn = CampaignFactory.create(name="autumn", prompt_version=PromptVersionFactory.create(template__name="lamp"))
    c = AssetFactory.create(campaign=autumn, prompt="a red lamp", model_name="sdxl-turbo")
    a = AssetFactory.create(campaign=spring, prompt="a red mug on a table")
    b = AssetFactory.create(campaign=spring, state=AssetState.APPROVED, prompt="a blue lamp")
    Asset.objects.filter(pk=c.pk).update(created_at=timezone.now() - timedelta(days=3))
    client = api_as("reviewer")
    assert _serials(client.get("/assets")) == [b.pk, a.pk, c.pk]
    assert _serials(client.get("/assets", state="approved")) == [b.pk]
    assert _serials(client.get("/assets", campaign="spring")) == [b.pk, a.pk]
    assert _serials(client.get("/assets", template=c.prompt_version.template.name)) == [c.pk]
    assert _serials(client.get("/assets", template_version=c.prompt_version.number, campaign="autumn")) == [c.pk]
    assert _serials(client.get("/assets", model="sdxl-turbo")) == [c.pk]
    since = (timezone.now() - timedelta(days=1)).isoformat()
    assert _serials(client.get("/assets", created_after=since)) == [b.pk, a.pk]
    assert _serials(client.get("/assets", created_before=since)) == [c.pk]
    assert _serials(client.get("/assets", q="RED")) == [a.pk, c.pk]
    assert _serials(client.get("/assets", q="nothing like it")) == []


def test_the_list_shows_and_filters_assets_the_safety_classifier_flagged(
    api_as: Callable[..., ApiClient],
) -> None:
    campaign = CampaignFactory.create()
    plain = AssetFactory.create(campaign=campaign)
    flagged = AssetFactory.create(campaign=campaign)
    Asset.objects.filter(pk=flagged.pk).update(safety_flagged=True, safety_score=0.93)
    client = api_as("reviewer")
    assert _serials(client.get("/assets", flagged="true")) == [flagged.pk]
    assert _serials(client.get("/assets", flagged="false")) == [plain.pk]
    items = {i["serial"]: i for i in json.loads(client.get("/assets").content)["items"]}
    assert (items[flagged.pk]["safety_flagged"], items[flagged.pk]["safety_score"]) == (True, 0.93)
    assert (items[plain.pk]["safety_flagged"], items[plain.pk]["safety_score"]) == (False, None)
    assert json.loads(client.get(f"/assets/{flagged.pk}").content)["safety_flagged"] is True
    assert problem_of(client.get("/assets", flagged="maybe"), 422)["field"] == "query.flagged"


def test_cursor_pages_walk_every_asset_once(api_as: Callable[..., ApiClient]) -> None:
    campaign = CampaignFactory.create()
    made = [AssetFactory.create(campaign=campaign) for _ in range(7)]
    Asset.objects.update(created_at=timezone.now())  # newest first is the id's order, whatever the times
    client = api_as("reviewer")
    seen: list[int] = []
    cursor = None
    for _ in range(10):
        page = json.loads(client.get("/assets", limit=3, **({"cursor": cursor} if cursor else {})).content)
        seen += [i["serial"] for i in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted((a.pk for a in made), reverse=True)
    body = problem_of(client.get("/assets", cursor="bm90IGEgY3Vyc29y"), 400)
    assert body["field"] == "query.cursor"
    assert problem_of(client.get("/assets", limit=500), 422)["field"] == "query.limit"


def _count_queries(django_assert_max_num_queries: Any, client: ApiClient, path: str, **params: Any) -> int:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        response = client.get(path, **params)
    assert response.status_code == 200, response.content[:300]
    return len(captured.captured_queries)


@pytest.mark.parametrize(
    "path",
    ["/assets", "/audit-events", "/campaigns", "/templates", "/runs", "/webhook-deliveries"],
)
def test_a_list_costs_the_same_queries_for_one_item_or_a_full_page(
    path: str, api_as: Callable[..., ApiClient], django_assert_num_queries: Any
) -> None:
    from review.models import Run, WebhookDelivery

    client = api_as("reviewer", "operator")
    user = make_user(username="someone")
    for _ in range(25):
        campaign = CampaignFactory.create(requested_by=user)
        asset = AssetFactory.create(campaign=campaign, claimed_by=user, lease_expires_at=timezone.now())
        AuditEvent.objects.create(asset=asset, actor=user, action="commented", detail={"comment": "x"})
        Run.objects.create(campaign=campaign, started_by=user, total=1)
        WebhookDelivery.objects.create(event="asset.decided", url="http://127.0.0.1:9/", payload={}, asset=asset)
    client.get(path)  # the token's first use of the minute records it: not part of the list's cost
    one = _count_queries(None, client, path, limit=1)
    many = _count_queries(None, client, path, limit=25)
    assert one == many, (path, one, many)
    with django_assert_num_queries(many):
        client.get(path, limit=20)


def test_an_asset_shows_its_provenance_decisions_history_and_publications(
    published: tuple[Asset, Sequence[Publication]], api_as: Callable[..., ApiClient]
) -> None:
    asset, publications = published
    detail = json.loads(api_as("reviewer").get(f"/assets/{asset.pk}").content)
    assert detail["serial"] == asset.pk and detail["state"] == "published"
    assert detail["provenance"]["file_sha256"] == asset.file_sha256
    assert {m["kind"] for m in detail["provenance"]["manifests"]} >= {"master", "thumbnail"}
    assert [d["reviewer"] for d in detail["decisions"]] == ["vera"]
    actions = [e["action"] for e in detail["history"]]
    assert actions[-2:] == ["approved", "published"] or "published" in actions
    assert {p["rendition"] for p in detail["publications"]} == {p.rendition for p in publications}
    assert set(detail["files"]) == {"master", "thumbnail", *(f"rendition:{p.rendition}" for p in publications)}


def test_files_download_as_stored_and_signed(
    published: tuple[Asset, Sequence[Publication]], api_as: Callable[..., ApiClient], settings: SettingsWrapper
) -> None:
    asset, publications = published
    client = api_as("reviewer")
    master = client.get(f"/assets/{asset.pk}/files/master")
    assert master.status_code == 200 and master["Content-Type"] == asset.mime
    assert hashlib.sha256(b"".join(master.streaming_content)).hexdigest() == asset.file_sha256
    assert client.get(f"/assets/{asset.pk}/files/thumbnail")["Content-Type"] == "image/jpeg"
    partial = client.client.get(
        f"/api/v1/assets/{asset.pk}/files/master", headers={**client.headers, "Range": "bytes=0-9"}
    )
    assert partial.status_code == 206 and len(b"".join(partial.streaming_content)) == 10  # type: ignore[attr-defined]
    for publication in publications:
        rendition = client.get(f"/assets/{asset.pk}/files/rendition:{publication.rendition}")
        assert rendition.status_code == 200, rendition.content[:300]
        assert hashlib.sha256(rendition.content).hexdigest() == publication.sha256
    assert problem_of(client.get(f"/assets/{asset.pk}/files/rendition:nope"), 404)["field"] == "path.kind"
    assert problem_of(client.get(f"/assets/{asset.pk}/files/original"), 422)["field"] == "path.kind"
    (settings.GREENLIGHT_STORAGE_ROOT / asset.thumb_path).unlink()
    assert problem_of(client.get(f"/assets/{asset.pk}/files/thumbnail"), 404)["type"].endswith("file-missing")


def test_a_comment_is_kept_in_the_history(api_as: Callable[..., ApiClient]) -> None:
    asset = AssetFactory.create()
    client = api_as("requester", username="rhea")
    made = client.post(f"/assets/{asset.pk}/comments", {"text": "  warmer light, please "})
    assert made.status_code == 201
    event = json.loads(made.content)
    assert event["action"] == "commented" and event["detail"]["comment"] == "warmer light, please"
    assert event["actor"] == "rhea"
    assert problem_of(client.post(f"/assets/{asset.pk}/comments", {"text": "   "}), 422)["field"] == "comment"
    assert problem_of(client.post(f"/assets/{asset.pk}/comments", {"text": "x" * 2001}), 422)["field"] == "body.text"


def test_regenerate_registers_new_variants_and_starts_them(
    reviewable_assets: list[Asset], api_as: Callable[..., ApiClient], settings: SettingsWrapper
) -> None:
    submitted: list[list[int]] = []
    settings.GREENLIGHT_RUN_SUBMIT = "tests.api.test_assets.submit_recorder"
    SUBMITTED.clear()
    reviewer = api_as("reviewer")
    asset = reviewable_assets[0]
    assert problem_of(reviewer.post(f"/assets/{asset.pk}/regenerate", {"count": 2}), 409)["type"].endswith(
        "not-regenerable"
    )
    assert reviewer.post(f"/assets/{asset.pk}/reject", {"reason": "off_brand"}).status_code == 200
    bad = problem_of(reviewer.post(f"/assets/{asset.pk}/regenerate", {"count": 2, "variables": {"nope": "x"}}), 422)
    assert "nope" in json.dumps(bad["value"])
    assert problem_of(reviewer.post(f"/assets/{asset.pk}/regenerate", {"count": 3}), 422)["field"] == "body.count"
    made = reviewer.post(f"/assets/{asset.pk}/regenerate", {"count": 2}, headers={"Idempotency-Key": "regen-1"})
    assert made.status_code == 202, made.content
    body = json.loads(made.content)
    assert body["started"] and body["generation"] == "recorded"
    assert [body["serials"]] == SUBMITTED
    assert set(Asset.objects.filter(regenerated_from=asset).values_list("id", flat=True)) == set(body["serials"])
    again = reviewer.post(f"/assets/{asset.pk}/regenerate", {"count": 2}, headers={"Idempotency-Key": "regen-1"})
    assert json.loads(again.content) == body and again["Idempotent-Replayed"] == "true"
    assert [body["serials"]] == SUBMITTED and submitted == []


SUBMITTED: list[list[int]] = []


def submit_recorder(*, serials: Sequence[int]) -> str:
    """The orchestrator's submit function, for tests: records what it was asked to generate."""
    SUBMITTED.append(list(serials))
    return "recorded"


def test_a_date_filter_with_any_iso_offset_is_read_as_utc(api_as: Callable[..., ApiClient]) -> None:
    """PostgreSQL takes offsets up to 15:59 and ISO 8601 up to 23:59: found by schemathesis as a 500."""
    asset = AssetFactory.create()
    client = api_as("reviewer")
    assert _serials(client.get("/assets", created_before="2999-08-10T06:09:36-18:33")) == [asset.pk]
    assert _serials(client.get("/assets", created_after="1256-08-10T06:09:36.632-18:33")) == [asset.pk]
    assert _serials(client.get("/assets", created_after="2999-01-01T00:00:00")) == []  # no offset: UTC
    overflow = problem_of(client.get("/assets", created_before="9999-12-31T23:00:00-18:00"), 422)
    assert overflow["field"] == "query.created_before"
