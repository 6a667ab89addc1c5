"""The API itself: one NinjaAPI at /api/v1/, its JSON parser, and every error as problem details.

The framework's own answers are turned into problems here: a body that is not JSON (400), a body
that is not `application/json` (415), one larger than Django accepts (413), a field that fails
its schema (422, naming each field and the value sent), no credentials (401), an unknown object
(404). An exception no table knows is logged and answered 500 as a problem: a test fails on it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.http import Http404, HttpRequest, HttpResponse
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, ValidationError, ValidationErrorContext
from ninja.openapi.docs import Swagger
from ninja.parser import Parser

from api.auth import AUTH
from api.problems import PROBLEM_MEDIA_TYPE, ApiProblem, FieldProblem, problem_from_error, problem_response

logger = logging.getLogger("greenlight.api")


class JsonOnlyParser(Parser):
    """A request body is JSON, sent as `application/json` (415 otherwise, 400 when unreadable)."""

    def parse_body(self, request: HttpRequest) -> Any:
        if request.content_type != "application/json":
            raise ApiProblem(
                415,
                "unsupported-media-type",
                "The request body must be JSON, sent with Content-Type: application/json",
                field="header.Content-Type",
                value=request.content_type or None,
            )
        try:
            data = json.loads(request.body)
        except RequestDataTooBig:
            raise
        except (ValueError, UnicodeDecodeError) as exc:
            raise ApiProblem(400, "malformed-json", f"The request body is not valid JSON ({exc})") from exc
        return data


class GreenlightAPI(NinjaAPI):
    """NinjaAPI whose validation errors keep the value sent (problem details quote it), and whose
    schema names `application/problem+json` for every error answer."""

    def validation_error_from_error_contexts(self, error_contexts: list[ValidationErrorContext]) -> ValidationError:
        errors: list[dict[str, Any]] = []
        for context in error_contexts:
            model = context.model
            for item in context.pydantic_validation_error.errors(include_url=False):
                loc = (model.__ninja_param_source__, *model.__ninja_flatten_map_reverse__.get(item["loc"], item["loc"]))
                errors.append({"loc": loc, "msg": item["msg"], "input": item.get("input")})
        return ValidationError(errors)

    def get_openapi_schema(self, **kwargs: Any) -> Any:
        schema = super().get_openapi_schema(**kwargs)
        for path in schema.get("paths", {}).values():
            for operation in path.values():
                for status, answer in operation.get("responses", {}).items():
                    content = answer.get("content", {})
                    if str(status).startswith(("4", "5")) and "application/json" in content:
                        content[PROBLEM_MEDIA_TYPE] = content.pop("application/json")
        return schema


def _field_name(loc: tuple[Any, ...]) -> str:
    """`('body', 'payload', 'seeds', 0)` -> `body.seeds.0`; `('query', 'state')` -> `query.state`."""
    parts = [str(p) for p in loc]
    if len(parts) > 2 and parts[0] == "body" and parts[1] == "payload":
        parts = [parts[0], *parts[2:]]
    return ".".join(parts)


def _validation_problem(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    fields = [
        FieldProblem(
            field=_field_name(tuple(e.get("loc", ()))), value=_jsonable(e.get("input")), detail=e.get("msg", "")
        )
        for e in exc.errors
    ]
    first = fields[0] if fields else FieldProblem(field="body", detail="invalid")
    detail = "; ".join(f"{f.field}: {f.detail}" for f in fields[:5])
    return problem_response(
        ApiProblem(422, "validation-failed", detail, field=first.field, value=first.value, errors=fields)
    )


def _jsonable(value: Any) -> Any:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return str(value)
    return value


def _http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    cause = exc.__cause__
    if isinstance(cause, ApiProblem):
        return problem_response(cause)
    if isinstance(cause, RequestDataTooBig):
        return _too_big(request, cause)
    if isinstance(exc, AuthenticationError):
        return problem_response(
            ApiProblem(
                401,
                "unauthenticated",
                "Send a token (Authorization: Bearer gl_...) or log in to the dashboard first.",
                headers={"WWW-Authenticate": 'Bearer realm="greenlight"'},
            )
        )
    kind = {400: "bad-request", 403: "forbidden", 404: "not-found", 429: "too-many-requests"}
    return problem_response(ApiProblem(exc.status_code, kind.get(exc.status_code, "error"), exc.message))


def _too_big(request: HttpRequest, exc: Exception) -> HttpResponse:
    return problem_response(ApiProblem(413, "content-too-large", f"The request body is too large ({exc})"))


def _not_found(request: HttpRequest, exc: Exception) -> HttpResponse:
    return problem_response(ApiProblem(404, "not-found", str(exc) or "Not found"))


def _forbidden(request: HttpRequest, exc: Exception) -> HttpResponse:
    return problem_response(ApiProblem(403, "forbidden", str(exc) or "Forbidden"))


def _any_error(request: HttpRequest, exc: Exception) -> HttpResponse:
    problem = exc if isinstance(exc, ApiProblem) else problem_from_error(exc)
    if problem is not None:
        return problem_response(problem)
    logger.error("API %s %s failed", request.method, request.path, exc_info=exc)
    return problem_response(ApiProblem(500, "server-error", "The server failed; its log has the details."))


class ProjectSwagger(Swagger):
    """Swagger UI from the project's own static files (ninja's copy), under the project's CSP."""


api = GreenlightAPI(
    title="Greenlight API",
    version="1",
    description=(
        "Everything the dashboard does, for other systems: the prompt library, campaigns and runs, "
        "the review queue, publication, verify and the audit log. Authenticate with a personal API "
        "token (`Authorization: Bearer gl_...`, made on the API tokens page or with `manage.py "
        "token_create`) or the dashboard's session (writes need the `X-CSRFToken` header). Every "
        "error is RFC 9457 problem details. Creating POSTs take an `Idempotency-Key` header."
    ),
    urls_namespace="api-v1",
    auth=AUTH,
    parser=JsonOnlyParser(),
    docs=ProjectSwagger(settings={"persistAuthorization": True}),
    docs_url="/docs",
    openapi_url="/openapi.json",
)
HANDLERS: list[tuple[type[Exception], Callable[[HttpRequest, Any], HttpResponse]]] = [
    (ValidationError, _validation_problem),
    (HttpError, _http_error),
    (Http404, _not_found),
    (PermissionDenied, _forbidden),
    (RequestDataTooBig, _too_big),
    (Exception, _any_error),
]
for _kind, _handler in HANDLERS:
    api.add_exception_handler(_kind, _handler)
