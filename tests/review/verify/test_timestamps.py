"""With GREENLIGHT_TSA_URL set, every manifest the pipeline and a publication sign carries a
trusted timestamp (a local RFC 3161 authority stands in for a real one), and verify reports it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from provenance.config import provenance_config_from_settings
from provenance.credentials import c2pa_read, reader_context
from provenance.keys import SigningFiles, signing_files_check
from provenance.storage import LocalStorage
from review.models import Asset, ManifestRecord, Publication
from review.verify import file_verify
from tests.fixture_types import SettingsWrapper
from tests.provenance.tsa import LocalTsa, timestamped_files
from tests.review.helpers import published_bytes

pytestmark = pytest.mark.django_db


@pytest.fixture
def tsa() -> Iterator[LocalTsa]:
    with LocalTsa() as running:
        yield running


@pytest.fixture
def greenlight_settings(
    greenlight_settings: SettingsWrapper, signing_files: SigningFiles, tsa: LocalTsa, tmp_path: Path
) -> SettingsWrapper:
    """The usual settings, with the local timestamp authority set and its root trusted."""
    files = timestamped_files(signing_files, tsa, tmp_path / "tsa")
    greenlight_settings.GREENLIGHT_TRUST_ANCHORS = files.trust_anchors
    greenlight_settings.GREENLIGHT_TSA_URL = files.tsa_url
    return greenlight_settings


def test_every_manifest_the_pipeline_and_a_publication_sign_carries_a_trusted_timestamp(
    published: tuple[Asset, list[Publication]], tsa: LocalTsa, settings: SettingsWrapper
) -> None:
    asset, publications = published
    config = provenance_config_from_settings()
    signing_files_check(config.signing)  # the preflight's own check passes with this authority
    records = list(ManifestRecord.objects.all())
    kinds = {record.kind for record in records}
    assert {"master", "thumbnail"} <= kinds and any(kind.startswith("rendition:") for kind in kinds)

    # Each stored manifest, as read back right after signing, has the authority's trusted timestamp.
    for record in records:
        active = record.store["manifests"][record.label]
        success = {entry["code"] for entry in record.store["validation_results"]["activeManifest"]["success"]}
        assert "timeStamp.trusted" in success and active["signature_info"].get("time"), record.kind
    assert tsa.requests >= len(records) + 1  # one per signed file, and the check's own

    # And each file on disk says so to any reader trusting the authority's root.
    storage = LocalStorage(config.storage_root)
    files = [storage.read(asset.file_path), storage.read(asset.thumb_path)]
    files += [published_bytes(settings, publication) for publication in publications]
    thumbnail_mime = next(record.mime for record in records if record.kind == "thumbnail")
    mimes = [asset.mime, thumbnail_mime, *(publication.mime for publication in publications)]
    with reader_context(config.signing) as context:
        for data, mime in zip(files, mimes, strict=True):
            assert c2pa_read(data, mime=mime, context=context).timestamp() is not None, mime
    report = file_verify(data=files[2], filename="published")
    assert report.outcome == "authentic" and report.c2pa.timestamped_at is not None
