"""Publication: signed renditions written to the publish target (the local folder, or object
storage at a local S3-compatible endpoint), read back trusted, their manifests kept in the
manifest store, and removed again by revoke; a clip's MP4 and poster renditions, found again by
`verify`."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from provenance.config import provenance_config_from_settings
from provenance.credentials import c2pa_read, reader_context
from provenance.errors import StorageError
from provenance.mp4 import mp4_clip, mp4_encode
from provenance.watermark import watermark_read, watermark_read_frames
from review.errors import PublishRefusedError, ReviewInputError
from review.models import Asset, AuditEvent, ManifestRecord, Publication
from review.services import asset_approve, asset_publish, asset_reject, asset_revoke
from review.states import AssetState
from review.verify import file_verify
from tests.factories import make_user
from tests.fixture_types import SettingsWrapper
from tests.provenance.marks import installation_key

pytestmark = pytest.mark.django_db


def actions_of(asset: Asset) -> list[str]:
    return list(asset.events.order_by("id").values_list("action", flat=True))


def test_publishing_an_asset_in_review_is_refused_and_writes_nothing(
    reviewable_assets: list[Asset], settings: SettingsWrapper
) -> None:
    asset = reviewable_assets[0]
    with pytest.raises(
        PublishRefusedError, match=f"Asset {asset.pk} is in_review: only approved assets can be published"
    ):
        asset_publish(asset=asset, user=make_user())
    assert not Path(settings.GREENLIGHT_PUBLISH_ROOT).exists() or not any(
        Path(settings.GREENLIGHT_PUBLISH_ROOT).rglob("*.*")
    )
    assert Publication.objects.count() == 0


def test_publishing_a_rejected_asset_is_refused(reviewable_assets: list[Asset]) -> None:
    asset = asset_reject(asset=reviewable_assets[0], reviewer=make_user(), reason="off_brand")
    with pytest.raises(PublishRefusedError):
        asset_publish(asset=asset, user=make_user())


def test_publishing_an_approved_asset_writes_signed_renditions_with_the_master_as_parent(
    reviewable_assets: list[Asset],
    settings: SettingsWrapper,
) -> None:
    publisher = make_user()
    asset = asset_approve(asset=reviewable_assets[0], reviewer=make_user())
    publications = asset_publish(asset=asset, user=publisher)
    assert [(p.rendition, p.mime, p.width) for p in publications] == [
        ("web", "image/jpeg", 1024),
        ("thumb", "image/webp", 256),
    ]
    config = provenance_config_from_settings()
    with reader_context(config.signing) as context:
        reports = {}
        for publication in publications:
            data = (Path(settings.GREENLIGHT_PUBLISH_ROOT) / publication.path).read_bytes()
            reports[publication.rendition] = (data, c2pa_read(data, mime=publication.mime, context=context))
    for publication in publications:
        data, report = reports[publication.rendition]
        assert report.state == "trusted", report.validation_codes
        assert report.manifest is not None
        assert [i.get("relationship") for i in report.manifest.get("ingredients", [])] == ["parentOf"]
        assert "c2pa.resized" in report.actions()
        image = Image.open(io.BytesIO(data))
        assert image.size == (publication.width, publication.height)
        # The watermark is claimed exactly when it reads back (lossy WebP's 4:2:0 chroma loses it).
        found = watermark_read(image.convert("RGB"), key=installation_key()).serial == asset.mark_id
        assert found == ("c2pa.watermarked" in report.actions())
        if publication.rendition == "web":
            assert found
    published = Asset.objects.get(pk=asset.pk)
    assert published.state == AssetState.PUBLISHED
    assert actions_of(published)[-1] == "published"
    assert set(Publication.objects.filter(asset=asset).values_list("state", flat=True)) == {"published"}


def test_revoke_removes_the_published_files_and_is_recorded(
    reviewable_assets: list[Asset], settings: SettingsWrapper
) -> None:
    publisher = make_user()
    asset = asset_approve(asset=reviewable_assets[0], reviewer=make_user())
    publications = asset_publish(asset=asset, user=publisher)
    files = [Path(settings.GREENLIGHT_PUBLISH_ROOT) / p.path for p in publications]
    assert all(f.is_file() for f in files)
    with pytest.raises(ReviewInputError, match="needs a reason") as refused:
        asset_revoke(asset=asset, user=publisher, reason=" ")
    assert (refused.value.field, refused.value.value) == ("reason", " ")
    revoked = asset_revoke(asset=asset, user=publisher, reason="wrong price on the label")
    assert revoked.state == AssetState.REVOKED
    assert not any(f.exists() for f in files)
    assert all(p.revoked_at is not None for p in Publication.objects.filter(asset=asset))
    event = AuditEvent.objects.filter(asset=asset).latest("id")
    assert (event.action, event.actor, event.detail["reason"]) == ("revoked", publisher, "wrong price on the label")
    assert sorted(event.detail["removed"]) == sorted(p.path for p in publications)


def test_publication_stores_each_rendition_manifest(
    published: tuple[Asset, list[Publication]], greenlight_settings: SettingsWrapper
) -> None:
    asset, publications = published

    kinds = list(ManifestRecord.objects.filter(asset=asset).order_by("id").values_list("kind", flat=True))

    assert kinds == ["master", "thumbnail", "rendition:web", "rendition:thumb"]
    for publication in publications:
        record = ManifestRecord.objects.get(asset=asset, kind=f"rendition:{publication.rendition}")
        assert record.sha256 == publication.sha256 and record.mime == publication.mime
        master_label = ManifestRecord.objects.get(asset=asset, kind="master").label
        assert master_label in record.store["manifests"]  # the master is the rendition's parent


# --- Object storage and clips -----------------------------------------------------------


def test_publishing_to_s3_writes_signed_renditions_and_revoke_removes_them(
    reviewable_assets: list[Asset], greenlight_settings: SettingsWrapper, s3_bucket: dict[str, Any]
) -> None:
    bucket = s3_bucket["bucket"]
    greenlight_settings.GREENLIGHT_PUBLISH_URL = f"s3://{bucket}/catalog"
    greenlight_settings.GREENLIGHT_PUBLISH_STORAGE_OPTIONS = s3_bucket["options"]
    publisher = make_user(roles=("publisher",))
    asset = asset_approve(asset=reviewable_assets[0], reviewer=make_user(roles=("reviewer",)))

    publications = asset_publish(asset=asset, user=publisher)

    fs = s3_bucket["fs"]
    fs.invalidate_cache()
    keys = sorted(fs.find(bucket))
    assert keys == sorted(f"{bucket}/catalog/{p.path}" for p in publications)
    with reader_context(provenance_config_from_settings().signing) as context:
        for publication in publications:
            data = fs.cat_file(f"{bucket}/catalog/{publication.path}")
            assert len(data) == publication.size
            report = c2pa_read(data, mime=publication.mime, context=context)
            assert report.state == "trusted", report.validation_codes
    assert (
        not any(greenlight_settings.GREENLIGHT_PUBLISH_ROOT.rglob("*.*"))
        if greenlight_settings.GREENLIGHT_PUBLISH_ROOT.exists()
        else True
    )

    asset_revoke(asset=asset, user=publisher, reason="price changed")
    fs.invalidate_cache()
    assert fs.find(bucket) == []
    assert Asset.objects.get(pk=asset.pk).state == AssetState.REVOKED
    assert Publication.objects.filter(asset=asset, revoked_at__isnull=True).count() == 0


def test_an_unreachable_publish_target_publishes_nothing_and_keeps_the_asset_approved(
    reviewable_assets: list[Asset], greenlight_settings: SettingsWrapper, s3_endpoint: str
) -> None:
    greenlight_settings.GREENLIGHT_PUBLISH_URL = "s3://bucket-that-does-not-exist"
    greenlight_settings.GREENLIGHT_PUBLISH_STORAGE_OPTIONS = {"endpoint_url": s3_endpoint, "key": "k", "secret": "s"}
    asset = asset_approve(asset=reviewable_assets[0], reviewer=make_user(roles=("reviewer",)))
    with pytest.raises(StorageError, match="cannot write s3://bucket-that-does-not-exist/"):
        asset_publish(asset=asset, user=make_user(roles=("publisher",)))
    assert Asset.objects.get(pk=asset.pk).state == AssetState.APPROVED
    # The intent was recorded before the write, and rolled back when the write failed.
    assert not Publication.objects.exclude(state=Publication.State.ROLLED_BACK).exists()
    assert Publication.objects.filter(asset=asset).count() == 2
    assert actions_of(asset)[-1] == "publication_rolled_back"


def test_publishing_a_clip_writes_its_signed_mp4_and_poster_and_verify_finds_it_from_either(
    reviewable_clip: Asset, greenlight_settings: SettingsWrapper
) -> None:
    publisher = make_user(roles=("publisher",))
    asset = asset_approve(asset=reviewable_clip, reviewer=make_user(roles=("reviewer",)))

    publications = asset_publish(asset=asset, user=publisher)

    assert sorted((p.rendition, p.mime, p.width, p.height) for p in publications) == [
        ("poster", "image/jpeg", 256, 256),
        ("web", "video/mp4", 256, 256),
    ]
    root = greenlight_settings.GREENLIGHT_PUBLISH_ROOT
    web = next(p for p in publications if p.rendition == "web")
    poster = next(p for p in publications if p.rendition == "poster")
    assert web.path == f"{asset.campaign.name}/{asset.pk:08d}-web.mp4"
    clip_data, poster_data = (root / web.path).read_bytes(), (root / poster.path).read_bytes()
    with reader_context(provenance_config_from_settings().signing) as context:
        clip_report = c2pa_read(clip_data, mime="video/mp4", context=context)
        poster_report = c2pa_read(poster_data, mime="image/jpeg", context=context)
    # The web clip: re-encoded and marked again, signed with the master clip as its parent.
    assert clip_report.state == "trusted", clip_report.validation_codes
    assert clip_report.actions() == ["c2pa.opened", "c2pa.transcoded", "c2pa.watermarked"]
    parents = [i for i in (clip_report.manifest or {}).get("ingredients", []) if i.get("relationship") == "parentOf"]
    assert len(parents) == 1 and parents[0]["format"] == "video/mp4"
    decoded = mp4_clip(clip_data)
    assert (len(decoded.frames), decoded.fps, decoded.size) == (8, 8, (256, 256))
    assert watermark_read_frames(list(decoded.frames), key=installation_key()).serial == asset.mark_id
    # The poster: the first frame, a JPEG, transcoded from the clip.
    assert poster_report.state == "trusted", poster_report.validation_codes
    assert "c2pa.transcoded" in poster_report.actions() and "c2pa.watermarked" in poster_report.actions()
    assert Image.open(io.BytesIO(poster_data)).size == (256, 256)

    # verify finds the asset from the published clip (its sha256 is in the manifest store)...
    report = file_verify(data=clip_data, filename="web.mp4")
    assert (report.outcome, report.matched_by) == ("authentic", "sha256")
    assert report.asset is not None and report.asset.serial == asset.pk
    assert report.watermark.serial == asset.mark_id
    assert report.stored_manifest is not None and report.stored_manifest.kind == "rendition:web"
    # ...and from a copy re-encoded without its credentials, by the watermark in its frames.
    stripped = mp4_encode(list(decoded.frames), decoded.fps, crf=23)
    report = file_verify(data=stripped, filename="shared-copy.mp4")
    assert (report.outcome, report.c2pa.state, report.matched_by) == ("recovered", "none", "watermark")
    assert report.asset is not None and report.asset.serial == asset.pk
