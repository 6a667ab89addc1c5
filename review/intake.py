"""The pipeline's one door into review: register variants as pending assets, hand their signed
files over into the review queue, record a failed generation, and read what is left to make.

`pipeline/` imports nothing else from `review/`. Every call is idempotent on the asset key, so a
crashed run's batch can be handed over again, by another worker, with nothing lost or doubled.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import IntegrityError, transaction

from prompt_library.models import Campaign, PromptVersion
from prompt_library.selectors import variants_build
from prompt_library.specs import Variant
from provenance.credentials import SignedManifest
from review.audit import AuditAction
from review.errors import AssetRebuildError, UnknownAssetsError
from review.events import asset_move, audit_event_build
from review.models import Asset, AuditEvent, ManifestRecord, queue_position
from review.states import AssetState

# States a run (re)generates: registered and never made, or made and failed.
TO_GENERATE = (AssetState.PENDING, AssetState.FAILED)


@dataclass(frozen=True)
class GeneratedFile:
    """A signed file the pipeline stored for a registered asset (paths relative to storage)."""

    key: str
    file_path: str
    thumb_path: str
    mime: str
    sha256: str
    size: int
    generation_record: dict[str, Any] = field(default_factory=dict)
    # The manifests signed for it (master, thumbnail), as read back: kept in the manifest store.
    manifests: tuple[SignedManifest, ...] = ()
    alt_text: str = ""  # with a captioning model: the description and its caption; "" keeps the variant's


@dataclass(frozen=True)
class AssetRef:
    """An asset's serial and state, as the pipeline needs them."""

    key: str
    serial: int
    state: str

    @property
    def to_generate(self) -> bool:
        """Whether a run should (still) generate it: pending, or failed and retried."""
        return self.state in TO_GENERATE


def assets_register(*, variants: Sequence[Variant], regenerated_from: Asset | None = None) -> dict[str, AssetRef]:
    """Create a pending asset for each variant not yet known, idempotent on the asset key.

    The row's primary key becomes the asset's serial (the watermark payload), so it has to exist
    before the image is watermarked. `regenerated_from` links new rows to the asset they replace.
    """
    keys = [v.key for v in variants]
    for attempt in range(2):
        existing = {a.key: a for a in Asset.objects.filter(key__in=keys).only("id", "key", "state")}
        new = [v for v in variants if v.key not in existing]
        try:
            with transaction.atomic():
                ids = _lookups(new)
                rows = [_asset_row(v, ids) for v in new]
                for row in rows:
                    row.regenerated_from = regenerated_from
                created = Asset.objects.bulk_create(rows) if rows else []
                AuditEvent.objects.bulk_create(
                    [audit_event_build(a, AuditAction.REGISTERED, to_state=a.state) for a in created]
                )
            break
        except IntegrityError:
            # Another run registered some of the same keys at the same moment: read them again.
            if attempt:
                raise
    assets = {a.key: a for a in Asset.objects.filter(key__in=keys).only("id", "key", "state")}
    return {k: AssetRef(key=k, serial=a.pk, state=a.state) for k, a in assets.items()}


def _lookups(variants: Sequence[Variant]) -> dict[tuple[str, str, int], tuple[Campaign, int]]:
    """Campaign and prompt-version id for the variants, one query per distinct pair."""
    out: dict[tuple[str, str, int], tuple[Campaign, int]] = {}
    for v in variants:
        ident = (v.campaign, v.template, v.template_version)
        if ident not in out:
            campaign = Campaign.objects.only("id", "kind", "deadline").get(name=v.campaign)
            version_id = PromptVersion.objects.values_list("id", flat=True).get(
                template__name=v.template, number=v.template_version
            )
            out[ident] = (campaign, version_id)
    return out


def _asset_row(v: Variant, ids: dict[tuple[str, str, int], tuple[Campaign, int]]) -> Asset:
    campaign, version_id = ids[(v.campaign, v.template, v.template_version)]
    priority, deadline = queue_position(campaign)
    return Asset(
        key=v.key,
        campaign_id=campaign.pk,
        queue_priority=priority,
        queue_deadline=deadline,
        prompt_version_id=version_id,
        state=AssetState.PENDING,
        variables=dict(v.variables),
        prompt=v.prompt,
        negative_prompt=v.negative_prompt,
        seed=v.seed,
        steps=v.params.steps,
        guidance=v.params.guidance,
        width=v.output.width,
        height=v.output.height,
        model_name=v.model_name,
        model_manifest_hash=v.model_manifest_hash,
        alt_text=v.alt_text,
    )


@transaction.atomic
def assets_hand_over(*, files: Sequence[GeneratedFile]) -> list[int]:
    """Record stored files and put their assets in the review queue (idempotent).

    Assets that are already past generation are left alone, so handing the same batch over twice
    changes nothing. Each file's signed manifests go into the manifest store in the same
    transaction. Returns the serials that entered the queue.
    """
    by_key = {f.key: f for f in files}
    assets = list(Asset.objects.select_for_update().filter(key__in=by_key).order_by("id"))
    missing = sorted(set(by_key) - {a.key for a in assets})
    if missing:
        raise UnknownAssetsError(missing)
    events: list[AuditEvent] = []
    moved: list[Asset] = []
    for asset in assets:
        if asset.state not in (AssetState.PENDING, AssetState.FAILED):
            continue
        f = by_key[asset.key]
        asset.file_path, asset.thumb_path, asset.mime = f.file_path, f.thumb_path, f.mime
        asset.file_sha256, asset.file_size, asset.generation_record = f.sha256, f.size, f.generation_record
        asset.alt_text = f.alt_text or asset.alt_text
        asset.error = ""
        events.append(asset_move(asset, AssetState.GENERATED, AuditAction.GENERATED, sha256=f.sha256))
        events.append(asset_move(asset, AssetState.IN_REVIEW, AuditAction.SUBMITTED))
        moved.append(asset)
    fields = [
        "file_path",
        "thumb_path",
        "mime",
        "file_sha256",
        "file_size",
        "generation_record",
        "alt_text",
        "error",
        "state",
        "updated_at",
    ]
    Asset.objects.bulk_update(moved, fields)
    AuditEvent.objects.bulk_create(events)
    ManifestRecord.objects.bulk_create(
        [manifest_record_build(asset, m) for asset in moved for m in by_key[asset.key].manifests]
    )
    return [a.pk for a in moved]


def manifest_record_build(asset: Asset, manifest: SignedManifest) -> ManifestRecord:
    return ManifestRecord(
        asset=asset,
        kind=manifest.kind,
        sha256=manifest.sha256,
        mime=manifest.mime,
        label=manifest.label,
        store=manifest.store,
    )


@transaction.atomic
def asset_generation_fail(*, key: str, error: str) -> None:
    """Record that generating an asset failed; it stays visible and a re-run retries it."""
    asset = Asset.objects.select_for_update().get(key=key)
    event = asset_move(asset, AssetState.FAILED, AuditAction.GENERATION_FAILED, error=error[:2000])
    asset.error = error[:10000]
    asset.save(update_fields=["state", "error", "updated_at"])
    event.save()


def keys_to_generate(*, keys: Sequence[str]) -> set[str]:
    """The keys a run still has to generate: never registered, or registered and pending or
    failed (read only; a run calls it before it registers anything)."""
    done = Asset.objects.filter(key__in=keys).exclude(state__in=TO_GENERATE).values_list("key", flat=True)
    return set(keys) - set(done)


def assets_pending_variants(*, serials: Sequence[int]) -> list[tuple[int, Variant]]:
    """The variant behind each registered asset still to be generated (pending or failed), by
    serial, rebuilt from its template version: what a run needs to generate registered assets.

    A rebuilt variant whose key differs from the asset's (its version's content changed under it)
    raises, rather than making a different image under the asset's serial.
    """
    rows = (
        Asset.objects.select_related("campaign", "prompt_version__template")
        .filter(pk__in=serials, state__in=TO_GENERATE)
        .order_by("prompt_version_id", "id")
    )
    out: list[tuple[int, Variant]] = []
    for row in rows:
        (variant,) = variants_build(
            campaign=row.campaign.name, version=row.prompt_version, values=row.variables, seeds=[row.seed]
        )
        if variant.key != row.key:
            raise AssetRebuildError(row.pk, variant.key)
        out.append((row.pk, variant))
    return out
