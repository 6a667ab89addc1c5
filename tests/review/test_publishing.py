"""Publishing to object storage: signed renditions written to S3 (a local S3-compatible
endpoint), read back trusted, and removed again by revoke."""

from __future__ import annotations

from typing import Any

import pytest

from pipeline.config import config_from_settings
from pipeline.errors import StorageError
from pipeline.signing import c2pa_read, reader_context
from review.models import Asset, Publication
from review.services import asset_approve, asset_publish, asset_revoke
from review.states import AssetState
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
    with reader_context(config_from_settings().signing) as context:
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
