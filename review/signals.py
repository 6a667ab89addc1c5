"""Receivers that put security-relevant events into the append-only audit log: logins, logouts,
failed logins, and every action taken in Django's admin (who changed which record, and how)."""

from __future__ import annotations

from typing import Any

from django.contrib.admin.models import ADDITION, CHANGE, DELETION, LogEntry
from django.contrib.auth.models import User
from django.http import HttpRequest

from review.audit import AuditAction
from review.models import Asset, AuditEvent

_ADMIN_ACTIONS = {
    ADDITION: AuditAction.ADMIN_ADDED,
    CHANGE: AuditAction.ADMIN_CHANGED,
    DELETION: AuditAction.ADMIN_DELETED,
}


def _client(request: HttpRequest | None) -> dict[str, str]:
    if request is None:
        return {}
    return {"ip": request.META.get("REMOTE_ADDR", ""), "user_agent": request.META.get("HTTP_USER_AGENT", "")[:200]}


def logged_in(sender: type, request: HttpRequest | None, user: User, **kwargs: Any) -> None:
    AuditEvent.objects.create(actor=user, action=AuditAction.LOGGED_IN, detail=_client(request))


def logged_out(sender: type, request: HttpRequest | None, user: User | None, **kwargs: Any) -> None:
    if user is not None:
        AuditEvent.objects.create(actor=user, action=AuditAction.LOGGED_OUT, detail=_client(request))


def login_failed(sender: type, credentials: dict[str, Any], request: HttpRequest | None = None, **kwargs: Any) -> None:
    # Django masks the password in `credentials`; only the username is kept.
    username = str(credentials.get("username", ""))[:150]
    AuditEvent.objects.create(action=AuditAction.LOGIN_FAILED, detail={"username": username, **_client(request)})


def admin_logged(sender: type, instance: LogEntry, created: bool, **kwargs: Any) -> None:
    """Django's admin log is editable; its entries are copied into the append-only audit log."""
    if not created:
        return
    content_type = instance.content_type
    asset_id = None
    if (
        content_type is not None
        and content_type.model_class() is Asset
        and instance.object_id
        and instance.action_flag != DELETION
    ):
        asset_id = int(instance.object_id)
    AuditEvent.objects.create(
        asset_id=asset_id,
        actor_id=instance.user_id,
        action=_ADMIN_ACTIONS.get(instance.action_flag, AuditAction.ADMIN_LOGGED),
        detail={
            "model": f"{content_type.app_label}.{content_type.model}" if content_type is not None else "",
            "object_id": instance.object_id or "",
            "object": instance.object_repr,
            "change": instance.get_change_message(),
        },
    )
