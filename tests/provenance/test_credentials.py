"""C2PA signing and reading with a real dev chain: trust, tampering, renditions, bad files."""

from __future__ import annotations

import io
import sys
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from infra.dev_certs import dev_chain_create
from provenance.credentials import (
    GENERATION_LABEL,
    TRAINED_ALGORITHMIC_MEDIA,
    C2paReport,
    c2pa_read,
    c2pa_sign,
    generated_manifest,
    reader_context,
    rendition_manifest,
    signed_manifest,
)
from provenance.errors import SigningError
from provenance.keys import SigningFiles, signer_create
from provenance.watermark import ALGORITHM, watermark_embed, watermark_payload, watermark_read
from tests.provenance.samples import RECORD, SERIAL, encode, flip_image_byte, manifest_for
from tests.provenance.tsa import LocalTsa, timestamped_files


@pytest.fixture(scope="module")
def signed(unsigned: dict[str, bytes], signer: Any, context: Any) -> dict[str, bytes]:
    return {
        mime: c2pa_sign(data, mime=mime, manifest=manifest_for(), signer=signer, context=context)
        for mime, data in unsigned.items()
    }


# --- Signing and reading back ----------------------------------------------------------


@pytest.mark.parametrize("mime", ["image/png", "image/jpeg"])
def test_signed_file_reads_back_trusted_with_its_credentials(mime: str, signed: dict[str, bytes], context: Any) -> None:
    report = c2pa_read(signed[mime], mime=mime, context=context)

    assert report.state == "trusted", report
    assert report.validation_codes == ()
    assert report.error is None
    assert report.actions() == ["c2pa.created", "c2pa.watermarked"]
    actions = report.assertion("c2pa.actions")
    assert actions is not None and actions == report.assertion("c2pa.actions.v2")
    created = actions["actions"][0]
    assert created["digitalSourceType"] == TRAINED_ALGORITHMIC_MEDIA
    assert created["softwareAgent"] == {"name": "tiny-sd", "version": "sha256:" + "ab" * 32}
    assert report.assertion("c2pa.soft-binding") == {
        "alg": ALGORITHM,
        "blocks": [{"scope": {}, "value": watermark_payload(SERIAL)}],
    }
    assert report.assertion(GENERATION_LABEL) == RECORD
    assert report.manifest is not None and report.manifest["title"] == "hero-shot-kettle.png"


@pytest.mark.parametrize("mime", ["image/png", "image/jpeg"])
def test_signed_file_has_no_thumbnail(
    mime: str, signed: dict[str, bytes], unsigned: dict[str, bytes], context: Any
) -> None:
    # c2pa's default thumbnail made a 29 KB file about 786 KB.
    report = c2pa_read(signed[mime], mime=mime, context=context)

    assert report.manifest is not None and "thumbnail" not in report.manifest
    assert len(signed[mime]) - len(unsigned[mime]) < 20_000


def test_watermark_survives_png_signing_and_matches_the_soft_binding(signed: dict[str, bytes], context: Any) -> None:
    reading = watermark_read(Image.open(io.BytesIO(signed["image/png"])))
    report = c2pa_read(signed["image/png"], mime="image/png", context=context)

    binding = report.assertion("c2pa.soft-binding")
    assert reading.serial == SERIAL
    assert binding is not None and binding["blocks"][0]["value"] == reading.bits


def test_one_signer_signs_many_files_without_growing_memory(
    unsigned: dict[str, bytes], signer: Any, context: Any
) -> None:
    data = unsigned["image/jpeg"]

    def sign_and_check() -> None:
        signed = c2pa_sign(data, mime="image/jpeg", manifest=manifest_for(), signer=signer, context=context)
        assert c2pa_read(signed, mime="image/jpeg", context=context).state == "trusted"

    for _ in range(30):  # warm up allocators and caches
        sign_and_check()
    before = _resident_bytes()
    for _ in range(300):
        sign_and_check()
    if before is not None:
        after = _resident_bytes()
        assert after is not None and after - before < 30 * 2**20


def _resident_bytes() -> int | None:
    if not sys.platform.startswith("linux"):
        return None
    return int(Path("/proc/self/statm").read_text().split()[1]) * 4096


# --- Tampering and stripping ---------------------------------------------------------


@pytest.mark.parametrize("mime", ["image/png", "image/jpeg"])
def test_flipped_image_byte_reads_invalid_with_a_data_hash_mismatch(
    mime: str, signed: dict[str, bytes], context: Any
) -> None:
    report = c2pa_read(flip_image_byte(signed[mime], mime), mime=mime, context=context)

    assert report.state == "invalid"
    assert "assertion.dataHash.mismatch" in report.validation_codes


def test_resaved_file_has_no_credentials(signed: dict[str, bytes], context: Any) -> None:
    resaved = encode(Image.open(io.BytesIO(signed["image/png"])), "image/png")

    report = c2pa_read(resaved, mime="image/png", context=context)

    assert report == C2paReport("none", None, None, (), None)
    assert report.actions() == [] and report.assertion(GENERATION_LABEL) is None


@pytest.mark.parametrize("data", [b"this is not an image", b"\x89PNG\r\n\x1a\n" + b"\x00" * 40])
def test_unreadable_file_is_reported_not_raised(data: bytes, context: Any) -> None:
    report = c2pa_read(data, mime="image/png", context=context)

    assert report.state == "invalid"
    assert report.error


def test_truncated_signed_file_is_reported_not_raised(signed: dict[str, bytes], context: Any) -> None:
    data = signed["image/png"]

    report = c2pa_read(data[: len(data) // 2], mime="image/png", context=context)

    assert report.state == "invalid"


# --- Renditions ------------------------------------------------------------------------


def test_rendition_signed_with_its_master_as_parent_reads_trusted(
    marked_image: Image.Image, signed: dict[str, bytes], signer: Any, context: Any
) -> None:
    master = signed["image/png"]
    master_label = c2pa_read(master, mime="image/png", context=context).active_label
    rendition = encode(marked_image.resize((256, 256), Image.Resampling.LANCZOS), "image/jpeg")

    signed_rendition = c2pa_sign(
        rendition,
        mime="image/jpeg",
        manifest=rendition_manifest(title="kettle-web.jpg", actions=["c2pa.converted", "c2pa.resized"]),
        signer=signer,
        context=context,
        parent=(master, "image/png"),
    )
    report = c2pa_read(signed_rendition, mime="image/jpeg", context=context)

    assert report.state == "trusted", report
    assert report.actions() == ["c2pa.opened", "c2pa.converted", "c2pa.resized"]
    assert report.manifest is not None
    [ingredient] = report.manifest["ingredients"]
    assert ingredient["relationship"] == "parentOf"
    assert ingredient["active_manifest"] == master_label != report.active_label
    assert "thumbnail" not in ingredient


def test_rewatermarked_rendition_carries_its_own_soft_binding(
    marked_image: Image.Image, signed: dict[str, bytes], signer: Any, context: Any
) -> None:
    small = watermark_embed(marked_image.resize((256, 256), Image.Resampling.LANCZOS), SERIAL)
    manifest = rendition_manifest(
        title="kettle-thumb.png",
        actions=["c2pa.resized", "c2pa.watermarked"],
        watermark_value=watermark_payload(SERIAL),
    )

    data = c2pa_sign(
        encode(small, "image/png"),
        mime="image/png",
        manifest=manifest,
        signer=signer,
        context=context,
        parent=(signed["image/png"], "image/png"),
    )
    report = c2pa_read(data, mime="image/png", context=context)

    assert report.state == "trusted", report
    assert report.actions() == ["c2pa.opened", "c2pa.resized", "c2pa.watermarked"]
    binding = report.assertion("c2pa.soft-binding")
    assert binding is not None and binding["blocks"][0]["value"] == watermark_payload(SERIAL)
    assert watermark_read(Image.open(io.BytesIO(data))).serial == SERIAL


def test_rendition_claiming_a_watermark_needs_its_value() -> None:
    with pytest.raises(SigningError, match="watermark_value"):
        rendition_manifest(title="thumb.jpg", actions=["c2pa.resized", "c2pa.watermarked"])


def test_rendition_manifest_without_a_parent_is_refused(unsigned: dict[str, bytes], signer: Any, context: Any) -> None:
    manifest = rendition_manifest(title="orphan.jpg", actions=["c2pa.resized"])

    with pytest.raises(SigningError, match="first action must be created or opened"):
        c2pa_sign(unsigned["image/jpeg"], mime="image/jpeg", manifest=manifest, signer=signer, context=context)


@pytest.mark.parametrize("action", ["c2pa.created", "resized"])
def test_rendition_manifest_refuses_non_edit_actions(action: str) -> None:
    with pytest.raises(SigningError, match=repr(action)):
        rendition_manifest(title="x.jpg", actions=[action])


def test_generated_manifest_refuses_a_record_that_is_not_json() -> None:
    with pytest.raises(SigningError, match="generation_record"):
        generated_manifest(
            title="t",
            model_name="m",
            model_manifest_hash="h",
            generation_record={"when": datetime.now(UTC)},
            watermark_value="0" * 48,
        )


def test_unsupported_format_is_refused(signer: Any, context: Any) -> None:
    with pytest.raises(SigningError, match="image/x-unknown"):
        c2pa_sign(b"data", mime="image/x-unknown", manifest=manifest_for(), signer=signer, context=context)


# --- Trust -----------------------------------------------------------------------------


def test_reader_trusting_another_root_reports_valid_not_trusted(
    signed: dict[str, bytes], signing_files: SigningFiles, tmp_path: Path
) -> None:
    other = dev_chain_create(tmp_path / "other", organisation="Someone else")
    with reader_context(replace(signing_files, trust_anchors=other.trust_anchors)) as context:
        report = c2pa_read(signed["image/png"], mime="image/png", context=context)

    assert report.state == "valid"
    assert "signingCredential.untrusted" in report.validation_codes


# --- Signing files ---------------------------------------------------------------------


@pytest.mark.parametrize("record", [{"size": [256, 256]}, {"nested": {"weights": [0.5, 1.5]}}, {"rows": [{"x": [1]}]}])
def test_a_generation_record_with_a_list_of_numbers_is_refused_naming_it(record: dict[str, object]) -> None:
    # c2pa stores such a list as bytes: [256, 256] would read back as "AAA=".
    with pytest.raises(SigningError, match="list of numbers"):
        generated_manifest(
            title="t",
            model_name="m",
            model_manifest_hash="h",
            generation_record=record,
            watermark_value=watermark_payload(SERIAL),
        )


def test_a_generation_record_keeps_lists_of_text_and_mixed_lists() -> None:
    manifest = generated_manifest(
        title="t",
        model_name="m",
        model_manifest_hash="h",
        generation_record={"tags": ["a", "b"], "mixed": [1, "x"], "empty": []},
        watermark_value=watermark_payload(SERIAL),
    )
    record = next(a["data"] for a in manifest["assertions"] if a["label"] == GENERATION_LABEL)
    assert record == {"tags": ["a", "b"], "mixed": [1, "x"], "empty": []}


# --- Timestamps --------------------------------------------------------------------------------


def test_a_timestamped_file_carries_the_authoritys_time_and_only_a_trusted_one_counts(
    signing_files: SigningFiles, unsigned: dict[str, bytes], tmp_path: Path
) -> None:
    with LocalTsa() as tsa:
        files = timestamped_files(signing_files, tsa, tmp_path / "tsa")
        before = datetime.now(UTC).replace(microsecond=0)
        with signer_create(files) as signer, reader_context(files) as context:
            data = c2pa_sign(
                unsigned["image/png"], mime="image/png", manifest=manifest_for(), signer=signer, context=context
            )
            report = c2pa_read(data, mime="image/png", context=context)
            record = signed_manifest(data, kind="master", mime="image/png", context=context)
        after = datetime.now(UTC)

    assert report.state == "trusted" and "timeStamp.trusted" in report.success_codes()
    stamped = report.timestamp()
    assert stamped is not None and before <= stamped <= after
    assert "timeStamp.trusted" in str(record.store)
    # Read by someone who does not trust the authority's root: the timestamp is there but counts
    # for nothing, and a file like that is never stored (its credentials would die with the certificate).
    with reader_context(signing_files) as context:
        doubtful = c2pa_read(data, mime="image/png", context=context)
        with pytest.raises(SigningError, match=r"carries a timestamp its readers do not trust \(timeStamp.untrusted\)"):
            signed_manifest(data, kind="master", mime="image/png", context=context)
    assert doubtful.state == "trusted" and doubtful.timestamp() is None
    assert "timeStamp.untrusted" in doubtful.informational_codes()


def test_a_file_signed_without_a_timestamp_authority_has_no_time(signed: dict[str, bytes], context: Any) -> None:
    report = c2pa_read(signed["image/png"], mime="image/png", context=context)

    assert report.state == "trusted" and report.timestamp() is None
    assert not [code for code in (*report.success_codes(), *report.informational_codes()) if "timeStamp" in code]
