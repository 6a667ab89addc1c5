"""One error body everywhere: RFC 9457 problem details (`application/problem+json`).

Every refusal the API makes, its own or the framework's (a body that is not JSON, a field that
fails its schema, a missing token, an unknown path), is a `Problem`: `type` (a URN naming the
kind), `title`, `status`, `detail`, and for a refused value the offending `field` and `value`
(with every refused field in `errors` when there are several). Services' errors become problems
in one table (`problem_from_error`), so an endpoint never chooses a status itself.

Routers raise `ApiProblem`; `problem_response` renders one outside the framework (the URL
catch-all, a method not allowed).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from django.http import HttpResponse
from ninja import Schema
from pydantic import Field

from prompt_library.errors import (
    CampaignExistsError,
    CampaignNotFoundError,
    LibraryFileError,
    PromptLibraryError,
    TemplateVersionNotFoundError,
    VariablesError,
    VersionChangedError,
)
from provenance.errors import ProvenanceError, SigningError, StorageError
from review import errors as review_errors
from review.verify.limits import RETRY_AFTER_SECONDS

logger = logging.getLogger("greenlight.api")
PROBLEM_MEDIA_TYPE = "application/problem+json"
VALUE_SHOWN_MAX = 200  # characters of a refused value quoted back

TITLES = {
    400: "Bad request",
    401: "Authentication required",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Content too large",
    415: "Unsupported media type",
    422: "Unprocessable content",
    429: "Too many requests",
    503: "Service unavailable",
}


class FieldProblem(Schema):
    """One refused field: where it was (`body.seeds.0`, `query.state`, `header.Idempotency-Key`),
    the value sent (null when absent) and what is wrong with it."""

    field: str
    value: Any = None
    detail: str


class Problem(Schema):
    """RFC 9457 problem details."""

    type: str = Field(description="A URN naming the kind of problem, e.g. urn:greenlight:problem:not-found")
    title: str
    status: int
    detail: str
    field: str | None = Field(default=None, description="The offending field, when one value was refused")
    value: Any = Field(default=None, description="The value that was refused")
    errors: list[FieldProblem] | None = None


class ApiProblem(Exception):
    """A refusal rendered as problem details; `kind` is the last part of its type URN."""

    def __init__(
        self,
        status: int,
        kind: str,
        detail: str,
        *,
        field: str | None = None,
        value: Any = None,
        errors: list[FieldProblem] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.status = status
        self.kind = kind
        self.detail = detail
        self.field = field
        self.value = value
        self.errors = errors
        self.headers = headers or {}
        super().__init__(detail)

    def body(self) -> dict[str, Any]:
        problem: dict[str, Any] = {
            "type": f"urn:greenlight:problem:{self.kind}",
            "title": TITLES.get(self.status, "Error"),
            "status": self.status,
            "detail": self.detail,
        }
        if self.field is not None:
            problem["field"] = self.field
            problem["value"] = value_shown(self.value)
        if self.errors:
            problem["errors"] = [e.model_dump() for e in self.errors]
        return problem


def value_shown(value: Any) -> Any:
    """A refused value as the body quotes it: JSON scalars as they are (long text cut short),
    anything else as its JSON text, cut short."""
    if value is None or isinstance(value, bool | int | float):
        return value
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= VALUE_SHOWN_MAX else f"{text[: VALUE_SHOWN_MAX - 1]}…"


def problem_response(problem: ApiProblem) -> HttpResponse:
    """The problem as an HTTP response."""
    response = HttpResponse(
        json.dumps(problem.body(), default=str), status=problem.status, content_type=PROBLEM_MEDIA_TYPE
    )
    for name, value in problem.headers.items():
        response[name] = value
    return response


# Review refusals: the status each kind of refusal answers (checked in MRO order).
REVIEW_STATUS: list[tuple[type[review_errors.ReviewError], int, str]] = [
    (review_errors.RoleRequiredError, 403, "role-required"),
    (review_errors.SegregationOfDutiesError, 403, "segregation-of-duties"),
    (review_errors.ReviewInputError, 422, "invalid-value"),
    (review_errors.ClaimedByOtherError, 409, "claimed-by-other"),
    (review_errors.AlreadyDecidedError, 409, "already-decided"),
    (review_errors.IllegalTransitionError, 409, "illegal-transition"),
    (review_errors.PublishRefusedError, 409, "not-publishable"),
    (review_errors.PublishInProgressError, 409, "publication-in-progress"),
    (review_errors.PublicationRolledBackError, 409, "publication-rolled-back"),
    (review_errors.RegenerateRefusedError, 409, "not-regenerable"),
    (review_errors.ReviewError, 409, "refused"),
]
VERIFY_STATUS = {"too_large": 413, "not_supported": 415, "busy": 429, "timeout": 503}


def problem_from_error(exc: Exception) -> ApiProblem | None:
    """The problem a service's refusal is, or None for an exception that is not a refusal."""
    if isinstance(exc, review_errors.VerifyRefusedError):
        status = VERIFY_STATUS.get(exc.reason, 400)
        headers = {"Retry-After": str(RETRY_AFTER_SECONDS)} if exc.reason == "busy" else {}
        return ApiProblem(status, f"verify-{exc.reason.replace('_', '-')}", str(exc), field="file", headers=headers)
    if isinstance(exc, review_errors.ReviewError):
        for kind, status, slug in REVIEW_STATUS:
            if isinstance(exc, kind):
                if isinstance(exc, review_errors.ReviewInputError):
                    return ApiProblem(status, slug, str(exc), field=exc.field, value=exc.value)
                return ApiProblem(status, slug, str(exc))
    if isinstance(exc, PromptLibraryError):
        return _library_problem(exc)
    if isinstance(exc, ProvenanceError):
        # The server's own files (a stored master, the signing files, the publish target): not
        # the caller's input. The details (paths on the server) go to the log.
        logger.error("provenance failure: %s", exc, exc_info=exc)
        what = PROVENANCE_FAILURES.get(type(exc), "the provenance step failed")
        return ApiProblem(503, "provenance-failed", f"{what} (the server log has the details)")
    return None


PROVENANCE_FAILURES: dict[type[ProvenanceError], str] = {
    StorageError: "a stored or published file could not be read or written",
    SigningError: "the signing files could not be used",
}


def _library_problem(exc: PromptLibraryError) -> ApiProblem:
    if isinstance(exc, CampaignExistsError):
        return ApiProblem(409, "already-exists", str(exc), field="body.name", value=exc.name)
    if isinstance(exc, CampaignNotFoundError):
        return ApiProblem(404, "not-found", str(exc), field="campaign", value=exc.name)
    if isinstance(exc, VersionChangedError):
        return ApiProblem(409, "version-changed", str(exc))
    if isinstance(exc, TemplateVersionNotFoundError):
        return ApiProblem(422, "invalid-value", _without_path(exc), field="template_version", value=exc.number)
    if isinstance(exc, VariablesError):
        name, value = exc.bad if exc.bad is not None else ("variables", exc.given)
        return ApiProblem(422, "invalid-value", str(exc), field=name, value=value)
    if isinstance(exc, LibraryFileError):
        return ApiProblem(422, "invalid-value", exc.problem)
    return ApiProblem(422, "invalid-value", str(exc))


def _without_path(exc: Exception) -> str:
    """A library error's message without the server path it starts with (an API body has no file)."""
    text = str(exc)
    head, sep, tail = text.partition(": ")
    return tail if sep and ("/" in head or head.startswith("<")) else text
