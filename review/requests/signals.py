"""Signal receivers: a request's notifications are checked when one of its assets or runs is
saved (after the transaction commits), so the requester hears of it without a page view."""

from __future__ import annotations

from typing import Any

from django.db import transaction


def asset_saved(sender: type, instance: Any, created: bool, **kwargs: Any) -> None:
    """A decision (or another state change saved one asset at a time): check its request."""
    if created:
        return
    campaign = instance._state.fields_cache.get("campaign")  # loaded with the asset by most services
    if campaign is not None and campaign.kind != "request":
        return
    campaign_id = instance.campaign_id
    transaction.on_commit(lambda: _check(campaign_id))


def run_saved(sender: type, instance: Any, created: bool, **kwargs: Any) -> None:
    """A run changed: check its request once it has finished."""
    if instance.campaign_id is None or instance.is_open:
        return
    campaign_id = instance.campaign_id
    transaction.on_commit(lambda: _check(campaign_id))


def _check(campaign_id: int) -> None:
    from review.notifications import request_events_check
    from review.requests.models import AssetRequest

    request = AssetRequest.objects.filter(campaign_id=campaign_id).select_related("campaign", "requester").first()
    if request is not None:
        request_events_check(request=request)
