"""/api/v1/: the routers, the schema and the docs page, and problem details for what the
framework answers itself (an unknown path: 404; a method a path does not take: 405)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.urls import URLPattern, URLResolver, re_path

from api.app import api
from api.problems import ApiProblem, problem_response
from api.routers import ROUTERS

for _router in ROUTERS:
    api.add_router("", _router)


def _api_view(view: Callable[..., HttpResponseBase]) -> Callable[..., HttpResponseBase]:
    """The API answers for itself (401, not a redirect to the login page) and says 405 as a problem."""

    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        response = view(request, *args, **kwargs)
        if response.status_code == 405 and not response.get("Content-Type", "").startswith("application/"):
            allowed = response.get("Allow", "")
            refused = problem_response(
                ApiProblem(405, "method-not-allowed", f"{request.method} is not allowed here (allowed: {allowed})")
            )
            refused["Allow"] = allowed
            return refused
        return response

    wrapped.csrf_exempt = True  # type: ignore[attr-defined]  # ninja checks CSRF for session writes
    wrapped.login_required = False  # type: ignore[attr-defined]
    return wrapped


def unknown_path(request: HttpRequest, rest: str = "") -> HttpResponse:
    return problem_response(ApiProblem(404, "not-found", f"No API endpoint at {request.path}"))


unknown_path.csrf_exempt = True  # type: ignore[attr-defined]
unknown_path.login_required = False  # type: ignore[attr-defined]


def api_urls() -> tuple[list[URLPattern | URLResolver], str, str]:
    """The API's URL patterns (for `path("api/v1/", api_urls())`)."""
    patterns, app_name, namespace = api.urls
    wrapped: list[URLPattern | URLResolver] = []
    for pattern in patterns:
        if isinstance(pattern, URLPattern):
            wrapped.append(URLPattern(pattern.pattern, _api_view(pattern.callback), pattern.default_args, pattern.name))
        else:
            wrapped.append(pattern)
    wrapped.append(re_path(r"^(?P<rest>.*)$", unknown_path))
    return wrapped, app_name, namespace


__all__ = ["api_urls"]
