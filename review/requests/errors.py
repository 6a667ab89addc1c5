"""Errors of asset requests (part of the review app's tree, `review.errors`).

ReviewError
└── RequestError              anything refused about an asset request
    ├── BriefRefusedError     a brief with bad fields (.problems: each field, value and problem)
    ├── RequestClosedError    asking more of, or cancelling, a request that is cancelled
    └── RequestForbiddenError a request that is not this user's to see or change
"""

from __future__ import annotations

from dataclasses import dataclass

from review.errors import ReviewError


class RequestError(ReviewError):
    """Base of every asset-request error."""


@dataclass(frozen=True)
class BriefProblem:
    """One bad field of a brief: its name, the value given, and what is wrong with it."""

    field: str
    value: object
    problem: str

    def __str__(self) -> str:
        shown = repr(self.value)
        if len(shown) > 60:
            shown = f"{shown[:59]}…"
        return f"{self.field} {self.problem} (got {shown})"


class BriefRefusedError(RequestError):
    """A brief refused before anything was registered; every bad field is in `problems`."""

    def __init__(self, problems: list[BriefProblem]) -> None:
        self.problems = problems
        first = problems[0]
        self.field = first.field
        self.value = first.value
        super().__init__("; ".join(str(p) for p in problems))


class RequestClosedError(RequestError):
    def __init__(self, request_id: int, why: str) -> None:
        self.request_id = request_id
        self.why = why
        super().__init__(f"Request {request_id} {why}")


class RequestForbiddenError(RequestError):
    def __init__(self, request_id: int, username: str) -> None:
        self.request_id = request_id
        self.username = username
        super().__init__(f"{username} may not see or change request {request_id}: it is another requester's")
