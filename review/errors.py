"""Errors of the review app.

ReviewError                  anything refused by a review service
├── ReviewInputError         a value a user gave that a service refuses (.field, .value)
├── IllegalTransitionError   an asset cannot move from its state to the one asked for
├── AlreadyDecidedError      this reviewer has already decided on this asset
├── PublishRefusedError      publishing an asset that is not approved
├── PublishInProgressError   publishing an asset whose publication is still being written
├── PublicationRolledBackError a publication rolled back (or revoked) while its files were written
├── ClaimedByOtherError      another reviewer holds a live lease on the asset
├── RoleRequiredError        the user lacks the role (permission) the action needs
├── SegregationOfDutiesError a requester deciding on assets of their own request
├── UnknownAssetsError       a hand-over names assets that were never registered
├── AssetRebuildError        a registered asset its template version no longer rebuilds
├── RegenerateRefusedError   regenerating from an asset that is not rejected
├── RunRefusedError          a run cannot do what was asked in its state (.run_id, .state)
└── VerifyRefusedError       a file `verify` will not examine (.reason: empty, too_large,
                             not_supported, unreadable, too_many_pixels)
"""

from __future__ import annotations


class ReviewError(Exception):
    """Base of every review error."""


class ReviewInputError(ReviewError):
    """A value a user gave (a reason code, a count, a comment) that a service refuses; the
    message names the field and the value."""

    def __init__(self, field: str, value: object, problem: str) -> None:
        self.field = field
        self.value = value
        self.problem = problem
        super().__init__(f"{field} {problem} (got {value!r})")


class IllegalTransitionError(ReviewError):
    def __init__(self, serial: int | None, from_state: str, to_state: str, allowed: list[str]) -> None:
        self.serial = serial
        self.from_state = from_state
        self.to_state = to_state
        self.allowed = allowed
        super().__init__(
            f"Asset {serial} is {from_state}: it cannot become {to_state} "
            f"(from {from_state} it can become: {', '.join(allowed) or 'nothing'})"
        )


class AlreadyDecidedError(ReviewError):
    def __init__(self, serial: int, reviewer: str) -> None:
        self.serial = serial
        self.reviewer = reviewer
        super().__init__(f"{reviewer} has already decided on asset {serial}")


class PublishRefusedError(ReviewError):
    def __init__(self, serial: int, state: str) -> None:
        self.serial = serial
        self.state = state
        super().__init__(f"Asset {serial} is {state}: only approved assets can be published")


class PublishInProgressError(ReviewError):
    def __init__(self, serial: int, since: str) -> None:
        self.serial = serial
        self.since = since
        super().__init__(f"Asset {serial} is being published (since {since}): wait for that publication to finish")


class PublicationRolledBackError(ReviewError):
    def __init__(self, serial: int, removed: list[str]) -> None:
        self.serial = serial
        self.removed = removed
        super().__init__(
            f"Asset {serial}'s publication was rolled back or revoked while its files were being written; "
            f"its files were removed ({', '.join(removed) or 'none were left'}): "
            "publish it again if it is still approved"
        )


class UnknownAssetsError(ReviewError):
    def __init__(self, keys: list[str]) -> None:
        self.keys = keys
        super().__init__(f"{len(keys)} asset(s) were never registered: {', '.join(k[:12] for k in keys[:5])}")


class AssetRebuildError(ReviewError):
    def __init__(self, serial: int, key: str) -> None:
        self.serial = serial
        self.key = key
        super().__init__(f"asset {serial}: its template version no longer rebuilds it (key {key[:12]})")


class ClaimedByOtherError(ReviewError):
    def __init__(self, serial: int, holder: str, until: str) -> None:
        self.serial = serial
        self.holder = holder
        self.until = until
        super().__init__(f"Asset {serial} is claimed by {holder} until {until}; pick another asset")


class RoleRequiredError(ReviewError):
    def __init__(self, username: str, permission: str, role: str) -> None:
        self.username = username
        self.permission = permission
        self.role = role
        super().__init__(f"{username} may not do this: it needs the {role} role ({permission})")


class SegregationOfDutiesError(ReviewError):
    def __init__(self, serial: int, username: str) -> None:
        self.serial = serial
        self.username = username
        super().__init__(f"{username} requested asset {serial}'s campaign and cannot also decide on it")


class RegenerateRefusedError(ReviewError):
    def __init__(self, serial: int, state: str) -> None:
        self.serial = serial
        self.state = state
        super().__init__(f"Asset {serial} is {state}: only a rejected asset can be regenerated")


class RunRefusedError(ReviewError):
    def __init__(self, run_id: int, state: str, problem: str) -> None:
        self.run_id = run_id
        self.state = state
        super().__init__(f"Run {run_id} is {state}: {problem}")


class VerifyRefusedError(ReviewError):
    """A file `verify` refuses before examining it, or stops examining; ``reason`` is a stable
    code for the web status (``too_large`` is HTTP 413, ``not_supported`` 415, ``busy``: every
    verify slot taken, 429, ``timeout``: its time budget spent, 503, the others 400)."""

    REASONS = ("empty", "too_large", "not_supported", "unreadable", "too_many_pixels", "busy", "timeout")

    def __init__(self, reason: str, message: str, *, filename: str = "") -> None:
        if reason not in self.REASONS:
            raise ValueError(f"unknown verify refusal reason {reason!r}")
        self.reason = reason
        self.filename = filename
        super().__init__(f"{filename}: {message}" if filename else message)
