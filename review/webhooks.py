"""Webhooks: JSON POSTs signed with HMAC-SHA256, recorded and retried with backoff.

Events: `asset.published` (an asset's renditions were published), `asset.decided` (an asset's
quorum was met: it moved to approved or rejected) and `run.finished` (a campaign run succeeded,
failed or was cancelled). Every event goes to GREENLIGHT_WEBHOOK_URL (signed with
GREENLIGHT_WEBHOOK_SECRET); `asset.published` also to GREENLIGHT_PUBLISH_WEBHOOK_URL (signed
with GREENLIGHT_PUBLISH_WEBHOOK_SECRET), the publish webhook this project has always sent.

Each event for each receiver is a `WebhookDelivery` row, written in the same transaction as what
it tells of (the audit event), so a receiver never hears of something that rolled back and
nothing committed goes untold. It is sent once that transaction commits; a receiver that does
not answer 2xx is tried again after `BACKOFF` (30 s, 2 min, 10 min, 1 h, 6 h) by
`webhook_deliveries_retry` (`manage.py webhooks_retry`, from a timer), then marked failed.

Receivers check `X-Greenlight-Signature: sha256=<hex>` against
HMAC(secret, f"{X-Greenlight-Timestamp}.{body}") and refuse old timestamps;
`X-Greenlight-Delivery` is the delivery's id (the same on every retry, to drop duplicates).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
import urllib.error
import urllib.request
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from review.audit import AuditAction
from review.models import AuditEvent, WebhookDelivery

logger = logging.getLogger("greenlight.review")
TIMEOUT_SECONDS = 5.0
BACKOFF = (timedelta(seconds=30), timedelta(minutes=2), timedelta(minutes=10), timedelta(hours=1), timedelta(hours=6))
ATTEMPTS_MAX = len(BACKOFF) + 1
PUBLISHED, DECIDED, RUN_FINISHED = "asset.published", "asset.decided", "run.finished"
EVENTS = (PUBLISHED, DECIDED, RUN_FINISHED)


def webhook_signature(secret: str, timestamp: str, body: bytes) -> str:
    """The signature header's value for this body and timestamp."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def _secret_for(url: str) -> str:
    if url == settings.GREENLIGHT_WEBHOOK_URL:
        return str(settings.GREENLIGHT_WEBHOOK_SECRET)
    return str(settings.GREENLIGHT_PUBLISH_WEBHOOK_SECRET)


def _post(delivery: WebhookDelivery) -> tuple[bool, str]:
    body = json.dumps(delivery.payload, sort_keys=True).encode()
    timestamp = str(int(time.time()))
    request = urllib.request.Request(
        delivery.url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "User-Agent": "Greenlight-Webhook/1",
            "X-Greenlight-Event": delivery.event,
            "X-Greenlight-Delivery": str(delivery.pk),
            "X-Greenlight-Timestamp": timestamp,
            "X-Greenlight-Signature": webhook_signature(_secret_for(delivery.url), timestamp, body),
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:
            return 200 <= response.status < 300, f"HTTP {response.status}"
    except urllib.error.HTTPError as exc:
        return False, f"HTTP {exc.code}"
    except (urllib.error.URLError, TimeoutError, OSError, ValueError) as exc:
        return False, f"{type(exc).__name__}: {getattr(exc, 'reason', exc)}"[:300]


def webhook_deliver(delivery: WebhookDelivery, *, now: datetime | None = None) -> WebhookDelivery:
    """Send one delivery and record the outcome: delivered, or its next attempt after the backoff
    (failed once the attempts run out)."""
    delivered, outcome = _post(delivery)
    now = now or timezone.now()
    delivery.attempts += 1
    delivery.last_outcome = outcome
    if delivered:
        delivery.state = WebhookDelivery.State.DELIVERED
        delivery.delivered_at = now
        delivery.next_attempt_at = None
    elif delivery.attempts >= ATTEMPTS_MAX:
        delivery.state = WebhookDelivery.State.FAILED
        delivery.next_attempt_at = None
    else:
        delivery.next_attempt_at = now + BACKOFF[delivery.attempts - 1]
    delivery.save(update_fields=["attempts", "last_outcome", "state", "delivered_at", "next_attempt_at"])
    if not delivered:
        logger.warning("webhook %s %s to %s: %s", delivery.pk, delivery.event, delivery.url, outcome)
    return delivery


def webhook_enqueue(
    *, event: str, payload: dict[str, Any], urls: list[str], asset_id: int | None = None, run_id: int | None = None
) -> list[WebhookDelivery]:
    """Record the event for each receiver in the caller's transaction; send once it commits."""
    deliveries = [
        WebhookDelivery.objects.create(
            event=event,
            url=url,
            payload={"event": event, **payload},
            asset_id=asset_id,
            run_id=run_id,
            next_attempt_at=timezone.now(),
        )
        for url in urls
    ]
    for delivery in deliveries:
        transaction.on_commit(lambda d=delivery: webhook_deliver(d))  # type: ignore[misc]
    return deliveries


def webhook_send(payload: dict[str, Any]) -> tuple[bool, str]:
    """The publish webhook (sent after the publication committed): POST the payload to
    GREENLIGHT_PUBLISH_WEBHOOK_URL, if one is set, recording the delivery; (delivered, detail)."""
    url = settings.GREENLIGHT_PUBLISH_WEBHOOK_URL
    if not url:
        return False, "no webhook configured"
    delivery = WebhookDelivery.objects.create(
        event=PUBLISHED, url=url, payload=payload, asset_id=payload.get("asset"), next_attempt_at=timezone.now()
    )
    delivered = webhook_deliver(delivery)
    return delivered.state == WebhookDelivery.State.DELIVERED, delivered.last_outcome


def webhook_deliveries_retry(*, now: datetime | None = None, limit: int = 500) -> int:
    """Send every pending delivery that is due (oldest first); returns how many were tried. Each
    is locked while it is sent, so two retries at once never send one twice."""
    now = now or timezone.now()
    tried = 0
    while tried < limit:
        with transaction.atomic():
            delivery = (
                WebhookDelivery.objects.select_for_update(skip_locked=True)
                .filter(state=WebhookDelivery.State.PENDING, next_attempt_at__lte=now)
                .order_by("next_attempt_at", "id")
                .first()
            )
            if delivery is None:
                break
            webhook_deliver(delivery, now=now)
        tried += 1
    return tried


# Audit actions that are webhook events, and the event each one is.
EVENT_OF = {
    AuditAction.APPROVED: DECIDED,
    AuditAction.REJECTED: DECIDED,
    AuditAction.PUBLISHED: PUBLISHED,
    AuditAction.RUN_FINISHED: RUN_FINISHED,
    AuditAction.RUN_CANCELLED: RUN_FINISHED,
}


def webhook_for_event(event: AuditEvent) -> list[WebhookDelivery]:
    """Record the webhook an audit event is, if any, for GREENLIGHT_WEBHOOK_URL (called as the
    event is saved, so in its transaction). A decision counts once it moves the asset."""
    url = settings.GREENLIGHT_WEBHOOK_URL
    kind = EVENT_OF.get(event.action)  # type: ignore[call-overload]
    if not url or kind is None:
        return []
    if kind == DECIDED and event.from_state == event.to_state:
        return []  # a vote short of the quorum
    detail = dict(event.detail)
    payload: dict[str, Any] = {
        "at": event.created_at.isoformat(),
        "actor": event.actor.get_username() if event.actor else None,
    }
    run_id = None
    if kind == RUN_FINISHED:
        run_id = detail.get("run")
        payload.update(run=run_id, state=event.to_state, campaign=detail.get("campaign"))
        payload.update({k: detail[k] for k in ("done", "failed", "cancelled") if k in detail})
    else:
        payload.update(asset=event.asset_id, state=event.to_state)
        payload.update({k: detail[k] for k in ("reason", "comment", "renditions") if k in detail})
    return webhook_enqueue(
        event=kind,
        payload=payload,
        urls=[url],
        asset_id=event.asset_id,
        run_id=run_id if isinstance(run_id, int) else None,
    )
