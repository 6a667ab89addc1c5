"""Publication: an approved asset's signed renditions written to the publish target (with their
manifests kept in the manifest store and a webhook sent once it commits), and revoked again."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from prompt_library.parsing import template_from_dict
from provenance.config import provenance_config_from_settings
from provenance.credentials import SignedManifest, reader_context, signed_manifest
from provenance.keys import signer_create
from provenance.media import EXTENSION, MIME
from provenance.renditions import RenditionRequest, rendition_make
from provenance.storage import LocalStorage, publish_storage
from review.audit import AuditAction
from review.errors import PublishRefusedError, ReviewInputError
from review.events import asset_move
from review.intake import manifest_record_build
from review.models import Asset, AuditEvent, ManifestRecord, Publication
from review.roles import PUBLISH, role_require
from review.states import AssetState
from review.webhooks import webhook_send

logger = logging.getLogger("greenlight.review")


@transaction.atomic
def asset_publish(*, asset: Asset, user: User) -> list[Publication]:
    """Write the asset's signed renditions to the publish target; only approved assets.

    Each rendition's manifest goes into the manifest store in the same transaction.

    The refusal is here, not in the view, so nothing that calls this can publish an asset no
    person approved.
    """
    role_require(user, PUBLISH)
    locked = Asset.objects.select_for_update(of=("self",)).select_related("prompt_version", "campaign").get(pk=asset.pk)
    if locked.state != AssetState.APPROVED:
        raise PublishRefusedError(locked.pk, locked.state)
    written = renditions_write(locked)
    publications = Publication.objects.bulk_create(
        [
            Publication(
                asset=locked,
                rendition=w.name,
                path=w.path,
                mime=w.mime,
                width=w.width,
                height=w.height,
                sha256=w.sha256,
                size=w.size,
                published_by=user,
            )
            for w in written
        ]
    )
    ManifestRecord.objects.bulk_create([manifest_record_build(locked, w.manifest) for w in written])
    event = asset_move(
        locked, AssetState.PUBLISHED, AuditAction.PUBLISHED, actor=user, renditions=[w.path for w in written]
    )
    locked.save(update_fields=["state", "updated_at"])
    event.save()
    payload = {
        "event": "asset.published",
        "asset": locked.pk,
        "campaign": locked.campaign.name,
        "published_by": user.get_username(),
        "at": event.created_at.isoformat(),
        "renditions": [
            {"name": w.name, "path": w.path, "mime": w.mime, "width": w.width, "height": w.height, "sha256": w.sha256}
            for w in written
        ],
    }
    # Only once the publication is committed: a receiver must never hear of one that rolled back.
    transaction.on_commit(lambda: _webhook_notify(locked, payload))
    logger.info("published asset %s: %s", locked.pk, ", ".join(w.path for w in written))
    return publications


@transaction.atomic
def asset_revoke(*, asset: Asset, user: User, reason: str) -> Asset:
    """Unpublish: delete the asset's published files and record who did it and why."""
    role_require(user, PUBLISH)
    if not reason.strip():
        raise ReviewInputError("reason", reason, "is empty: revoking needs a reason")
    locked = Asset.objects.select_for_update().get(pk=asset.pk)
    live = list(locked.publications.filter(revoked_at__isnull=True))
    paths = [p.path for p in live]
    event = asset_move(
        locked, AssetState.REVOKED, AuditAction.REVOKED, actor=user, reason=reason.strip(), removed=paths
    )
    renditions_delete(paths)
    locked.publications.filter(pk__in=[p.pk for p in live]).update(revoked_at=timezone.now())
    locked.save(update_fields=["state", "updated_at"])
    event.save()
    logger.info("revoked asset %s: removed %s", locked.pk, ", ".join(paths) or "nothing")
    return locked


def _webhook_notify(asset: Asset, payload: dict[str, Any]) -> None:
    """Send the publish webhook and record the outcome in the asset's history."""
    if not settings.GREENLIGHT_PUBLISH_WEBHOOK_URL:
        return
    delivered, detail = webhook_send(payload)
    if not delivered:
        logger.warning("publish webhook for asset %s failed: %s", asset.pk, detail)
    action = AuditAction.WEBHOOK_DELIVERED if delivered else AuditAction.WEBHOOK_FAILED
    AuditEvent.objects.create(
        asset=asset, action=action, from_state=asset.state, to_state=asset.state, detail={"result": detail}
    )


# --- The renditions ------------------------------------------------------------------------


@dataclass(frozen=True)
class WrittenRendition:
    name: str
    path: str
    mime: str
    width: int
    height: int
    sha256: str
    size: int
    manifest: SignedManifest  # as read back right after signing, for the manifest store


def publish_path(asset: Asset, name: str, fmt: str) -> str:
    """Where a rendition goes under the publish root: campaign folder, serial, rendition name."""
    return f"{asset.campaign.name}/{asset.pk:08d}-{name}.{EXTENSION[fmt]}"


def renditions_write(asset: Asset) -> list[WrittenRendition]:
    """Render, sign and write every rendition of the asset's output spec (master as parent).

    With no renditions in the spec the master itself is published, re-signed as a rendition (a
    clip re-encoded at CRF 18). A clip's renditions are clips (every frame resized and marked
    again) or stills of its first frame (posters). Each rendition is read back after signing: its
    manifest goes to the manifest store.
    """
    config = provenance_config_from_settings()
    master = LocalStorage(config.storage_root).read(asset.file_path)
    output = template_from_dict(asset.prompt_version.spec).output
    requests = [
        RenditionRequest(name=r.name, format=r.format, width=r.width, height=r.height, quality=r.quality)
        for r in output.renditions
    ] or [RenditionRequest(name="master", format=output.format, width=asset.width, height=asset.height, quality=100)]
    target = publish_storage(config.publish_root, config.publish_url, config.publish_options)
    written: list[WrittenRendition] = []
    # Sign every rendition before writing any: a signing failure then publishes nothing.
    with signer_create(config.signing) as signer, reader_context(config.signing) as context:
        made = [
            (
                request,
                rendition_make(
                    master,
                    master_mime=asset.mime,
                    serial=asset.pk,
                    request=request,
                    title=f"{asset.campaign.name} #{asset.pk}",
                    signer=signer,
                    context=context,
                ),
            )
            for request in requests
        ]
        manifests = [
            signed_manifest(data, kind=f"rendition:{request.name}", mime=MIME[request.format], context=context)
            for request, data in made
        ]
    try:
        for (request, data), manifest in zip(made, manifests, strict=True):
            path = publish_path(asset, request.name, request.format)
            sha256 = target.write(path, data)
            written.append(
                WrittenRendition(
                    name=request.name,
                    path=path,
                    mime=MIME[request.format],
                    width=request.width,
                    height=request.height,
                    sha256=sha256,
                    size=len(data),
                    manifest=manifest,
                )
            )
    except BaseException:
        # The publication rolls back; so do the files already written.
        for done in written:
            target.delete(done.path)
        raise
    return written


def renditions_delete(paths: list[str]) -> None:
    """Remove published files from the publish target (missing ones are already gone)."""
    config = provenance_config_from_settings()
    target = publish_storage(config.publish_root, config.publish_url, config.publish_options)
    for path in paths:
        target.delete(path)
