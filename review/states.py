"""Asset states and the one table of legal transitions."""

from __future__ import annotations

from django.db import models

from review.errors import IllegalTransitionError


class AssetState(models.TextChoices):
    PENDING = "pending", "Pending generation"
    FAILED = "failed", "Generation failed"
    GENERATED = "generated", "Generated"
    IN_REVIEW = "in_review", "In review"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"
    PUBLISHED = "published", "Published"
    REVOKED = "revoked", "Revoked"
    CANCELLED = "cancelled", "Generation cancelled"


S = AssetState
TRANSITIONS: dict[str, frozenset[str]] = {
    S.PENDING: frozenset({S.GENERATED, S.FAILED, S.CANCELLED}),
    S.FAILED: frozenset({S.GENERATED, S.FAILED, S.CANCELLED}),
    S.GENERATED: frozenset({S.IN_REVIEW}),
    S.IN_REVIEW: frozenset({S.APPROVED, S.REJECTED}),
    S.APPROVED: frozenset({S.PUBLISHED, S.REVOKED}),
    S.REJECTED: frozenset(),
    S.PUBLISHED: frozenset({S.REVOKED}),
    S.REVOKED: frozenset(),
    # A cancelled run's variants wait, never made, until the run is resumed or run again.
    S.CANCELLED: frozenset({S.PENDING}),
}


def transition_check(*, serial: int | None, from_state: str, to_state: str) -> None:
    """Raise IllegalTransitionError unless `from_state -> to_state` is in the table."""
    allowed = TRANSITIONS.get(from_state, frozenset())
    if to_state not in allowed:
        raise IllegalTransitionError(serial, from_state, to_state, sorted(allowed))
