"""Publication: an approved asset's signed renditions written to the publish target, and
revoked again; crash-safe, because every publication is recorded before any of its files exists.

A publication goes in four steps:

1. render and sign every rendition in memory (nothing leaves the process yet);
2. commit the intent: one `writing` row per rendition, naming the path it will write and the
   sha256 and size of its bytes;
3. write the files (each write is atomic: a temporary file renamed, or one object PUT);
4. in one transaction, complete every row (`published`), keep the renditions' manifests in the
   manifest store and move the asset to published with its audit event; the webhook goes out
   once that commits.

A process that dies anywhere between 2 and 4 leaves `writing` rows, so a published file is
never unknown to the database: `publications_sweep` (`manage.py publications_sweep`, and the
general `manage.py sweep`) rolls back `writing` rows older than `PUBLISH_GRACE`, removing every
file they name; the asset stays approved and can be published again. Revoke removes the files of
every row that is not rolled back, `writing` ones included.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from prompt_library.parsing import template_from_dict
from provenance.config import provenance_config_from_settings
from provenance.credentials import SignedManifest, reader_context, signed_manifest
from provenance.errors import StorageError
from provenance.keys import signer_create
from provenance.media import EXTENSION, MIME
from provenance.renditions import RenditionRequest, rendition_make
from provenance.storage import LocalStorage, Storage, publish_storage
from provenance.watermark_keys import watermark_keys_load
from review.audit import AuditAction
from review.bulk import rows_insert
from review.errors import (
    PublicationRolledBackError,
    PublishInProgressError,
    PublishRefusedError,
    ReviewInputError,
)
from review.events import asset_move, audit_event_unmoved
from review.intake import manifest_record_build
from review.models import Asset, AuditEvent, Publication
from review.roles import PUBLISH, role_require
from review.states import AssetState
from review.webhooks import webhook_send

logger = logging.getLogger("greenlight.review")

# How long a publication may stay `writing` before the sweeper takes it for abandoned. Its rows
# are committed after every rendition is signed, so `writing` only spans the file writes (seconds,
# even to object storage); a publish still running after this long is taken for dead.
PUBLISH_GRACE = timedelta(minutes=10)

WRITING = Publication.State.WRITING
PUBLISHED = Publication.State.PUBLISHED
ROLLED_BACK = Publication.State.ROLLED_BACK


def asset_publish(*, asset: Asset, user: User) -> list[Publication]:
    """Write the asset's signed renditions to the publish target; only approved assets.

    The steps (render and sign, commit the intent, write, complete) are in the module's
    docstring; each transaction is its own, so call this outside a transaction (a view, a
    command): inside one, the intent would only be committed with the caller's work. A write
    that fails removes what was written and rolls the rows back; a process that dies leaves them
    `writing` for `publications_sweep`.

    The refusal is here, not in the view, so nothing that calls this can publish an asset no
    person approved. An asset whose publication is still being written (a `writing` row younger
    than `PUBLISH_GRACE`) is refused too; older `writing` rows are rolled back first.
    """
    role_require(user, PUBLISH)
    current = Asset.objects.select_related("prompt_version", "campaign").get(pk=asset.pk)
    _publishable_check(current, lock=False)  # refuse before the expensive part; checked again under lock
    renditions = renditions_make(current)
    target = _publish_target()
    rows = _publication_intend(asset=current, user=user, renditions=renditions, target=target)
    try:
        for rendition in renditions:
            target.write(rendition.path, rendition.data)
    except BaseException as exc:
        _publication_abandon(asset=current, rows=rows, renditions=renditions, target=target, user=user, error=exc)
        raise
    return _publication_complete(asset=current, user=user, rows=rows, renditions=renditions, target=target)


@transaction.atomic
def asset_revoke(*, asset: Asset, user: User, reason: str) -> Asset:
    """Unpublish: delete the asset's published files and record who did it and why.

    Every row that is not rolled back counts, so the files of a publication still being written
    (or abandoned by a process that died) go too; those rows become rolled back, and the
    publishing process, if it still runs, finds them so and removes whatever it writes after.
    """
    role_require(user, PUBLISH)
    if not reason.strip():
        raise ReviewInputError("reason", reason, "is empty: revoking needs a reason")
    locked = Asset.objects.select_for_update().get(pk=asset.pk)
    live = list(
        locked.publications.select_for_update()
        .exclude(state=ROLLED_BACK)
        .filter(revoked_at__isnull=True)
        .order_by("pk")
    )
    paths = [p.path for p in live]
    writing = [p.pk for p in live if p.state == WRITING]
    detail: dict[str, Any] = {"rolled_back": writing} if writing else {}
    event = asset_move(
        locked, AssetState.REVOKED, AuditAction.REVOKED, actor=user, reason=reason.strip(), removed=paths, **detail
    )
    renditions_delete(paths)
    now = timezone.now()
    locked.publications.filter(pk__in=[p.pk for p in live if p.state != WRITING]).update(revoked_at=now)
    locked.publications.filter(pk__in=writing).update(revoked_at=now, state=ROLLED_BACK)
    locked.save(update_fields=["state", "updated_at"])
    event.save()
    logger.info("revoked asset %s: removed %s", locked.pk, ", ".join(paths) or "nothing")
    return locked


# --- The sweeper --------------------------------------------------------------------------


@dataclass(frozen=True)
class PublicationSweep:
    """What one sweep did: the publication rows it rolled back, their assets (each still
    approved), the files it removed from the publish target; the assets it left for the next
    sweep because another transaction held them, or because the target refused a removal."""

    rolled_back: tuple[int, ...] = ()
    assets: tuple[int, ...] = ()
    removed: tuple[str, ...] = ()
    busy: tuple[int, ...] = ()
    failed: tuple[int, ...] = ()


def publications_sweep(*, grace: timedelta = PUBLISH_GRACE, now: datetime | None = None) -> PublicationSweep:
    """Roll back every publication still `writing` `grace` after its intent was committed.

    Such a publication was abandoned by a process that died (or hung) between committing its
    intent and completing it: some, all or none of its files exist. Rolling it back removes each
    file it names that exists on the publish target (folder or object storage), marks its rows
    rolled back and records that in the asset's history; the asset stays approved and can be
    published again. Completing it instead would need the manifests the dead process read back
    and a publisher who sees the outcome; publishing again is one click and says what happened.

    Each asset is swept in its own transaction under its row lock, so a publication being
    completed or revoked right now is never touched (its asset is skipped, `busy`). The grace
    keeps a live publish from being swept.
    """
    cutoff = (now or timezone.now()) - grace
    serials = sorted(
        set(Publication.objects.filter(state=WRITING, created_at__lte=cutoff).values_list("asset_id", flat=True))
    )
    if not serials:
        return PublicationSweep()
    target = _publish_target()
    rolled_back: list[int] = []
    assets: list[int] = []
    removed: list[str] = []
    busy: list[int] = []
    failed: list[int] = []
    for serial in serials:
        try:
            with transaction.atomic():
                locked = Asset.objects.select_for_update(of=("self",), skip_locked=True).filter(pk=serial).first()
                if locked is None:
                    busy.append(serial)
                    continue
                rows = list(
                    locked.publications.select_for_update().filter(state=WRITING, created_at__lte=cutoff).order_by("pk")
                )
                if not rows:
                    continue  # completed or revoked since the query above
                gone = _rows_roll_back(
                    locked, rows, target, actor=None, reason=f"still writing {grace} after it began: abandoned"
                )
        except (StorageError, OSError) as exc:
            logger.warning("sweep: asset %s's abandoned publication is kept for the next sweep: %s", serial, exc)
            failed.append(serial)
            continue
        rolled_back += [r.pk for r in rows]
        assets.append(serial)
        removed += gone
    if assets:
        logger.info("sweep: rolled back abandoned publications of assets %s", ", ".join(map(str, assets)))
    return PublicationSweep(tuple(rolled_back), tuple(assets), tuple(removed), tuple(busy), tuple(failed))


# --- The steps of a publication -----------------------------------------------------------


def _publishable_check(asset: Asset, *, lock: bool) -> list[Publication]:
    """Refuse an asset that is not approved, or whose publication is still being written; return
    its abandoned `writing` rows (older than the grace), which the caller rolls back."""
    if asset.state != AssetState.APPROVED:
        raise PublishRefusedError(asset.pk, asset.state)
    query = Publication.objects.filter(asset=asset, state=WRITING).order_by("pk")
    writing = list(query.select_for_update() if lock else query)
    cutoff = timezone.now() - PUBLISH_GRACE
    fresh = [p.created_at for p in writing if p.created_at > cutoff]
    if fresh:
        raise PublishInProgressError(asset.pk, min(fresh).isoformat(timespec="seconds"))
    return writing


def _publication_intend(
    *, asset: Asset, user: User, renditions: Sequence[SignedRendition], target: Storage
) -> list[Publication]:
    """Commit one `writing` row per rendition before any file is written."""
    with transaction.atomic():
        locked = Asset.objects.select_for_update(of=("self",)).get(pk=asset.pk)
        abandoned = _publishable_check(locked, lock=True)
        if abandoned:
            _rows_roll_back(locked, abandoned, target, actor=user, reason="abandoned: found by the next publish")
        rows = [
            Publication(
                asset=locked,
                rendition=r.name,
                path=r.path,
                mime=r.mime,
                width=r.width,
                height=r.height,
                sha256=r.sha256,
                size=len(r.data),
                published_by=user,
                state=WRITING,
            )
            for r in renditions
        ]
        rows_insert(rows)
        return rows


def _publication_complete(
    *, asset: Asset, user: User, rows: list[Publication], renditions: Sequence[SignedRendition], target: Storage
) -> list[Publication]:
    """Every file is written: complete the rows, keep the manifests, move the asset to published.

    Unless the sweeper or a revoke rolled the rows back meanwhile: then this publication's own
    files (those still holding its bytes) are removed and the publisher is told.
    """
    ids = [r.pk for r in rows]
    with transaction.atomic():
        locked = Asset.objects.select_for_update(of=("self",)).select_related("campaign").get(pk=asset.pk)
        current = list(Publication.objects.select_for_update().filter(pk__in=ids).order_by("pk"))
        intact = locked.state == AssetState.APPROVED and [p.state for p in current] == [WRITING] * len(ids)
        if intact:
            Publication.objects.filter(pk__in=ids).update(state=PUBLISHED)
            rows_insert([manifest_record_build(locked, r.manifest) for r in renditions])
            paths = [r.path for r in renditions]
            event = asset_move(locked, AssetState.PUBLISHED, AuditAction.PUBLISHED, actor=user, renditions=paths)
            locked.save(update_fields=["state", "updated_at"])
            event.save()
            payload = _webhook_payload(locked, user, event, renditions)
            # Only once the publication is committed: a receiver must never hear of one that rolled back.
            transaction.on_commit(lambda: _webhook_notify(locked, payload))
    if not intact:
        raise PublicationRolledBackError(asset.pk, _own_files_remove(target, renditions))
    for publication in current:
        publication.state = PUBLISHED
    logger.info("published asset %s: %s", asset.pk, ", ".join(r.path for r in renditions))
    return current


def _publication_abandon(
    *,
    asset: Asset,
    rows: list[Publication],
    renditions: Sequence[SignedRendition],
    target: Storage,
    user: User,
    error: BaseException,
) -> None:
    """A write failed: remove what this publication wrote and roll its rows back. Whatever this
    cannot do (the target or the database gone too) the sweeper finishes."""
    try:
        removed = _own_files_remove(target, renditions)
        with transaction.atomic():
            locked = Asset.objects.select_for_update(of=("self",)).get(pk=asset.pk)
            still = list(Publication.objects.select_for_update().filter(pk__in=[r.pk for r in rows], state=WRITING))
            if still:
                _rows_mark_rolled_back(locked, still, actor=user, removed=removed, reason=f"writing failed: {error}")
    except Exception:
        logger.exception("publication of asset %s could not be rolled back now; the sweeper will", asset.pk)


def _rows_roll_back(
    asset: Asset, rows: list[Publication], target: Storage, *, actor: User | None, reason: str
) -> list[str]:
    """Remove every file `rows` name from the target and mark them rolled back; returns the paths
    removed. The caller holds the asset's row lock in its transaction: while these rows are
    `writing`, no other publication of the asset is (a publish refuses or rolls them back first),
    so every file at their paths is theirs."""
    removed = [r.path for r in rows if target.exists(r.path)]
    for path in removed:
        target.delete(path)
    _rows_mark_rolled_back(asset, rows, actor=actor, removed=removed, reason=reason)
    return removed


def _rows_mark_rolled_back(
    asset: Asset, rows: list[Publication], *, actor: User | None, removed: list[str], reason: str
) -> None:
    Publication.objects.filter(pk__in=[r.pk for r in rows]).update(state=ROLLED_BACK)
    audit_event_unmoved(
        asset,
        AuditAction.PUBLICATION_ROLLED_BACK,
        actor=actor,
        publications=[r.pk for r in rows],
        removed=removed,
        reason=reason,
    ).save()
    logger.warning("rolled back publication of asset %s (%s): removed %s", asset.pk, reason, removed or "nothing")


def _own_files_remove(target: Storage, renditions: Sequence[SignedRendition]) -> list[str]:
    """Remove the files that still hold this publication's bytes; returns their paths. A file at
    the same path with other bytes belongs to a later publication of the asset and stays."""
    removed = []
    for rendition in renditions:
        if (
            target.exists(rendition.path)
            and hashlib.sha256(target.read(rendition.path)).hexdigest() == rendition.sha256
        ):
            target.delete(rendition.path)
            removed.append(rendition.path)
    return removed


def _webhook_payload(
    asset: Asset, user: User, event: AuditEvent, renditions: Sequence[SignedRendition]
) -> dict[str, Any]:
    return {
        "event": "asset.published",
        "asset": asset.pk,
        "campaign": asset.campaign.name,
        "alt_text": asset.alt_text,  # the description for screen readers travels with the file
        "published_by": user.get_username(),
        "at": event.created_at.isoformat(),
        "renditions": [
            {"name": r.name, "path": r.path, "mime": r.mime, "width": r.width, "height": r.height, "sha256": r.sha256}
            for r in renditions
        ],
    }


def _webhook_notify(asset: Asset, payload: dict[str, Any]) -> None:
    """Send the publish webhook and record the outcome in the asset's history."""
    if not settings.GREENLIGHT_PUBLISH_WEBHOOK_URL:
        return
    delivered, detail = webhook_send(payload)
    if not delivered:
        logger.warning("publish webhook for asset %s failed: %s", asset.pk, detail)
    action = AuditAction.WEBHOOK_DELIVERED if delivered else AuditAction.WEBHOOK_FAILED
    audit_event_unmoved(asset, action, result=detail).save()


# --- The renditions ------------------------------------------------------------------------


@dataclass(frozen=True)
class SignedRendition:
    """One rendition, signed and read back, not yet written."""

    name: str
    path: str
    mime: str
    width: int
    height: int
    data: bytes = field(repr=False)
    sha256: str
    manifest: SignedManifest  # as read back right after signing, for the manifest store


def publish_path(asset: Asset, name: str, fmt: str) -> str:
    """Where a rendition goes under the publish root: campaign folder, serial, rendition name."""
    return f"{asset.campaign.name}/{asset.pk:08d}-{name}.{EXTENSION[fmt]}"


def renditions_make(asset: Asset) -> list[SignedRendition]:
    """Render and sign every rendition of the asset's output spec (master as parent), in memory.

    With no renditions in the spec the master itself is published, re-signed as a rendition (a
    clip re-encoded at CRF 18). A clip's renditions are clips (every frame resized and marked
    again) or stills of its first frame (posters). Each rendition is read back after signing: its
    manifest goes to the manifest store. Every one is signed before any is written, so a signing
    failure publishes nothing and records nothing.
    """
    config = provenance_config_from_settings()
    master = LocalStorage(config.storage_root).read(asset.file_path)
    output = template_from_dict(asset.prompt_version.spec).output
    requests = [
        RenditionRequest(name=r.name, format=r.format, width=r.width, height=r.height, quality=r.quality)
        for r in output.renditions
    ] or [RenditionRequest(name="master", format=output.format, width=asset.width, height=asset.height, quality=100)]
    made: list[SignedRendition] = []
    mark_key = watermark_keys_load(config.watermark_keys).current  # renditions are marked again with it
    with signer_create(config.signing) as signer, reader_context(config.signing) as context:
        for request in requests:
            data = rendition_make(
                master,
                master_mime=asset.mime,
                serial=asset.mark_id,
                mark_key=mark_key,
                request=request,
                title=f"{asset.campaign.name} #{asset.pk}",
                signer=signer,
                context=context,
            )
            mime = MIME[request.format]
            made.append(
                SignedRendition(
                    name=request.name,
                    path=publish_path(asset, request.name, request.format),
                    mime=mime,
                    width=request.width,
                    height=request.height,
                    data=data,
                    sha256=hashlib.sha256(data).hexdigest(),
                    manifest=signed_manifest(data, kind=f"rendition:{request.name}", mime=mime, context=context),
                )
            )
    return made


def renditions_delete(paths: list[str]) -> None:
    """Remove published files from the publish target (missing ones are already gone)."""
    target = _publish_target()
    for path in paths:
        target.delete(path)


def _publish_target() -> Storage:
    """The publish target the settings name: a local folder, or object storage through fsspec."""
    config = provenance_config_from_settings()
    return publish_storage(config.publish_root, config.publish_url, config.publish_options)
