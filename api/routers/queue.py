"""The review queue: claim the next asset, release it, approve or reject one, decide many; and
publication: publish an approved asset, revoke a published one. The same services as the pages."""

from __future__ import annotations

from typing import Annotated, Any

from django.http import HttpRequest
from ninja import Router, Schema, Status
from pydantic import Field, StringConstraints

from api.auth import actor
from api.idempotency import IdempotencyKey, idempotent
from api.permissions import permission_require
from api.responses import ERRORS_WRITE, errors
from api.routers.assets import Serial, asset_found
from api.schemas import AssetSummary, PublicationOut, asset_summary, publication_out
from review import selectors, services
from review.forms import BULK_MAX
from review.models import ReviewDecision
from review.roles import PUBLISH, REVIEW
from review.services.comments import COMMENT_MAX

router = Router(tags=["queue"])

Comment = Annotated[str, StringConstraints(max_length=COMMENT_MAX)]


def _summary(serial: int) -> AssetSummary:
    return asset_summary(selectors.asset_get(serial=serial, history=False))


@router.post("/queue/claim", response={200: AssetSummary, 204: None, **errors(409)}, summary="Claim the next asset")
def queue_claim(request: HttpRequest) -> Any:
    """Lease the next asset to review to the caller (the one they hold already, if any); 204 when
    nothing waits for them."""
    permission_require(request, REVIEW)
    asset = services.review_task_claim(reviewer=actor(request))
    if asset is None:
        return Status(204, None)
    return Status(200, _summary(asset.pk))


@router.post("/assets/{serial}/release", response={200: AssetSummary, **errors(409)}, summary="Release a claim")
def asset_release(request: HttpRequest, serial: Serial) -> AssetSummary:
    """Give the caller's claim on the asset back to the queue (no change if they hold none)."""
    permission_require(request, REVIEW)
    services.review_task_release(asset=asset_found(serial), reviewer=actor(request))
    return _summary(serial)


class ApproveIn(Schema):
    comment: Comment = ""


class RejectIn(Schema):
    reason: ReviewDecision.Reason
    comment: Comment = ""


@router.post("/assets/{serial}/approve", response={200: AssetSummary, **ERRORS_WRITE}, summary="Approve")
def asset_approve(
    request: HttpRequest, serial: Serial, payload: ApproveIn, idempotency_key: str | None = IdempotencyKey
) -> Any:
    """Approve an asset in review; it moves to approved once its campaign's quorum agrees."""
    permission_require(request, REVIEW)

    def run() -> Status[AssetSummary]:
        services.asset_approve(asset=asset_found(serial), reviewer=actor(request), comment=payload.comment)
        return Status(200, _summary(serial))

    return idempotent(request, key=idempotency_key, body=payload, run=run)


@router.post("/assets/{serial}/reject", response={200: AssetSummary, **ERRORS_WRITE}, summary="Reject")
def asset_reject(
    request: HttpRequest, serial: Serial, payload: RejectIn, idempotency_key: str | None = IdempotencyKey
) -> Any:
    """Reject an asset in review, with a reason code and an optional comment."""
    permission_require(request, REVIEW)

    def run() -> Status[AssetSummary]:
        services.asset_reject(
            asset=asset_found(serial), reviewer=actor(request), reason=payload.reason, comment=payload.comment
        )
        return Status(200, _summary(serial))

    return idempotent(request, key=idempotency_key, body=payload, run=run)


class BulkIn(Schema):
    serials: list[Annotated[int, Field(ge=1, le=10**18 - 1)]] = Field(min_length=1, max_length=BULK_MAX)
    decision: ReviewDecision.Decision
    reason: ReviewDecision.Reason | None = Field(None, description="needed to reject")
    comment: Comment = ""


class Refusal(Schema):
    serial: int
    detail: str


class BulkOut(Schema):
    decided: list[int]
    refused: list[Refusal]


@router.post("/queue/decisions", response={200: BulkOut, **ERRORS_WRITE}, summary="Decide many")
def assets_decide(request: HttpRequest, payload: BulkIn, idempotency_key: str | None = IdempotencyKey) -> Any:
    """Approve or reject many assets; each is decided on its own, and each refusal is listed."""
    permission_require(request, REVIEW)

    def run() -> Status[BulkOut]:
        result = services.assets_decide_bulk(
            serials=payload.serials,
            reviewer=actor(request),
            decision=payload.decision,
            reason=payload.reason or "",
            comment=payload.comment,
        )
        refused = [Refusal(serial=serial, detail=detail) for serial, detail in result.refused]
        return Status(200, BulkOut(decided=result.decided, refused=refused))

    return idempotent(request, key=idempotency_key, body=payload, run=run)


class PublishOut(Schema):
    asset: AssetSummary
    publications: list[PublicationOut]


@router.post("/assets/{serial}/publish", response={201: PublishOut, **ERRORS_WRITE}, summary="Publish")
def asset_publish(request: HttpRequest, serial: Serial, idempotency_key: str | None = IdempotencyKey) -> Any:
    """Write the approved asset's signed renditions to the publish target."""
    permission_require(request, PUBLISH)

    def run() -> Status[PublishOut]:
        user = actor(request)
        publications = services.asset_publish(asset=asset_found(serial), user=user)
        return Status(
            201,
            PublishOut(
                asset=_summary(serial),
                publications=[publication_out(p, published_by=user.get_username()) for p in publications],
            ),
        )

    return idempotent(request, key=idempotency_key, body={"serial": serial}, run=run)


class RevokeIn(Schema):
    reason: Annotated[str, StringConstraints(min_length=1, max_length=500)]


@router.post("/assets/{serial}/revoke", response={200: AssetSummary, **ERRORS_WRITE}, summary="Revoke")
def asset_revoke(request: HttpRequest, serial: Serial, payload: RevokeIn) -> AssetSummary:
    """Withdraw a published asset: its published files are removed, the reason recorded."""
    permission_require(request, PUBLISH)
    services.asset_revoke(asset=asset_found(serial), user=actor(request), reason=payload.reason)
    return _summary(serial)
