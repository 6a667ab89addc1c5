"""Selectors: every query a page or the pipeline reads, with its joins done up front."""

from __future__ import annotations

from django.db.models import Count, QuerySet

from review.models import Asset, AuditEvent
from review.states import AssetState

# The queue's tabs, the reviewer's first: every state but `generated`, which lasts only inside
# the hand-over transaction.
QUEUE_STATES = [
    AssetState.IN_REVIEW,
    AssetState.APPROVED,
    AssetState.REJECTED,
    AssetState.PUBLISHED,
    AssetState.REVOKED,
    AssetState.FAILED,
    AssetState.PENDING,
]


def asset_list(*, state: str | None = None, campaign: str | None = None) -> QuerySet[Asset]:
    """Assets for the queue grid, oldest first in review (first come, first reviewed)."""
    qs = Asset.objects.select_related("campaign", "prompt_version__template", "claimed_by")
    if state:
        qs = qs.filter(state=state)
    if campaign:
        qs = qs.filter(campaign__name=campaign)
    return qs.order_by("created_at", "id") if state == AssetState.IN_REVIEW else qs.order_by("-updated_at", "-id")


def asset_state_counts() -> dict[str, int]:
    """Number of assets in each state, for the queue's tabs."""
    counts = dict(Asset.objects.values_list("state").annotate(n=Count("id")).values_list("state", "n"))
    return {state: counts.get(state, 0) for state in QUEUE_STATES}


def asset_get(*, serial: int, history: bool = True) -> Asset:
    """One asset; with `history`, everything its page shows (decisions, events, publications)."""
    qs = Asset.objects.select_related("campaign", "prompt_version__template", "claimed_by")
    if history:
        qs = qs.prefetch_related("decisions__reviewer", "publications", "events__actor")
    return qs.get(pk=serial)


def audit_event_list(*, action: str = "", actor: str = "", serial: int | None = None) -> QuerySet[AuditEvent]:
    """The audit log, newest first, filtered by action, actor's username and asset serial."""
    qs = AuditEvent.objects.select_related("actor", "asset")
    if action:
        qs = qs.filter(action=action)
    if actor:
        qs = qs.filter(actor__username=actor)
    if serial is not None:
        qs = qs.filter(asset_id=serial)
    return qs.order_by("-created_at", "-id")


def audit_actions() -> list[str]:
    """Every action the log holds, for the filter's choices."""
    return sorted(AuditEvent.objects.values_list("action", flat=True).distinct())


def asset_variants(*, asset: Asset) -> QuerySet[Asset]:
    """Every asset made from the same template version and rendered prompt (other seeds),
    including this one, for side-by-side comparison."""
    return (
        Asset.objects.select_related("campaign", "claimed_by")
        .filter(prompt_version_id=asset.prompt_version_id, prompt=asset.prompt)
        .order_by("seed", "id")
    )


def asset_states(*, keys: list[str]) -> dict[str, str]:
    """The state of each asset key that exists (read only; for a run to see what is left)."""
    return dict(Asset.objects.filter(key__in=keys).values_list("key", "state"))
