"""The shapes the API answers with, shared by the routers, and how each is built from a row."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from ninja import Schema
from pydantic import AfterValidator, Field

from review.models import Asset, AuditEvent, ManifestRecord, Publication, ReviewDecision


def _utc(value: datetime) -> datetime:
    """A date-time as UTC (one without an offset is taken as UTC): PostgreSQL takes offsets of at
    most 15:59, ISO 8601 up to 23:59, and the year 9999 plus an offset has no UTC date."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("is out of range once converted to UTC") from None


Moment = Annotated[datetime, AfterValidator(_utc)]


class AssetSummary(Schema):
    serial: int
    state: str
    campaign: str
    template: str
    template_version: int
    model_name: str
    prompt: str
    seed: int
    width: int
    height: int
    mime: str
    claimed_by: str | None
    lease_expires_at: datetime | None
    safety_flagged: bool = Field(description="the template's safety classifier flagged it: a person must approve it")
    safety_score: float | None = Field(description="the safety classifier's score (0-1), when one ran")
    created_at: datetime
    updated_at: datetime
    url: str = Field(description="this asset in the API")


def asset_summary(asset: Asset) -> AssetSummary:
    """Needs `campaign`, `prompt_version__template` and `claimed_by` selected with the asset."""
    return AssetSummary(
        serial=asset.pk,
        state=asset.state,
        campaign=asset.campaign.name,
        template=asset.prompt_version.template.name,
        template_version=asset.prompt_version.number,
        model_name=asset.model_name,
        prompt=asset.prompt,
        seed=asset.seed,
        width=asset.width,
        height=asset.height,
        mime=asset.mime,
        claimed_by=asset.claimed_by.get_username() if asset.claimed_by_id and asset.claimed_by else None,
        lease_expires_at=asset.lease_expires_at if asset.claimed_by_id else None,
        safety_flagged=asset.safety_flagged,
        safety_score=asset.safety_score,
        created_at=asset.created_at,
        updated_at=asset.updated_at,
        url=f"/api/v1/assets/{asset.pk}",
    )


class EventOut(Schema):
    id: int
    asset: int | None
    action: str
    actor: str | None = Field(description="username; null for the pipeline")
    from_state: str
    to_state: str
    detail: dict[str, Any]
    created_at: datetime


def event_out(event: AuditEvent) -> EventOut:
    """Needs `actor` selected with the event."""
    return EventOut(
        id=event.pk,
        asset=event.asset_id,
        action=event.action_name,
        actor=event.actor.get_username() if event.actor else None,
        from_state=event.from_state,
        to_state=event.to_state,
        detail=event.detail,
        created_at=event.created_at,
    )


class DecisionOut(Schema):
    reviewer: str
    decision: str
    reason: str
    comment: str
    created_at: datetime


def decision_out(decision: ReviewDecision) -> DecisionOut:
    return DecisionOut(
        reviewer=decision.reviewer.get_username(),
        decision=decision.decision,
        reason=decision.reason,
        comment=decision.comment,
        created_at=decision.created_at,
    )


class PublicationOut(Schema):
    rendition: str
    state: str
    path: str
    mime: str
    width: int
    height: int
    sha256: str
    size: int
    published_by: str
    created_at: datetime
    revoked_at: datetime | None
    download: str = Field(description="this rendition's file in the API")


def publication_out(publication: Publication, *, published_by: str) -> PublicationOut:
    return PublicationOut(
        rendition=publication.rendition,
        state=publication.state,
        path=publication.path,
        mime=publication.mime,
        width=publication.width,
        height=publication.height,
        sha256=publication.sha256,
        size=publication.size,
        published_by=published_by,
        created_at=publication.created_at,
        revoked_at=publication.revoked_at,
        download=f"/api/v1/assets/{publication.asset_id}/files/rendition:{publication.rendition}",
    )


class ManifestOut(Schema):
    kind: str
    sha256: str
    mime: str
    label: str
    created_at: datetime


def manifest_out(record: ManifestRecord) -> ManifestOut:
    return ManifestOut(
        kind=record.kind, sha256=record.sha256, mime=record.mime, label=record.label, created_at=record.created_at
    )


class Provenance(Schema):
    key: str = Field(description="hash of what made the asset")
    file_sha256: str
    file_size: int | None
    model_manifest_hash: str
    generation_record: dict[str, Any]
    manifests: list[ManifestOut] = Field(description="every C2PA manifest signed for the asset, as read back")


class AssetDetail(AssetSummary):
    negative_prompt: str
    variables: dict[str, Any]
    steps: int
    guidance: float
    alt_text: str
    error: str
    regenerated_from: int | None
    regenerations: list[int]
    provenance: Provenance
    decisions: list[DecisionOut]
    history: list[EventOut]
    publications: list[PublicationOut]
    files: list[str] = Field(description="the file kinds this asset offers for download")


def asset_detail(asset: Asset) -> AssetDetail:
    """Needs the history prefetched (`selectors.asset_get(history=True)`) and `manifests`."""
    publications = list(asset.publications.all())
    live = [p for p in publications if p.state == Publication.State.PUBLISHED and p.revoked_at is None]
    files = [kind for kind, path in (("master", asset.file_path), ("thumbnail", asset.thumb_path)) if path]
    files += [f"rendition:{p.rendition}" for p in live]
    return AssetDetail(
        **asset_summary(asset).model_dump(),
        negative_prompt=asset.negative_prompt,
        variables=asset.variables,
        steps=asset.steps,
        guidance=asset.guidance,
        alt_text=asset.alt_text,
        error=asset.error,
        regenerated_from=asset.regenerated_from_id,
        regenerations=[a.pk for a in asset.regenerations.all()],
        provenance=Provenance(
            key=asset.key,
            file_sha256=asset.file_sha256,
            file_size=asset.file_size,
            model_manifest_hash=asset.model_manifest_hash,
            generation_record=asset.generation_record,
            manifests=[manifest_out(m) for m in asset.manifests.all()],
        ),
        decisions=[decision_out(d) for d in asset.decisions.all()],
        history=[event_out(e) for e in asset.events.all()],
        publications=[publication_out(p, published_by=p.published_by.get_username()) for p in publications],
        files=files,
    )
