"""Publishing: signed renditions written to object storage (a local S3-compatible endpoint),
read back trusted, and removed again by revoke; a clip's MP4 and poster renditions on the local
publish target, found again by `verify`."""

from __future__ import annotations

import io
from typing import Any

import pytest
from PIL import Image

from provenance.config import provenance_config_from_settings
from provenance.credentials import c2pa_read, reader_context
from provenance.errors import StorageError
from provenance.mp4 import mp4_clip, mp4_encode
from provenance.watermark import watermark_read_frames
from review.models import Asset, Publication
from review.services import asset_approve, asset_publish, asset_revoke
from review.states import AssetState
from review.verify import file_verify
from tests.factories import make_user
from tests.fixture_types import SettingsWrapper

pytestmark = pytest.mark.django_db


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
    assert not Publication.objects.exists()


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
    assert watermark_read_frames(list(decoded.frames)).serial == asset.pk
    # The poster: the first frame, a JPEG, transcoded from the clip.
    assert poster_report.state == "trusted", poster_report.validation_codes
    assert "c2pa.transcoded" in poster_report.actions() and "c2pa.watermarked" in poster_report.actions()
    assert Image.open(io.BytesIO(poster_data)).size == (256, 256)

    # verify finds the asset from the published clip (its sha256 is in the manifest store)...
    report = file_verify(data=clip_data, filename="web.mp4")
    assert (report.outcome, report.matched_by) == ("authentic", "sha256")
    assert report.asset is not None and report.asset.serial == asset.pk
    assert report.watermark.serial == asset.pk
    assert report.stored_manifest is not None and report.stored_manifest.kind == "rendition:web"
    # ...and from a copy re-encoded without its credentials, by the watermark in its frames.
    stripped = mp4_encode(list(decoded.frames), decoded.fps, crf=23)
    report = file_verify(data=stripped, filename="shared-copy.mp4")
    assert (report.outcome, report.c2pa.state, report.matched_by) == ("recovered", "none", "watermark")
    assert report.asset is not None and report.asset.serial == asset.pk
