"""Who is calling: a personal token (`Authorization: Bearer gl_...`) or the dashboard's session.

A session is a browser's: its writes must carry the CSRF token (the `X-CSRFToken` header), as
the dashboard's forms do, so another site cannot make a logged-in browser write. A bearer token
is not sent by a browser on its own, so it needs none. Either way the endpoint sees the user in
`request.auth` (`actor`), and every permission is checked by the same services the pages call.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User
from django.http import HttpRequest
from ninja.security import APIKeyCookie, HttpBearer
from ninja.utils import check_csrf

from api.problems import ApiProblem
from api.tokens import api_token_authenticate


class TokenAuth(HttpBearer):
    """`Authorization: Bearer gl_<prefix>_<secret>`."""

    openapi_scheme = "bearer"

    def authenticate(self, request: HttpRequest, token: str) -> User | None:
        user = api_token_authenticate(token)
        if user is None:
            raise ApiProblem(401, "invalid-token", "The bearer token is unknown, revoked or expired.")
        request.user = user
        return user


class SessionAuthCsrf(APIKeyCookie):
    """The dashboard's session cookie; a write (POST, PUT, PATCH, DELETE) needs the CSRF token."""

    param_name = "sessionid"

    def __init__(self, *, csrf: bool = True) -> None:
        super().__init__(csrf=False)  # checked below, as a problem rather than ninja's own answer
        self.csrf = csrf  # tells the docs page to send the CSRF token with its requests
        self.enforce_csrf = csrf

    def _get_key(self, request: HttpRequest) -> str | None:
        return request.COOKIES.get(self.param_name)

    def authenticate(self, request: HttpRequest, key: str | None) -> Any:
        user = request.user
        if not user.is_authenticated:
            return None
        if self.enforce_csrf and check_csrf(request) is not None:
            raise ApiProblem(
                403,
                "csrf-failed",
                "A write made with the session cookie needs the CSRF token in the X-CSRFToken header.",
                field="header.X-CSRFToken",
                value=request.headers.get("X-CSRFToken"),
            )
        return user


# Every endpoint: a token, or the session (CSRF checked on writes).
AUTH = [TokenAuth(), SessionAuthCsrf()]
# An upload that changes nothing (verify): the upload handler must be installed before anything
# reads the body, and the CSRF check would read it; a cross-site page cannot read the answer.
AUTH_READ_ONLY_UPLOAD = [TokenAuth(), SessionAuthCsrf(csrf=False)]


def actor(request: HttpRequest) -> User:
    """The authenticated user of an API request."""
    user = request.auth  # type: ignore[attr-defined]
    assert isinstance(user, User)
    return user
