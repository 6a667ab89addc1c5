"""Webhook deliveries: every event sent to a receiver, and how its delivery went."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.http import HttpRequest
from ninja import Query, Router, Schema
from pydantic import Field

from api.pagination import Page, PageParams, keyset_page
from api.permissions import permission_require
from api.responses import ERRORS_READ
from review.models import WebhookDelivery
from review.roles import AUDIT

router = Router(tags=["webhooks"])


class DeliveryOut(Schema):
    id: int
    event: str
    url: str
    state: str
    attempts: int
    next_attempt_at: datetime | None
    last_outcome: str
    asset: int | None
    run: int | None
    payload: dict[str, Any]
    created_at: datetime
    delivered_at: datetime | None


def delivery_out(d: WebhookDelivery) -> DeliveryOut:
    return DeliveryOut(
        id=d.pk,
        event=d.event,
        url=d.url,
        state=d.state,
        attempts=d.attempts,
        next_attempt_at=d.next_attempt_at,
        last_outcome=d.last_outcome,
        asset=d.asset_id,
        run=d.run_id,
        payload=d.payload,
        created_at=d.created_at,
        delivered_at=d.delivered_at,
    )


class DeliveryFilters(Schema):
    event: str | None = Field(None, max_length=40, description="asset.published, asset.decided or run.finished")
    state: WebhookDelivery.State | None = None


@router.get("/webhook-deliveries", response={200: Page[DeliveryOut], **ERRORS_READ}, summary="Webhook deliveries")
def deliveries_list(request: HttpRequest, filters: Query[DeliveryFilters], page: Query[PageParams]) -> dict[str, Any]:
    """Every webhook event sent (or being retried), newest first, with its outcome."""
    permission_require(request, AUDIT)
    qs = WebhookDelivery.objects.all()
    if filters.event:
        qs = qs.filter(event=filters.event)
    if filters.state:
        qs = qs.filter(state=filters.state)
    return keyset_page(qs, page=page, field="id", dated=False, item=delivery_out)
