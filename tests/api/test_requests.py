"""The requests API: a brief submitted (every bad field in problem details), a requester's own
requests only, progress, ask for more, cancel, and the approved zip; idempotent submission."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

from review.models import Asset
from review.requests.models import AssetRequest
from tests.api.conftest import ApiClient, problem_of, token_for
from tests.factories import make_user
from tests.review.requests.conftest import library, submitted  # noqa: F401 (fixtures)

pytestmark = pytest.mark.django_db


def brief(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "template": "catalog-hero",
        "values": {"product": ["mug", "lamp"], "scene": ["a table"], "style": ["studio light"]},
        "variants_per_combination": 1,
        "renditions": ["web"],
        "deadline": (timezone.now() + timedelta(days=1)).isoformat(),
        "notes": "label readable",
    }
    return body | overrides


@pytest.fixture
def maria(library: Path) -> ApiClient:  # noqa: F811 (the imported fixture)
    return ApiClient(token_for(make_user(username="maria", roles=("requester",))))


def test_a_requester_submits_follows_and_cancels_a_request(maria: ApiClient) -> None:
    sent = brief()
    response = maria.post("/requests", sent, headers={"Idempotency-Key": "brief-1"})
    assert response.status_code == 201, response.content.decode()
    body = response.json()
    assert body["requester"] == "maria" and body["template_version"] == 1 and body["total"] == 2
    assert body["counts"]["pending"] == 2 and body["finished"] is False
    again = maria.post("/requests", sent, headers={"Idempotency-Key": "brief-1"})
    assert again.status_code == 201 and again.json()["id"] == body["id"]
    assert AssetRequest.objects.count() == 1  # the same key, the same answer, one request
    listing = maria.get("/requests").json()
    assert [r["id"] for r in listing["items"]] == [body["id"]]
    more = maria.post(f"/requests/{body['id']}/more", {"more_seeds": 1})
    assert problem_of(more, 409)["detail"].endswith("ask for more once its run has finished")
    cancelled = maria.post(f"/requests/{body['id']}/cancel")
    assert cancelled.status_code == 200 and cancelled.json()["cancelled_at"] is not None
    assert cancelled.json()["counts"]["cancelled"] == 2
    archive = zipfile.ZipFile(io.BytesIO(b"".join(maria.get(f"/requests/{body['id']}/approved.zip").streaming_content)))
    assert sorted(archive.namelist()) == ["README.txt", "manifest.csv"]


@pytest.mark.parametrize(
    ("change", "field", "value"),
    [
        ({"template": "nope"}, "body.template", "nope"),
        (
            {"values": {"product": ["mug"], "scene": ["x"], "style": ["y"], "colour": ["red"]}},
            "body.values.colour",
            None,
        ),
        ({"variants_per_combination": 49}, "body.variants_per_combination", 49),
        ({"renditions": ["poster"]}, "body.renditions", "poster"),
        ({"deadline": "2020-01-01T00:00:00+00:00"}, "body.deadline", None),
        ({"notes": "a\x00b"}, "body.notes", "a\x00b"),
        ({"template": "hero\x00"}, "body.template", "hero\x00"),
        ({"deadline": "2030-01-01T00:00:00"}, "body.deadline", None),  # no time zone
    ],
)
def test_a_bad_brief_is_422_naming_each_field_and_value(
    maria: ApiClient, change: dict[str, Any], field: str, value: object
) -> None:
    problem = problem_of(maria.post("/requests", brief(**change)), 422)
    fields = {e["field"]: e["value"] for e in problem["errors"]}
    assert field in fields, problem
    if value is not None:
        assert fields[field] == value
    assert not Asset.objects.exists()


def test_another_requesters_request_is_not_found_and_a_reviewer_cannot_ask(
    maria: ApiClient, api_as: Callable[..., ApiClient]
) -> None:
    made = maria.post("/requests", brief()).json()
    otto = api_as("requester", username="otto")
    for path in (f"/requests/{made['id']}", f"/requests/{made['id']}/approved.zip"):
        problem_of(otto.get(path), 404)
    problem_of(otto.post(f"/requests/{made['id']}/cancel"), 404)
    assert otto.get("/requests").json()["items"] == []
    reviewer = api_as("reviewer", username="rex")
    assert problem_of(reviewer.post("/requests", brief()), 403)["type"].endswith("role-required")
    assert api_as("admin", username="ada").get(f"/requests/{made['id']}").status_code == 200
