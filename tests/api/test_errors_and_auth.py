"""Who may call the API and what every refusal looks like: RFC 9457 problem details, always."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from api.models import ApiToken
from api.tokens import api_token_create
from tests.api.conftest import API, ApiClient, problem_of
from tests.factories import AssetFactory, make_user
from tests.fixture_types import SettingsWrapper

pytestmark = pytest.mark.django_db


def test_the_schema_and_the_docs_page_are_served_without_logging_in() -> None:
    client = Client(HTTP_HOST="127.0.0.1")
    schema = client.get(f"{API}/openapi.json")
    assert schema.status_code == 200
    duplicated: list[str] = []

    def unique_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
        keys = [k for k, _ in pairs]
        duplicated.extend(k for k in set(keys) if keys.count(k) > 1)
        return dict(pairs)

    spec = json.loads(schema.content, object_pairs_hook=unique_keys)
    assert duplicated == []  # a YAML parser (Swagger UI's) refuses a mapping that repeats a key
    assert spec["openapi"].startswith("3.")
    assert "/api/v1/assets" in spec["paths"]
    assert spec["paths"]["/api/v1/assets"]["get"]["responses"]["401"]["content"].keys() == {"application/problem+json"}
    docs = client.get(f"{API}/docs")
    assert docs.status_code == 200
    html = docs.content.decode()
    # Swagger UI from the project's own static files, under the project's CSP: no CDN, no inline script.
    assert "/static/ninja/swagger-ui-bundle.js" in html and "cdn" not in html.lower()
    assert docs["Content-Security-Policy"].startswith("default-src 'self'")
    for script in html.split("<script")[1:]:
        assert ' src="' in script.split(">")[0] or 'type="application/json"' in script.split(">")[0]


def test_without_credentials_every_endpoint_answers_401_not_a_login_redirect(anonymous: ApiClient) -> None:
    for path in ("/assets", "/assets/1", "/templates", "/campaigns", "/runs", "/audit-events"):
        body = problem_of(anonymous.get(path), 401)
        assert body["type"] == "urn:greenlight:problem:unauthenticated"
    assert anonymous.post("/queue/claim")["WWW-Authenticate"].startswith("Bearer")


def test_an_unknown_revoked_or_expired_token_is_refused() -> None:
    user = make_user(roles=("reviewer",))
    assert problem_of(ApiClient("gl_deadbeef_nope").get("/assets"), 401)["type"].endswith("invalid-token")
    assert problem_of(ApiClient("not-even-a-token").get("/assets"), 401)
    revoked = api_token_create(user=user, name="old")
    ApiToken.objects.filter(pk=revoked.token.pk).update(revoked_at=timezone.now())
    assert problem_of(ApiClient(revoked.plaintext).get("/assets"), 401)
    expired = api_token_create(user=user, name="short", days=1)
    ApiToken.objects.filter(pk=expired.token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert problem_of(ApiClient(expired.plaintext).get("/assets"), 401)
    good = api_token_create(user=user, name="good")
    # The secret must match, not only the prefix.
    assert problem_of(ApiClient(good.plaintext[:-2] + "xx").get("/assets"), 401)
    assert ApiClient(good.plaintext).get("/assets").status_code == 200


def test_a_role_the_caller_lacks_is_403_naming_the_role(api_as: Callable[..., ApiClient]) -> None:
    asset = AssetFactory.create()
    requester = api_as("requester")
    body = problem_of(requester.post(f"/assets/{asset.pk}/approve", {}), 403)
    assert "reviewer role" in body["detail"]
    assert problem_of(api_as("reviewer").post(f"/assets/{asset.pk}/publish"), 403)["detail"].endswith(
        "(review.publish_asset)"
    )
    assert problem_of(api_as().get("/assets"), 403)  # no role at all
    assert problem_of(requester.get("/audit-events"), 403)


def test_unknown_paths_methods_and_objects_are_problems(api_as: Callable[..., ApiClient]) -> None:
    client = api_as("reviewer")
    assert problem_of(client.get("/no-such-thing"), 404)
    body = problem_of(client.get("/assets/999999"), 404)
    assert body["field"] == "path.serial" and body["value"] == 999999
    refused = client.client.delete(f"{API}/assets", headers=client.headers)
    assert problem_of(refused, 405)
    assert refused["Allow"] == "GET"


def test_a_body_that_is_not_json_is_400_and_another_media_type_is_415(api_as: Callable[..., ApiClient]) -> None:
    asset = AssetFactory.create()
    client = api_as("reviewer")
    broken = client.client.post(
        f"{API}/assets/{asset.pk}/approve", "{nope", content_type="application/json", headers=client.headers
    )
    assert problem_of(broken, 400)["type"].endswith("malformed-json")
    form = client.client.post(
        f"{API}/assets/{asset.pk}/approve", "comment=hi", content_type="text/plain", headers=client.headers
    )
    body = problem_of(form, 415)
    assert body["field"] == "header.Content-Type" and body["value"] == "text/plain"


def test_a_body_larger_than_django_accepts_is_413(api_as: Callable[..., ApiClient], settings: SettingsWrapper) -> None:
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    asset = AssetFactory.create()
    client = api_as("reviewer")
    response = client.post(f"{API}/assets/{asset.pk}/approve".removeprefix(API), {"comment": "x" * 2000})
    assert problem_of(response, 413)


def test_a_value_its_schema_refuses_is_422_naming_field_and_value(api_as: Callable[..., ApiClient]) -> None:
    asset = AssetFactory.create()
    client = api_as("reviewer")
    body = problem_of(client.post(f"/assets/{asset.pk}/reject", {"reason": "ugly"}), 422)
    assert body["field"] == "body.reason"
    assert body["value"] == "ugly"
    assert body["errors"][0]["field"] == "body.reason"
    query = problem_of(client.get("/assets", state="nonsense", limit="²"), 422)
    fields = {e["field"]: e["value"] for e in query["errors"]}
    assert fields == {"query.state": "nonsense", "query.limit": "²"}
    path = problem_of(client.get("/assets/0"), 422)
    assert path["field"] == "path.serial" and path["value"] == "0"


def test_a_service_refusal_is_a_problem_with_its_own_status(api_as: Callable[..., ApiClient]) -> None:
    asset = AssetFactory.create(state="approved")
    body = problem_of(api_as("reviewer").post(f"/assets/{asset.pk}/approve", {}), 409)
    assert body["type"].endswith("illegal-transition")
    assert f"Asset {asset.pk} is approved" in body["detail"]


def test_a_session_write_needs_the_csrf_token_and_a_token_write_does_not() -> None:
    user = make_user(roles=("reviewer",), username="sasha")
    asset = AssetFactory.create()
    browser = Client(HTTP_HOST="127.0.0.1", enforce_csrf_checks=True)
    browser.force_login(user)
    assert browser.get(f"{API}/assets").status_code == 200  # reads need no CSRF token
    refused = browser.post(
        f"{API}/assets/{asset.pk}/comments", json.dumps({"text": "hi"}), content_type="application/json"
    )
    assert problem_of(refused, 403)["type"].endswith("csrf-failed")
    browser.get("/tokens/")  # any page sets the CSRF cookie
    csrf = browser.cookies["csrftoken"].value
    accepted = browser.post(
        f"{API}/assets/{asset.pk}/comments",
        json.dumps({"text": "hi"}),
        content_type="application/json",
        headers={"X-CSRFToken": csrf},
    )
    assert accepted.status_code == 201, accepted.content
    with_token = ApiClient(api_token_create(user=user, name="cli").plaintext)
    with_token.client = Client(HTTP_HOST="127.0.0.1", enforce_csrf_checks=True)
    assert with_token.post(f"/assets/{asset.pk}/comments", {"text": "from a script"}).status_code == 201
