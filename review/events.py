"""Audit events and state moves: the two steps every service that changes an asset shares.

A service checks and applies a move in memory with `asset_move`, then saves the asset and the
returned event in its own transaction, so the audit log and the asset table never disagree.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User

from review.audit import AuditAction
from review.models import Asset, AuditEvent
from review.states import transition_check


def audit_event_build(
    asset: Asset | None,
    action: AuditAction,
    *,
    actor: User | None = None,
    from_state: str = "",
    to_state: str = "",
    **detail: Any,
) -> AuditEvent:
    """An unsaved audit event; `detail` is kept as JSON."""
    return AuditEvent(asset=asset, actor=actor, action=action, from_state=from_state, to_state=to_state, detail=detail)


def audit_event_unmoved(asset: Asset, action: AuditAction, *, actor: User | None = None, **detail: Any) -> AuditEvent:
    """An unsaved audit event for something that happened to an asset without moving it (a
    comment, a vote short of the quorum, a webhook): its state before and after is its state now."""
    return audit_event_build(asset, action, actor=actor, from_state=asset.state, to_state=asset.state, **detail)


def asset_move(
    asset: Asset, to_state: str, action: AuditAction, *, actor: User | None = None, **detail: Any
) -> AuditEvent:
    """Check and apply one transition in memory; the caller saves the asset and the event."""
    transition_check(serial=asset.pk, from_state=asset.state, to_state=to_state)
    event = audit_event_build(asset, action, actor=actor, from_state=asset.state, to_state=to_state, **detail)
    asset.state = to_state
    return event
