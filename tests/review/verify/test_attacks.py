"""`file_verify` against someone abusing it: a mark forged with the public default key or on
another picture, one asset's file re-marked as another, an expired certificate over unchanged and
over changed content (and a timestamp that outlives it), and the watermark key kept out of the
database, logs and messages."""

from __future__ import annotations

import io
import logging
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from django.db import connection
from PIL import Image

from infra.dev_certs import dev_chain_create
from provenance.keys import SigningFiles
from provenance.watermark import DEFAULT_KEY, watermark_embed
from review.models import Asset, ManifestRecord
from review.verify import file_verify
from tests.fixture_types import SettingsWrapper
from tests.provenance.marks import installation_key
from tests.provenance.samples import flip_image_byte, photograph, product_shot
from tests.provenance.tsa import LocalTsa, timestamped_files
from tests.review.helpers import master_bytes, reencode
from tests.review.verify.signing import asset_copy_signed

pytestmark = pytest.mark.django_db


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def decoded(data: bytes) -> Image.Image:
    return Image.open(io.BytesIO(data)).convert("RGB")


def test_forged_marks_are_never_reported_as_the_asset_they_name(
    reviewable_assets: list[Asset], caplog: pytest.LogCaptureFixture
) -> None:
    victim, other = reviewable_assets[0], reviewable_assets[1]
    caplog.set_level(logging.DEBUG)

    # 1. The right mark id with the project's public default key: noise to this installation.
    public = png(watermark_embed(product_shot(7), victim.mark_id, key=DEFAULT_KEY))
    report = file_verify(data=public, filename="forged.png")
    assert (report.outcome, report.asset, report.marked_as) == ("nothing", None, None)
    assert not report.watermark.found

    # 2. The asset's row id as the serial, even with the installation's key: no asset carries it.
    by_row = png(watermark_embed(product_shot(8), victim.pk, key=installation_key()))
    report = file_verify(data=by_row, filename="row-id.png")
    assert report.asset is None and report.outcome in ("unknown_serial", "nothing")

    # 3. The right key and mark id on a picture never made here: the mark is named, the asset is not.
    stranger = png(watermark_embed(photograph("astronaut", 512), victim.mark_id, key=installation_key()))
    report = file_verify(data=stranger, filename="stranger.png")
    assert report.watermark.serial == victim.mark_id
    assert report.outcome == "mark_mismatch" and report.asset is None and report.matched_by is None
    assert report.marked_as == victim.pk and report.stored_manifest is None and report.other_manifests == ()
    assert (
        report.verdict == f"no Content Credentials; this file carries asset #{victim.pk}'s mark but is not that image"
    )
    assert report.content_similarity is not None and report.content_similarity < 0.8
    assert victim.prompt not in str(report.to_dict())  # none of the victim's record is shown

    # 4. One asset's file, stripped and re-marked with another asset's mark id: never the other asset.
    copy = decoded(reencode(master_bytes(other), "PNG"))
    remarked = png(watermark_embed(copy, victim.mark_id, key=installation_key()))
    report = file_verify(data=remarked, filename="remarked.png")
    assert report.asset is None or report.asset.serial == other.pk
    assert report.marked_as in (None, victim.pk)
    if report.watermark.serial == victim.mark_id:  # the new mark won over the old one
        assert report.outcome == "mark_mismatch" and report.marked_as == victim.pk

    # The secret is in no log line, no report and no row.
    secret = installation_key()
    assert secret not in caplog.text
    assert secret not in str(report.to_dict())
    with connection.cursor() as cursor:
        for table in (Asset._meta.db_table, ManifestRecord._meta.db_table, "review_auditevent"):
            cursor.execute(f"SELECT CAST(t.* AS text) FROM {table} AS t")  # fixed table names
            dump = "\n".join(row[0] for row in cursor.fetchall())
            assert dump and secret not in dump, table


def test_a_marked_copy_of_an_asset_is_found_only_with_its_picture(reviewable_assets: list[Asset]) -> None:
    asset = reviewable_assets[2]
    # Stripped, cropped by 10% and saved as JPEG: mark and picture both hold.
    image = decoded(master_bytes(asset))
    cut = image.width // 20
    edited = image.crop((cut, cut, image.width - cut, image.height - cut))
    buffer = io.BytesIO()
    edited.save(buffer, "JPEG", quality=85)

    report = file_verify(data=buffer.getvalue(), filename="cropped.jpg")

    assert report.watermark.serial == asset.mark_id
    assert report.outcome == "recovered" and report.asset is not None and report.asset.serial == asset.pk
    assert report.content_similarity is not None and report.content_similarity >= 0.8


# --- An expired certificate is not tampering ---------------------------------------------------


@pytest.fixture
def short_lived(tmp_path: Path, settings: SettingsWrapper, greenlight_settings: SettingsWrapper) -> SigningFiles:
    """A chain whose signer expires six seconds from now, trusted by the settings."""
    files = dev_chain_create(tmp_path / "short", signer_expires=datetime.now(UTC) + timedelta(seconds=6))
    settings.GREENLIGHT_SIGNING_CHAIN, settings.GREENLIGHT_SIGNING_KEY = files.chain, files.key
    settings.GREENLIGHT_TRUST_ANCHORS = files.trust_anchors
    return files


def wait_until_expired(files: SigningFiles) -> None:
    """Let the clock move past the signer's expiry (a real clock: c2pa reads the system's). A
    certificate's notAfter has whole seconds and c2pa still accepts it during that last second."""
    signer_certificate = x509.load_pem_x509_certificates(files.chain.read_bytes())[0]
    expired_from = signer_certificate.not_valid_after_utc + timedelta(seconds=1.5)
    time.sleep(max(0.0, (expired_from - datetime.now(UTC)).total_seconds()))


def test_an_expired_certificate_over_unchanged_content_is_expiry_and_over_changed_content_tampering(
    reviewable_assets: list[Asset], short_lived: SigningFiles
) -> None:
    asset = reviewable_assets[0]
    signed = asset_copy_signed(asset, short_lived, title="expiring")
    assert file_verify(data=signed, filename="fresh.png").outcome == "authentic"

    wait_until_expired(short_lived)
    unchanged = file_verify(data=signed, filename="later.png")
    changed = file_verify(data=flip_image_byte(signed, "image/png"), filename="later-changed.png")

    assert "signingCredential.expired" in unchanged.c2pa.codes and unchanged.c2pa.expired_unchanged
    assert unchanged.outcome == "expired"
    assert unchanged.verdict == (
        f"signed by a certificate that has since expired (content unchanged); asset #{asset.pk} found by its sha256"
    )
    assert unchanged.asset is not None and unchanged.asset.serial == asset.pk
    assert changed.outcome == "tampered" and not changed.c2pa.expired_unchanged
    assert "assertion.dataHash.mismatch" in changed.c2pa.codes
    assert changed.verdict.startswith("tampered: manifest invalid (")


def test_a_timestamped_file_stays_authentic_after_its_certificate_expires(
    reviewable_assets: list[Asset], short_lived: SigningFiles, settings: SettingsWrapper, tmp_path: Path
) -> None:
    asset = reviewable_assets[0]
    with LocalTsa() as tsa:
        files = timestamped_files(short_lived, tsa, tmp_path / "tsa")
        settings.GREENLIGHT_TRUST_ANCHORS, settings.GREENLIGHT_TSA_URL = files.trust_anchors, files.tsa_url
        signed = asset_copy_signed(asset, files, title="timestamped")
        assert tsa.requests == 1
    fresh = file_verify(data=signed, filename="fresh.png")
    assert fresh.outcome == "authentic" and fresh.c2pa.timestamped_at is not None

    wait_until_expired(short_lived)  # no authority is running now: reading needs none
    later = file_verify(data=signed, filename="later.png")
    changed = file_verify(data=flip_image_byte(signed, "image/png"), filename="later-changed.png")

    assert later.outcome == "authentic" and later.c2pa.codes == ()
    assert later.verdict == f"Content Credentials trusted; asset #{asset.pk} found"
    assert later.c2pa.timestamped_at == fresh.c2pa.timestamped_at
    assert changed.outcome == "tampered" and "assertion.dataHash.mismatch" in changed.c2pa.codes
    # An installation that does not trust the authority's root reads the same file as one signed
    # without a timestamp: expired, content unchanged.
    settings.GREENLIGHT_TRUST_ANCHORS = short_lived.trust_anchors
    untrusting = file_verify(data=signed, filename="elsewhere.png")
    assert untrusting.outcome == "expired" and untrusting.c2pa.timestamped_at is None
