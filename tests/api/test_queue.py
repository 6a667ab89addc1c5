"""The review queue, publication, verify and the audit log through the API: the same services and
rules as the dashboard, and each refusal as problem details."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client

from review.models import Asset, AuditEvent, ReviewDecision
from review.states import AssetState
from tests.api.conftest import API, ApiClient, problem_of
from tests.factories import AssetFactory, CampaignFactory, make_user
from tests.fixture_types import SettingsWrapper

pytestmark = pytest.mark.django_db


def test_claim_hands_out_the_next_asset_then_the_same_one_then_nothing(api_as: Callable[..., ApiClient]) -> None:
    first, second = AssetFactory.create(), AssetFactory.create()
    kim, lee = api_as("reviewer", username="kim"), api_as("reviewer", username="lee")
    claimed = json.loads(kim.post("/queue/claim").content)
    assert claimed["serial"] == first.pk and claimed["claimed_by"] == "kim"
    assert json.loads(kim.post("/queue/claim").content)["serial"] == first.pk  # the live claim again
    assert json.loads(lee.post("/queue/claim").content)["serial"] == second.pk
    assert api_as("reviewer").post("/queue/claim").status_code == 204
    released = json.loads(kim.post(f"/assets/{first.pk}/release").content)
    assert released["claimed_by"] is None
    assert problem_of(api_as("publisher").post("/queue/claim"), 403)


def test_approve_and_reject_follow_the_quorum_and_the_claims(api_as: Callable[..., ApiClient]) -> None:
    a, b = AssetFactory.create(), AssetFactory.create()
    kim, lee = api_as("reviewer", username="kim"), api_as("reviewer", username="lee")
    kim.post("/queue/claim")
    refused = problem_of(lee.post(f"/assets/{a.pk}/approve", {}), 409)
    assert refused["type"].endswith("claimed-by-other") and "kim" in refused["detail"]
    approved = json.loads(kim.post(f"/assets/{a.pk}/approve", {"comment": "good"}).content)
    assert approved["state"] == "approved"
    rejected = json.loads(lee.post(f"/assets/{b.pk}/reject", {"reason": "off_brand", "comment": "too dark"}).content)
    assert rejected["state"] == "rejected"
    assert ReviewDecision.objects.get(asset=b).comment == "too dark"
    assert problem_of(kim.post(f"/assets/{b.pk}/reject", {"reason": "off_brand"}), 409)


def test_a_requester_may_not_decide_on_their_own_request(api_as: Callable[..., ApiClient]) -> None:
    rhea = make_user(roles=("reviewer", "requester"), username="rhea")
    asset = AssetFactory.create(campaign=CampaignFactory.create(kind="request", requested_by=rhea))
    from api.tokens import api_token_create

    client = ApiClient(api_token_create(user=rhea, name="x").plaintext)
    assert problem_of(client.post(f"/assets/{asset.pk}/approve", {}), 403)["type"].endswith("segregation-of-duties")


def test_bulk_decides_each_and_lists_each_refusal(api_as: Callable[..., ApiClient]) -> None:
    a, b = AssetFactory.create(), AssetFactory.create(state=AssetState.APPROVED)
    client = api_as("reviewer")
    result = json.loads(
        client.post("/queue/decisions", {"serials": [a.pk, b.pk, 99999], "decision": "approve"}).content
    )
    assert result["decided"] == [a.pk]
    assert [r["serial"] for r in result["refused"]] == [b.pk, 99999]
    assert "does not exist" in result["refused"][1]["detail"]
    no_reason = problem_of(client.post("/queue/decisions", {"serials": [a.pk], "decision": "reject"}), 422)
    assert no_reason["field"] == "reason"
    assert problem_of(client.post("/queue/decisions", {"serials": [], "decision": "approve"}), 422)["field"] == (
        "body.serials"
    )


def test_an_idempotency_key_replays_the_first_answer_and_refuses_another_body(
    api_as: Callable[..., ApiClient],
) -> None:
    a, b = AssetFactory.create(), AssetFactory.create()
    client = api_as("reviewer")
    key = {"Idempotency-Key": "decide-7f3a"}
    first = client.post(f"/assets/{a.pk}/approve", {"comment": "ok"}, headers=key)
    again = client.post(f"/assets/{a.pk}/approve", {"comment": "ok"}, headers=key)
    assert first.status_code == again.status_code == 200
    assert json.loads(again.content) == json.loads(first.content) and again["Idempotent-Replayed"] == "true"
    assert ReviewDecision.objects.filter(asset=a).count() == 1
    other = problem_of(client.post(f"/assets/{b.pk}/approve", {"comment": "ok"}, headers=key), 409)
    assert other["type"].endswith("idempotency-key-reused") and other["field"] == "header.Idempotency-Key"
    changed = problem_of(client.post(f"/assets/{a.pk}/approve", {"comment": "changed"}, headers=key), 409)
    assert changed["value"] == "decide-7f3a"
    # Another user's key is their own.
    assert api_as("reviewer").post(f"/assets/{b.pk}/approve", {}, headers=key).status_code == 200
    bad = problem_of(client.post(f"/assets/{b.pk}/approve", {}, headers={"Idempotency-Key": "has space"}), 400)
    assert bad["field"] == "header.Idempotency-Key"


def test_a_refused_first_request_frees_its_key(api_as: Callable[..., ApiClient]) -> None:
    asset = AssetFactory.create(state=AssetState.APPROVED)
    client = api_as("reviewer")
    key = {"Idempotency-Key": "retry-me"}
    assert problem_of(client.post(f"/assets/{asset.pk}/approve", {}, headers=key), 409)
    Asset.objects.filter(pk=asset.pk).update(state=AssetState.IN_REVIEW)
    assert client.post(f"/assets/{asset.pk}/approve", {}, headers=key).status_code == 200


def test_an_expired_key_is_forgotten(api_as: Callable[..., ApiClient]) -> None:
    from datetime import timedelta

    from django.utils import timezone

    from api.idempotency import idempotency_records_expire
    from api.models import IdempotencyRecord

    a, b = AssetFactory.create(), AssetFactory.create()
    client = api_as("reviewer")
    key = {"Idempotency-Key": "old"}
    client.post(f"/assets/{a.pk}/approve", {}, headers=key)
    IdempotencyRecord.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    assert client.post(f"/assets/{b.pk}/approve", {}, headers=key).status_code == 200
    IdempotencyRecord.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    assert idempotency_records_expire() == 1
    client.post(f"/assets/{AssetFactory.create().pk}/approve", {}, headers={"Idempotency-Key": "k-1"})
    IdempotencyRecord.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    # Another user's keyed request removes expired records as it comes.
    api_as("reviewer").post(f"/assets/{AssetFactory.create().pk}/approve", {}, headers={"Idempotency-Key": "k-2"})
    assert list(IdempotencyRecord.objects.values_list("key", flat=True)) == ["k-2"]


def test_publish_revoke_and_verify_a_downloaded_rendition(
    reviewable_assets: list[Asset], api_as: Callable[..., ApiClient], settings: SettingsWrapper
) -> None:
    asset = reviewable_assets[0]
    reviewer, publisher = api_as("reviewer"), api_as("publisher", username="paul")
    assert problem_of(publisher.post(f"/assets/{asset.pk}/publish"), 409)["type"].endswith("not-publishable")
    reviewer.post(f"/assets/{asset.pk}/approve", {})
    made = publisher.post(f"/assets/{asset.pk}/publish", headers={"Idempotency-Key": "pub-1"})
    assert made.status_code == 201, made.content
    body = json.loads(made.content)
    assert body["asset"]["state"] == "published"
    again = publisher.post(f"/assets/{asset.pk}/publish", headers={"Idempotency-Key": "pub-1"})
    assert json.loads(again.content) == body  # replayed, not published twice
    rendition = body["publications"][0]
    download = publisher.get(rendition["download"].removeprefix(API))
    assert download.status_code == 200
    report = _verify(publisher, download.content, "web.jpg")
    assert report["c2pa"]["state"] == "trusted"
    assert report["asset"]["serial"] == asset.pk
    assert problem_of(publisher.post(f"/assets/{asset.pk}/revoke", {"reason": ""}), 422)["field"] == "body.reason"
    revoked = json.loads(publisher.post(f"/assets/{asset.pk}/revoke", {"reason": "recalled"}).content)
    assert revoked["state"] == "revoked"
    assert problem_of(publisher.get(rendition["download"].removeprefix(API)), 404)


def _verify(client: ApiClient, data: bytes, name: str) -> dict[str, Any]:
    upload = io.BytesIO(data)
    upload.name = name
    response = client.client.post(f"{API}/verify", {"file": upload}, headers=client.headers)
    assert response.status_code == 200, response.content[:500]
    report: dict[str, Any] = json.loads(response.content)
    return report


def test_verify_refuses_with_the_dashboard_s_limits(
    api_as: Callable[..., ApiClient], greenlight_settings: SettingsWrapper
) -> None:
    settings = greenlight_settings
    client = api_as("reviewer")
    empty = client.client.post(f"{API}/verify", {}, headers=client.headers)
    assert problem_of(empty, 400)["type"] == "urn:greenlight:problem:verify-empty"
    text = io.BytesIO(b"plain text, not an image")
    text.name = "notes.txt"
    refused = client.client.post(f"{API}/verify", {"file": text}, headers=client.headers)
    assert problem_of(refused, 415)["field"] == "file"
    settings.GREENLIGHT_VERIFY_MAX_BYTES = 1000
    big = io.BytesIO(b"x" * 200_000)
    big.name = "big.png"
    assert problem_of(client.client.post(f"{API}/verify", {"file": big}, headers=client.headers), 413)
    assert problem_of(api_as("requester").client.post(f"{API}/verify", {}), 401)  # no token sent


def test_the_audit_log_filters_and_exports_csv(api_as: Callable[..., ApiClient]) -> None:
    asset = AssetFactory.create()
    kim = api_as("reviewer", username="kim")
    kim.post(f"/assets/{asset.pk}/comments", {"text": "=HYPERLINK(1)"})
    kim.post(f"/assets/{asset.pk}/approve", {})
    events = json.loads(kim.get("/audit-events", serial=asset.pk).content)["items"]
    assert [e["action"] for e in events] == ["approved", "commented"]
    approvals = json.loads(kim.get("/audit-events", action="approve", actor="kim").content)["items"]
    assert [e["action"] for e in approvals] == ["approved"]
    exported = kim.get("/audit-events.csv", serial=asset.pk)
    assert exported.status_code == 200 and exported["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(b"".join(exported.streaming_content).decode())))
    assert [r["action"] for r in rows] == ["approved", "commented"]
    assert rows[1]["comment"].startswith("'=")  # a formula is neutralised
    assert problem_of(kim.get("/audit-events", serial="x"), 422)["field"] == "query.serial"
    assert AuditEvent.objects.filter(asset=asset).count() == 2


def test_reads_via_the_session_need_no_csrf_token() -> None:
    browser = Client(HTTP_HOST="127.0.0.1", enforce_csrf_checks=True)
    browser.force_login(make_user(roles=("reviewer",)))
    AssetFactory.create()
    assert browser.get(f"{API}/assets").status_code == 200
    assert browser.post(f"{API}/queue/claim").status_code == 403


def test_webhook_deliveries_are_listed_with_their_outcome(api_as: Callable[..., ApiClient]) -> None:
    from review.models import WebhookDelivery

    asset = AssetFactory.create()
    WebhookDelivery.objects.create(
        event="asset.decided",
        url="http://127.0.0.1:9/",
        payload={"asset": asset.pk},
        asset=asset,
        attempts=2,
        last_outcome="HTTP 503",
    )
    WebhookDelivery.objects.create(event="run.finished", url="http://127.0.0.1:9/", payload={}, state="delivered")
    auditor = api_as("reviewer")
    items = json.loads(auditor.get("/webhook-deliveries", state="pending").content)["items"]
    assert [(d["event"], d["attempts"], d["last_outcome"], d["asset"]) for d in items] == [
        ("asset.decided", 2, "HTTP 503", asset.pk)
    ]
    assert len(json.loads(auditor.get("/webhook-deliveries").content)["items"]) == 2
    assert problem_of(api_as("requester").get("/webhook-deliveries"), 403)
