"""HTTP security the settings cannot express alone: the Content-Security-Policy header on every
response, and the page a login refused by the lockout gets (django-axes calls `lockout_response`).

The policy is one fixed header (`GREENLIGHT_CONTENT_SECURITY_POLICY`): the templates load their
script and stylesheet from /static/ and have no inline script or style, so no nonces are needed
and a middleware of a few lines does what a CSP package would.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

# Django's own debug pages (DEBUG on: the URL map of a 404, the traceback of a 500) are styled and
# scripted inline; they keep working in development, and production never shows them.
_DEBUG_PAGE_STATUSES = frozenset({404, 500})


class ContentSecurityPolicyMiddleware:
    """Adds `Content-Security-Policy` to every response that does not set its own."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.policy = str(settings.GREENLIGHT_CONTENT_SECURITY_POLICY)

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if settings.DEBUG and response.status_code in _DEBUG_PAGE_STATUSES:
            return response
        response.headers.setdefault("Content-Security-Policy", self.policy)
        return response


def lockout_response(request: HttpRequest, original_response: HttpResponse | None, credentials: Any) -> HttpResponse:
    """The answer to a login refused because its username and address are locked out: HTTP 429
    with a page that says why and for how long, and `Retry-After` when the lockout ends by itself."""
    cooloff = settings.AXES_COOLOFF_TIME
    response = render(
        request,
        "review/locked_out.html",
        {
            "failure_limit": settings.AXES_FAILURE_LIMIT,
            "cooloff_minutes": int(cooloff.total_seconds() // 60) if cooloff else None,
        },
        status=429,
    )
    if cooloff:
        response["Retry-After"] = str(int(cooloff.total_seconds()))
    return response
