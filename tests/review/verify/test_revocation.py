"""`file_verify` after `signing_keys_revoke`: a file signed by a revoked certificate is "revoked"
(content unchanged) or "tampered" (content changed), a leaked key's forgery names no asset, and a
trusted timestamp from before the revocation keeps a file authentic."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from django.core.management import call_command

from infra.dev_certs import dev_chain_create
from provenance.credentials import c2pa_sign, generated_manifest, reader_context
from provenance.keys import SigningFiles, signer_create
from provenance.watermark import watermark_payload
from review.models import Asset
from review.verify import C2paFacts, WatermarkFacts, file_verify
from review.verify.verdict import _verdict
from tests.fixture_types import SettingsWrapper
from tests.provenance.samples import flip_image_byte, product_shot
from tests.provenance.tsa import LocalTsa, timestamped_files
from tests.review.verify.signing import asset_copy_signed

pytestmark = pytest.mark.django_db


@pytest.fixture
def own_chain(tmp_path: Path, settings: SettingsWrapper, greenlight_settings: SettingsWrapper) -> SigningFiles:
    """A signing chain of this test's own (revoking it touches no other test), trusted by the settings."""
    files = dev_chain_create(tmp_path / "keys")
    settings.GREENLIGHT_SIGNING_CHAIN, settings.GREENLIGHT_SIGNING_KEY = files.chain, files.key
    settings.GREENLIGHT_TRUST_ANCHORS = files.trust_anchors
    return files


def serial_of(files: SigningFiles) -> str:
    return str(x509.load_pem_x509_certificates(files.chain.read_bytes())[0].serial_number)


def revoke(*args: str) -> str:
    out = io.StringIO()
    call_command("signing_keys_revoke", *args, stdout=out)
    return out.getvalue()


def forged(asset: Asset, files: SigningFiles) -> bytes:
    """What a leaked key makes: a picture never made here, signed with a record naming ``asset``."""
    buffer = io.BytesIO()
    product_shot(99).save(buffer, "PNG")
    manifest = generated_manifest(
        title="forged",
        model_name=asset.model_name,
        model_manifest_hash=asset.model_manifest_hash,
        generation_record={"serial": asset.pk, "asset_key": asset.key},
        watermark_value=watermark_payload(asset.mark_id),
    )
    with signer_create(files) as signer, reader_context(files) as context:
        return c2pa_sign(buffer.getvalue(), mime="image/png", manifest=manifest, signer=signer, context=context)


def test_a_revoked_certificate_makes_unchanged_files_revoked_changed_ones_tampered_and_forgeries_nobodys(
    reviewable_assets: list[Asset], own_chain: SigningFiles
) -> None:
    asset = reviewable_assets[0]
    signed = asset_copy_signed(asset, own_chain, title="before-the-leak")
    forgery = forged(asset, own_chain)
    # While the certificate holds, its word names the asset: exactly what a leaked key abuses.
    assert file_verify(data=forgery, filename="forged.png").asset is not None
    serial = serial_of(own_chain)

    said = revoke("--serial", serial, "--reason", "keyCompromise")

    assert f"Revoked signing certificate {serial}" in said and "the current one" in said
    unchanged = file_verify(data=signed, filename="ours.png")
    changed = file_verify(data=flip_image_byte(signed, "image/png"), filename="ours-changed.png")
    fake = file_verify(data=forgery, filename="forged.png")

    revoked_at = unchanged.c2pa.revoked_at
    assert revoked_at is not None and unchanged.c2pa.revocation_reason == "keyCompromise"
    assert unchanged.outcome == "revoked" and unchanged.c2pa.state == "trusted"  # c2pa itself cannot know
    assert unchanged.verdict.startswith(
        f"signed by a certificate that has since been revoked (content unchanged): certificate {serial} "
    )
    assert f"revoked at {revoked_at:%Y-%m-%d %H:%M:%S} UTC (keyCompromise)" in unchanged.verdict
    assert unchanged.verdict.endswith(f"; asset #{asset.pk} found by its sha256")  # a file the store holds
    assert any("No trusted timestamp says when it was signed" in note for note in unchanged.notes)
    assert changed.outcome == "tampered" and "assertion.dataHash.mismatch" in changed.c2pa.codes
    assert changed.c2pa.revoked_at == revoked_at
    # The forgery's manifest names the asset, but a revoked certificate's word names nothing.
    assert fake.outcome == "revoked" and fake.asset is None and fake.matched_by is None
    assert fake.verdict.endswith("; no asset in this database matches")
    assert asset.prompt not in str(fake.to_dict())


def test_a_trusted_timestamp_from_before_the_revocation_keeps_a_file_authentic(
    reviewable_assets: list[Asset], own_chain: SigningFiles, settings: SettingsWrapper, tmp_path: Path
) -> None:
    asset = reviewable_assets[1]
    with LocalTsa() as tsa:
        files = timestamped_files(own_chain, tsa, tmp_path / "tsa")
        settings.GREENLIGHT_TRUST_ANCHORS, settings.GREENLIGHT_TSA_URL = files.trust_anchors, files.tsa_url
        signed = asset_copy_signed(asset, files, title="timestamped")
    serial = serial_of(own_chain)

    revoke("--serial", serial, "--reason", "superseded")
    report = file_verify(data=signed, filename="timestamped.png")

    assert report.outcome == "authentic" and report.verdict == f"Content Credentials trusted; asset #{asset.pk} found"
    assert report.c2pa.timestamped_at is not None and report.c2pa.revoked_at is not None
    assert report.c2pa.timestamped_at < report.c2pa.revoked_at
    assert any("before it: the signature still holds" in note for note in report.notes)


def test_a_timestamp_after_the_revocation_time_does_not_save_the_file(
    reviewable_assets: list[Asset], own_chain: SigningFiles, settings: SettingsWrapper, tmp_path: Path
) -> None:
    asset = reviewable_assets[2]
    with LocalTsa() as tsa:
        files = timestamped_files(own_chain, tsa, tmp_path / "tsa")
        settings.GREENLIGHT_TRUST_ANCHORS, settings.GREENLIGHT_TSA_URL = files.trust_anchors, files.tsa_url
        signed = asset_copy_signed(asset, files, title="after-the-leak")
    # The key leaked an hour ago: anything it signed since, timestamped or not, is suspect.
    leaked = (datetime.now(UTC) - timedelta(hours=1)).isoformat()

    revoke("--current", "--at", leaked)
    report = file_verify(data=signed, filename="after.png")

    assert report.outcome == "revoked" and report.c2pa.timestamped_at is not None
    assert report.c2pa.revoked_at is not None and report.c2pa.timestamped_at > report.c2pa.revoked_at
    assert any("after its certificate was revoked" in note for note in report.notes)


def test_c2pas_own_revoked_finding_over_unchanged_content_is_revoked_not_tampered() -> None:
    # What c2pa reports for a certificate an OCSP answer says is revoked (a CA-issued certificate's
    # file read elsewhere): the claim signature holds, the content matches.
    facts = C2paFacts(
        state="invalid",
        codes=("signingCredential.untrusted", "signingCredential.revoked"),
        error=None,
        label="urn:c2pa:x",
        claim_generator="Someone 1.0",
        title="t",
        actions=("c2pa.created",),
        signer="CA / Signer",
        ingredients=(),
        credentials_intact=False,
        serial=None,
        asset_key=None,
        expired_unchanged=True,
    )
    watermark = WatermarkFacts(False, None, None, "no watermark found")

    outcome, verdict = _verdict(facts, watermark, None, None, None, None, None)

    assert outcome == "revoked"
    assert verdict == (
        "signed by a certificate that has since been revoked (content unchanged); no asset in this database matches"
    )
