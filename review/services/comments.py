"""Comments: what anyone with the viewer role says about an asset, kept in its history."""

from __future__ import annotations

from django.contrib.auth.models import User
from django.db import transaction

from review.audit import AuditAction
from review.errors import ReviewInputError
from review.events import audit_event_unmoved
from review.models import Asset, AuditEvent
from review.roles import VIEW, role_require

COMMENT_MAX = 2000  # characters


@transaction.atomic
def asset_comment(*, asset: Asset, user: User, text: str) -> AuditEvent:
    """A comment on an asset, kept in its history (the append-only audit log)."""
    role_require(user, VIEW)
    stripped = text.strip()
    if not stripped:
        raise ReviewInputError("comment", text, "needs some text")
    if len(stripped) > COMMENT_MAX:
        raise ReviewInputError("comment length", len(stripped), f"must be at most {COMMENT_MAX} characters")
    locked = Asset.objects.select_for_update().get(pk=asset.pk)
    event = audit_event_unmoved(locked, AuditAction.COMMENTED, actor=user, comment=stripped)
    event.save()
    return event
