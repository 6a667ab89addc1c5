"""`file_verify` on real signed assets: untouched, stripped and re-encoded, tampered, carrying a
manifest copied from another file, never made here, third-party Content Credentials, and video."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from django.db import connection
from PIL import Image

from infra.dev_certs import dev_chain_create
from provenance.config import provenance_config_from_settings
from provenance.credentials import c2pa_sign, generated_manifest, reader_context
from provenance.keys import SigningFiles, signer_create
from provenance.watermark import watermark_embed, watermark_payload
from review.models import Asset, ManifestRecord, Publication
from review.services import asset_approve, asset_publish
from review.verify import VerifyReport, file_verify
from tests.factories import AssetFactory, make_user
from tests.fixture_types import SettingsWrapper
from tests.provenance.marks import installation_key
from tests.provenance.samples import flip_image_byte, product_shot
from tests.review.helpers import master_bytes, published_bytes, reencode
from tests.review.verify.transplant import jpeg_manifest_transplant, png_manifest_transplant

pytestmark = pytest.mark.django_db

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "c2pa"


def test_untouched_published_file_is_trusted_and_found_with_its_whole_record(
    published: tuple[Asset, list[Publication]], greenlight_settings: SettingsWrapper
) -> None:
    asset, publications = published
    web = next(p for p in publications if p.rendition == "web")

    report = file_verify(data=published_bytes(greenlight_settings, web), filename="spring-web.jpg")

    assert report.outcome == "authentic"
    assert report.verdict == f"Content Credentials trusted; asset #{asset.pk} found"
    assert report.c2pa.state == "trusted" and report.c2pa.codes == ()
    assert report.c2pa.actions == ("c2pa.opened", "c2pa.resized", "c2pa.transcoded", "c2pa.watermarked")
    assert report.c2pa.serial == asset.pk and report.c2pa.asset_key == asset.key  # from the parent's record
    assert report.watermark.found and report.watermark.serial == asset.mark_id
    assert report.matched_by == "sha256"
    assert report.file.format == "jpeg" and (report.file.width, report.file.height) == (1024, 1024)
    assert report.notes == ()
    found = report.asset
    assert found is not None
    assert (found.serial, found.state, found.campaign) == (asset.pk, "published", "demo-spring")
    assert (found.template, found.template_version, found.model_name) == ("catalog-hero", 1, asset.model_name)
    assert (found.seed, found.prompt) == (asset.seed, asset.prompt)
    assert [(d.reviewer, d.decision) for d in found.decisions] == [("vera", "approve")]
    assert sorted((p.rendition, p.published_by) for p in found.publications) == [("thumb", "paul"), ("web", "paul")]
    stored = report.stored_manifest
    assert stored is not None
    assert (stored.matched_by, stored.kind, stored.sha256) == ("sha256", "rendition:web", web.sha256)
    assert stored.label == report.c2pa.label
    assert sorted(o.split()[0] for o in report.other_manifests) == ["master", "rendition:thumb", "thumbnail"]


def test_stripped_and_reencoded_copy_is_recovered_by_its_watermark(reviewable_assets: list[Asset]) -> None:
    asset = reviewable_assets[1]
    copy = reencode(master_bytes(asset), "JPEG", quality=80)

    report = file_verify(data=copy, filename="from-social-media.jpg")

    assert report.outcome == "recovered"
    assert report.verdict == (
        f"provenance recovered, file modified: no Content Credentials, asset #{asset.pk} found by its watermark "
        "and its picture; stored manifest retrieved"
    )
    assert report.c2pa.state == "none" and report.c2pa.label is None
    assert report.watermark.found and report.watermark.serial == asset.mark_id
    assert report.content_similarity is not None and report.content_similarity > 0.9
    assert report.matched_by == "watermark"
    assert report.asset is not None and report.asset.serial == asset.pk and report.asset.state == "in_review"
    stored = report.stored_manifest
    master = ManifestRecord.objects.get(asset=asset, kind="master")
    assert stored is not None
    assert (stored.matched_by, stored.kind, stored.label, stored.sha256) == (
        "serial",
        "master",
        master.label,
        master.sha256,
    )
    generation = next(
        a for a in stored.store["manifests"][master.label]["assertions"] if a["label"] == "org.greenlight.generation"
    )
    assert generation["data"]["serial"] == asset.pk and generation["data"]["seed"] == asset.seed


def test_one_flipped_byte_in_the_image_data_is_reported_tampered(reviewable_assets: list[Asset]) -> None:
    asset = reviewable_assets[2]
    tampered = flip_image_byte(master_bytes(asset), "image/png")

    report = file_verify(data=tampered, filename="master.png")

    assert report.outcome == "tampered"
    assert report.c2pa.state == "invalid"
    assert report.c2pa.codes == ("assertion.dataHash.mismatch",)
    assert report.verdict == (
        f"tampered: manifest invalid (assertion.dataHash.mismatch); manifest of asset #{asset.pk}, "
        "but the content does not match it; the pixels' asset is unknown"
    )
    # The credentials themselves held (trusted signer, valid claim signature): the manifest is
    # asset #N's. But the flipped byte leaves pixels that no longer decode, so no watermark
    # confirms that these pixels are that asset's: the manifest's asset is not named the file's.
    assert report.c2pa.credentials_intact and report.c2pa.serial == asset.pk
    assert not report.watermark.found
    assert report.manifest_asset == asset.pk
    assert report.asset is None and report.matched_by is None and report.stored_manifest is None


def test_flipped_byte_in_a_published_jpeg_is_tampered_and_names_its_asset(
    published: tuple[Asset, list[Publication]], greenlight_settings: SettingsWrapper
) -> None:
    asset, publications = published
    web = next(p for p in publications if p.rendition == "web")
    tampered = flip_image_byte(published_bytes(greenlight_settings, web), "image/jpeg")

    report = file_verify(data=tampered, filename="web.jpg")

    assert (report.outcome, report.c2pa.state, report.c2pa.codes) == (
        "tampered",
        "invalid",
        ("assertion.dataHash.mismatch",),
    )
    # The rendition's manifest has no generation record of its own: its parent's names the asset.
    assert report.matched_by == "manifest" and report.c2pa.serial == asset.pk
    assert report.asset is not None and report.asset.serial == asset.pk
    # The flipped bit garbles the end of the JPEG scan: the pixels changed, their hash no longer matches.
    assert report.stored_manifest is not None and report.stored_manifest.matched_by == "serial"
    # The pixels' watermark confirms the manifest's asset: nothing is reported as another asset's.
    assert report.watermark.serial == asset.mark_id and report.manifest_asset is None


# --- A manifest copied from another file --------------------------------------------------------


def test_a_png_carrying_another_assets_manifest_is_named_by_its_watermark(reviewable_assets: list[Asset]) -> None:
    donor, owner = reviewable_assets[0], reviewable_assets[1]
    swapped = png_manifest_transplant(donor=master_bytes(donor), target=master_bytes(owner))

    report = file_verify(data=swapped, filename="master.png")

    assert_transplant_reported(report, pixels=owner, manifest=donor)
    master = ManifestRecord.objects.get(asset=owner, kind="master")
    assert report.stored_manifest is not None
    assert (report.stored_manifest.matched_by, report.stored_manifest.sha256) == ("serial", master.sha256)
    decoded = json.loads(json.dumps(report.to_dict()))
    assert (decoded["asset"]["serial"], decoded["manifest_asset"]) == (owner.pk, donor.pk)


def test_a_published_jpeg_carrying_another_assets_manifest_is_named_by_its_watermark(
    published: tuple[Asset, list[Publication]], reviewable_assets: list[Asset], greenlight_settings: SettingsWrapper
) -> None:
    donor, donor_publications = published
    owner = asset_approve(asset=reviewable_assets[1], reviewer=make_user(username="rita", roles=("reviewer",)))
    owner_publications = asset_publish(asset=owner, user=make_user(username="pete", roles=("publisher",)))
    web_of = {p.asset_id: p for p in [*donor_publications, *owner_publications] if p.rendition == "web"}
    swapped = jpeg_manifest_transplant(
        donor=published_bytes(greenlight_settings, web_of[donor.pk]),
        target=published_bytes(greenlight_settings, web_of[owner.pk]),
    )

    report = file_verify(data=swapped, filename="web.jpg")

    assert_transplant_reported(report, pixels=owner, manifest=donor)


def assert_transplant_reported(report: VerifyReport, *, pixels: Asset, manifest: Asset) -> None:
    """The report of ``pixels``' file carrying ``manifest``'s manifest: the pixels' asset, found by
    its watermark, and the manifest reported as another asset's."""
    assert (report.outcome, report.c2pa.state, report.c2pa.codes) == (
        "tampered",
        "invalid",
        ("assertion.dataHash.mismatch",),
    )
    assert report.c2pa.credentials_intact and report.c2pa.serial == manifest.pk  # a real manifest of ours
    assert report.watermark.serial == pixels.mark_id
    assert report.matched_by == "watermark"
    assert report.asset is not None and report.asset.serial == pixels.pk
    assert report.manifest_asset == manifest.pk
    assert report.verdict == (
        f"tampered: manifest invalid (assertion.dataHash.mismatch); this file carries asset #{pixels.pk}'s "
        f"watermark but asset #{manifest.pk}'s manifest (a manifest copied from another file)"
    )


def test_another_assets_manifest_on_an_unmarked_image_is_not_named_the_files_asset(
    reviewable_assets: list[Asset],
) -> None:
    donor = reviewable_assets[0]
    swapped = png_manifest_transplant(donor=master_bytes(donor), target=png_bytes(product_shot(7)))

    report = file_verify(data=swapped, filename="pasted.png")

    assert (report.outcome, report.c2pa.codes) == ("tampered", ("assertion.dataHash.mismatch",))
    assert report.c2pa.credentials_intact and report.c2pa.serial == donor.pk
    assert not report.watermark.found
    assert report.asset is None and report.matched_by is None and report.stored_manifest is None
    assert report.manifest_asset == donor.pk
    assert report.verdict == (
        f"tampered: manifest invalid (assertion.dataHash.mismatch); manifest of asset #{donor.pk}, "
        "but the content does not match it; the pixels' asset is unknown"
    )


def test_another_assets_manifest_on_pixels_marked_with_a_serial_not_here_names_no_asset(
    reviewable_assets: list[Asset],
) -> None:
    donor, stranger = reviewable_assets[0], 0x7FFF_FFF1
    marked = png_bytes(watermark_embed(product_shot(7), stranger, key=installation_key()))
    swapped = png_manifest_transplant(donor=master_bytes(donor), target=marked)

    report = file_verify(data=swapped, filename="pasted.png")

    assert report.outcome == "tampered" and report.watermark.serial == stranger
    assert report.asset is None and report.manifest_asset == donor.pk
    assert report.verdict == (
        f"tampered: manifest invalid (assertion.dataHash.mismatch); this file carries watermark mark id {stranger} "
        f"(no asset in this database) but asset #{donor.pk}'s manifest (a manifest copied from another file)"
    )
    assert report.notes == (f"The watermark carries mark id {stranger}, which is no asset's in this database.",)


@pytest.fixture
def other_assets(greenlight_settings: SettingsWrapper) -> list[Asset]:
    """Assets in the database (serials a false match could land on), without files: cheap."""
    return AssetFactory.create_batch(6)


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda: (FIXTURES / "A.jpg").read_bytes(), id="a-photograph"),
        pytest.param(lambda: png_bytes(product_shot(7)), id="a-synthetic-image"),
    ],
)
def test_a_file_never_made_here_matches_nothing(other_assets: list[Asset], make: Callable[[], bytes]) -> None:
    report = file_verify(data=make(), filename="someone-elses.jpg")

    assert report.outcome == "nothing"
    assert report.verdict == "nothing found: no Content Credentials, no watermark"
    assert report.c2pa.state == "none"
    assert not report.watermark.found and report.watermark.serial is None
    assert report.asset is None and report.stored_manifest is None and report.matched_by is None


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def test_third_party_content_credentials_are_reported_faithfully(other_assets: list[Asset]) -> None:
    # C.jpg: c2pa-python's own test fixture, signed with the C2PA test certificate (see its README).
    report = file_verify(data=(FIXTURES / "C.jpg").read_bytes(), filename="C.jpg")

    assert report.outcome == "third_party"
    assert report.verdict == (
        "Content Credentials valid but not trusted (third party: make_test_images/0.26.0 c2pa-rs/0.26.0)"
    )
    assert report.c2pa.state == "valid"
    assert report.c2pa.codes == ("signingCredential.untrusted",)
    assert report.c2pa.title == "C.jpg"
    assert report.c2pa.actions == ("c2pa.created",)
    assert report.c2pa.signer == "C2PA Test Signing Cert / C2PA Signer"
    assert report.asset is None and report.stored_manifest is None and not report.c2pa.credentials_intact


def test_a_forged_generation_record_under_another_chain_matches_no_asset(
    other_assets: list[Asset], tmp_path: Path
) -> None:
    # Someone else's certificate, a manifest claiming one of our serials, and no watermark.
    victim = other_assets[0]
    other = dev_chain_create(tmp_path / "other", organisation="Forger Inc")
    data = signed_elsewhere(other, png_bytes(product_shot(3)), serial=victim.pk, key=victim.key)

    report = file_verify(data=data, filename="forged.png")

    assert report.c2pa.state == "valid" and report.c2pa.serial == victim.pk
    assert report.c2pa.codes == ("signingCredential.untrusted",)
    assert report.outcome == "third_party" and report.asset is None and report.matched_by is None
    assert report.c2pa.signer == "Forger Inc / Forger Inc Signer"


def signed_elsewhere(files: SigningFiles, png: bytes, *, serial: int, key: str) -> bytes:
    manifest = generated_manifest(
        title="forged.png",
        model_name="other-model",
        model_manifest_hash="0" * 64,
        generation_record={"serial": serial, "asset_key": key},
        watermark_value=watermark_payload(serial),
    )
    manifest["claim_generator_info"] = [{"name": "Other Studio", "version": "2.1"}]
    with signer_create(files) as signer, reader_context(files) as context:
        return c2pa_sign(png, mime="image/png", manifest=manifest, signer=signer, context=context)


def test_a_wrong_extension_is_noted_and_the_content_verified(reviewable_assets: list[Asset]) -> None:
    asset = reviewable_assets[0]

    report = file_verify(data=master_bytes(asset), filename="photo.jpg")

    assert report.file.format == "png" and not report.file.extension_matches
    assert report.notes == ("The name says .jpg, but the content is PNG: verified as PNG.",)
    assert report.outcome == "authentic" and report.asset is not None and report.asset.serial == asset.pk


def test_report_is_json_serialisable(reviewable_assets: list[Asset]) -> None:
    report = file_verify(data=master_bytes(reviewable_assets[0]), filename="m.png")

    decoded = json.loads(json.dumps(report.to_dict()))

    assert decoded["outcome"] == "authentic"
    assert decoded["asset"]["serial"] == reviewable_assets[0].pk
    assert decoded["stored_manifest"]["kind"] == "master"
    assert decoded["stored_manifest"]["store"]["validation_state"] == "Trusted"


def test_no_private_key_material_in_the_database(reviewable_assets: list[Asset], signing_files: SigningFiles) -> None:
    secret = _key_body(signing_files.key.read_text())
    tables = [Asset._meta.db_table, ManifestRecord._meta.db_table, "review_auditevent"]
    with connection.cursor() as cursor:
        for table in tables:
            cursor.execute(f"SELECT CAST(t.* AS text) FROM {table} AS t")  # fixed table names
            dump = "\n".join(row[0] for row in cursor.fetchall())
            assert dump, table
            assert "PRIVATE KEY" not in dump
            assert not any(line in dump for line in secret)


def _key_body(pem: str) -> list[str]:
    return [line for line in pem.splitlines() if line and not line.startswith("-----")]


# --- Video ------------------------------------------------------------------------------


def test_a_signed_watermarked_mp4_is_trusted_and_found(reviewable_assets: list[Asset], tmp_path: Path) -> None:
    import av

    asset = reviewable_assets[3]
    key = installation_key()
    frames = [watermark_embed(product_shot(20 + i).resize((256, 256)), asset.mark_id, key=key) for i in range(12)]
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=12)
        stream.width, stream.height, stream.pix_fmt = 256, 256, "yuv420p"
        stream.options = {"crf": "18"}
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_image(frame)))
        container.mux(stream.encode())
    manifest = generated_manifest(
        title="clip.mp4",
        model_name=asset.model_name,
        model_manifest_hash=asset.model_manifest_hash,
        generation_record={"serial": asset.pk, "asset_key": asset.key},
        watermark_value=watermark_payload(asset.mark_id),
    )
    config = provenance_config_from_settings()
    with signer_create(config.signing) as signer, reader_context(config.signing) as context:
        signed = c2pa_sign(buffer.getvalue(), mime="video/mp4", manifest=manifest, signer=signer, context=context)

    report = file_verify(data=signed, filename="clip.mp4")

    assert (report.file.format, report.file.mime, report.file.width) == ("mp4", "video/mp4", 256)
    assert report.c2pa.state == "trusted"
    assert report.outcome == "authentic" and report.matched_by == "manifest"
    assert report.asset is not None and report.asset.serial == asset.pk
    assert report.watermark.serial == asset.mark_id
    tampered = bytearray(signed)
    tampered[signed.rindex(b"mdat") + 300] ^= 0x01
    broken = file_verify(data=bytes(tampered), filename="clip.mp4")
    assert broken.c2pa.state == "invalid" and broken.c2pa.codes == ("assertion.bmffHash.mismatch",)
