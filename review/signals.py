"""Receivers that put security-relevant events into the append-only audit log: logins, logouts,
failed logins, lockouts after too many failed logins and their unlocking, and every action taken
in Django's admin (who changed which record, and how)."""

from __future__ import annotations

import ipaddress
from datetime import datetime, timedelta
from typing import Any

from axes.models import AccessAttempt
from django.conf import settings
from django.contrib.admin.models import ADDITION, CHANGE, DELETION, LogEntry
from django.contrib.auth.models import User
from django.http import HttpRequest
from django.utils import timezone

from review.audit import AuditAction
from review.models import Asset, AuditEvent

_ADMIN_ACTIONS = {
    ADDITION: AuditAction.ADMIN_ADDED,
    CHANGE: AuditAction.ADMIN_CHANGED,
    DELETION: AuditAction.ADMIN_DELETED,
}


def client_address(request: HttpRequest) -> str:
    """The client's address: REMOTE_ADDR, or behind GREENLIGHT_PROXY_COUNT reverse proxies the
    address the outermost of them saw (each appends the address it was reached from to
    X-Forwarded-For, so entries further left were written by the client and prove nothing).
    Logins are throttled and audited by this address (settings.AXES_CLIENT_IP_CALLABLE)."""
    proxies = int(getattr(settings, "GREENLIGHT_PROXY_COUNT", 0))
    if proxies > 0:
        forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
        if len(forwarded) >= proxies:
            # Only an address is taken: a header that holds anything else was not written by the
            # proxies counted (fewer of them than configured), and is not trusted.
            try:
                return str(ipaddress.ip_address(forwarded[-proxies]))
            except ValueError:
                pass
    return str(request.META.get("REMOTE_ADDR", ""))


def _client(request: HttpRequest | None) -> dict[str, str]:
    if request is None:
        return {}
    return {"ip": client_address(request), "user_agent": request.META.get("HTTP_USER_AGENT", "")[:200]}


def logged_in(sender: type, request: HttpRequest | None, user: User, **kwargs: Any) -> None:
    AuditEvent.objects.create(actor=user, action=AuditAction.LOGGED_IN, detail=_client(request))


def logged_out(sender: type, request: HttpRequest | None, user: User | None, **kwargs: Any) -> None:
    if user is not None:
        AuditEvent.objects.create(actor=user, action=AuditAction.LOGGED_OUT, detail=_client(request))


def login_failed(sender: type, credentials: dict[str, Any], request: HttpRequest | None = None, **kwargs: Any) -> None:
    # Django masks the password in `credentials`; only the username is kept.
    username = str(credentials.get("username", ""))[:150]
    AuditEvent.objects.create(action=AuditAction.LOGIN_FAILED, detail={"username": username, **_client(request)})


def _lockout_last(*, username: str, ip: str, since: datetime | None) -> AuditEvent | None:
    """The latest lockout or unlock recorded for this username and address (since `since`)."""
    events = AuditEvent.objects.filter(
        action__in=(AuditAction.LOCKED_OUT, AuditAction.UNLOCKED), detail__username=username, detail__ip=ip
    )
    if since is not None:
        events = events.filter(created_at__gte=since)
    return events.order_by("-created_at", "-id").first()


def locked_out(
    sender: object, request: HttpRequest | None, username: str | None, ip_address: str | None, **kwargs: Any
) -> None:
    """django-axes locked out a username and address. It says so again at every refused attempt
    during the lockout (each one restarts the cool-off); those are already failed logins in the
    log, so one lockout is recorded per cool-off period until an unlock."""
    username, ip = str(username or "")[:150], str(ip_address or "")
    cooloff: timedelta | None = settings.AXES_COOLOFF_TIME
    last = _lockout_last(username=username, ip=ip, since=timezone.now() - cooloff if cooloff else None)
    if last is not None and last.action == AuditAction.LOCKED_OUT:
        return
    failures = getattr(request, "axes_failures_since_start", None) if request is not None else None
    AuditEvent.objects.create(
        action=AuditAction.LOCKED_OUT,
        detail={
            **_client(request),
            "username": username,
            "ip": ip,
            "failures": failures if failures is not None else settings.AXES_FAILURE_LIMIT,
            "cooloff_minutes": int(cooloff.total_seconds() // 60) if cooloff else None,
        },
    )


def lockout_cleared(sender: type, instance: AccessAttempt, **kwargs: Any) -> None:
    """A failure counter was deleted: by `manage.py axes_reset` (or axes_reset_username...), in
    the admin (which records who, too), by a successful login, or by axes' clean-up once the
    cool-off passed (on the next login anywhere). If its username and address stand locked out in
    the log, the unlock is recorded, with why: the cool-off had passed, or it was reset."""
    username, ip = str(instance.username or "")[:150], str(instance.ip_address or "")
    cooloff: timedelta | None = settings.AXES_COOLOFF_TIME
    # A lockout still in force was recorded at most one cool-off before the counter's last failure.
    since = instance.attempt_time - cooloff if cooloff else None
    last = _lockout_last(username=username, ip=ip, since=since)
    if last is None or last.action != AuditAction.LOCKED_OUT:
        return
    expired = cooloff is not None and instance.attempt_time + cooloff <= timezone.now()
    AuditEvent.objects.create(
        action=AuditAction.UNLOCKED,
        detail={
            "username": username,
            "ip": ip,
            "reason": "cooloff_expired" if expired else "reset",
            "last_failure": instance.attempt_time.isoformat(),
        },
    )


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
