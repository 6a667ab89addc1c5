"""Fixtures for the API's tests: users in each role with a token each, and a client that sends it."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from api.tokens import api_token_create
from tests.factories import make_user
from tests.review.conftest import catalog_assets, published, reviewable_assets  # noqa: F401 (fixtures)

API = "/api/v1"


class ApiClient:
    """Django's test client speaking JSON to /api/v1 with a bearer token (or none)."""

    def __init__(self, token: str | None) -> None:
        self.client = Client(HTTP_HOST="127.0.0.1")
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}

    def get(self, path: str, **params: Any) -> Any:
        return self.client.get(f"{API}{path}", params, headers=self.headers)

    def post(self, path: str, body: Any = None, *, headers: dict[str, str] | None = None, **kwargs: Any) -> Any:
        data = "" if body is None else json.dumps(body)
        return self.client.post(
            f"{API}{path}", data, content_type="application/json", headers={**self.headers, **(headers or {})}, **kwargs
        )


def token_for(user: User) -> str:
    return api_token_create(user=user, name="tests").plaintext


@pytest.fixture
def api_as() -> Callable[..., ApiClient]:
    """`api_as(*roles, username=...)`: a client with a token of a new user in those roles."""

    def make(*roles: str, username: str | None = None) -> ApiClient:
        fields = {"username": username} if username else {}
        return ApiClient(token_for(make_user(roles=roles, **fields)))

    return make


@pytest.fixture
def anonymous() -> ApiClient:
    return ApiClient(None)


def problem_of(response: Any, status: int) -> dict[str, Any]:
    """The response's problem details, checked to be RFC 9457 with this status."""
    assert response.status_code == status, response.content[:500]
    assert response["Content-Type"] == "application/problem+json", response["Content-Type"]
    body: dict[str, Any] = json.loads(response.content)
    assert {"type", "title", "status", "detail"} <= set(body)
    assert body["status"] == status
    assert body["type"].startswith("urn:greenlight:problem:")
    return body
