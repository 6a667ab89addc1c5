"""C2PA signing and reading with a real dev chain: trust, tampering, renditions, bad files."""

from __future__ import annotations

import io
import shutil
import sys
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from PIL import Image, ImageDraw, ImageFilter

from pipeline.config import config_from_settings
from pipeline.errors import SigningError
from pipeline.signing import (
    GENERATION_LABEL,
    TRAINED_ALGORITHMIC_MEDIA,
    C2paReport,
    CallbackKey,
    KeyFileKey,
    SigningFiles,
    c2pa_read,
    c2pa_sign,
    dev_chain_create,
    generated_manifest,
    reader_context,
    rendition_manifest,
    signer_create,
    signing_files_check,
    signing_key,
)
from pipeline.watermark import ALGORITHM, watermark_embed, watermark_payload, watermark_read
from tests.factories import chain_write

SERIAL = 0x12_3456_789A
RECORD: dict[str, object] = {
    "prompt_version": "hero-shot@3",
    "variables": {"product": "kettle", "scene": "kitchen"},
    "seed": 1234,
    "steps": 4,
    "guidance_scale": 5.0,
}


def product_shot(seed: int) -> Image.Image:
    """A 512x512 soft-edged product-shot-like image."""
    rng = np.random.default_rng(seed)
    image = Image.new("RGB", (512, 512), (200, 210, 190))
    draw = ImageDraw.Draw(image)
    for _ in range(6):
        x0, y0 = (int(v) for v in rng.integers(0, 400, 2))
        size = int(rng.integers(40, 200))
        draw.ellipse((x0, y0, x0 + size, y0 + size), fill=tuple(int(c) for c in rng.integers(0, 256, 3)))
    noise = rng.normal(0, 4, (512, 512, 3))
    pixels = np.clip(np.asarray(image.filter(ImageFilter.GaussianBlur(2)), dtype=float) + noise, 0, 255)
    return Image.fromarray(pixels.astype(np.uint8))


def encode(image: Image.Image, mime: str) -> bytes:
    buffer = io.BytesIO()
    if mime == "image/png":
        image.save(buffer, "PNG")
    else:
        image.save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def manifest_for(serial: int = SERIAL) -> dict[str, Any]:
    return generated_manifest(
        title="hero-shot-kettle.png",
        model_name="tiny-sd",
        model_manifest_hash="sha256:" + "ab" * 32,
        generation_record=RECORD,
        watermark_value=watermark_payload(serial),
    )


@pytest.fixture(scope="module")
def marked_image() -> Image.Image:
    return watermark_embed(product_shot(1), SERIAL)


@pytest.fixture(scope="module")
def unsigned(marked_image: Image.Image) -> dict[str, bytes]:
    return {mime: encode(marked_image, mime) for mime in ("image/png", "image/jpeg")}


@pytest.fixture(scope="module")
def signed(unsigned: dict[str, bytes], signer: Any, context: Any) -> dict[str, bytes]:
    return {
        mime: c2pa_sign(data, mime=mime, manifest=manifest_for(), signer=signer, context=context)
        for mime, data in unsigned.items()
    }


def flip_image_byte(data: bytes, mime: str) -> bytes:
    """Flip one byte inside the compressed pixel data, leaving the manifest alone."""
    if mime == "image/png":
        index = data.index(b"IDAT") + 4 + 200
    else:
        index = data.rindex(b"\xff\xda") + 400  # inside the last scan
        while data[index] in (0x00, 0xFE, 0xFF) or data[index - 1] == 0xFF:
            index += 1  # keep JPEG byte stuffing and markers intact
    tampered = bytearray(data)
    tampered[index] ^= 0x01
    return bytes(tampered)


def files_copy(files: SigningFiles, directory: Path) -> SigningFiles:
    directory.mkdir(parents=True, exist_ok=True)
    copied = SigningFiles(
        chain=directory / files.chain.name,
        key=directory / files.key.name,
        trust_anchors=directory / files.trust_anchors.name,
    )
    for source, target in zip(
        (files.chain, files.key, files.trust_anchors),
        (copied.chain, copied.key, copied.trust_anchors),
        strict=True,
    ):
        shutil.copyfile(source, target)
    return copied


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
    with pytest.raises(ValueError, match="watermark_value"):
        rendition_manifest(title="thumb.jpg", actions=["c2pa.resized", "c2pa.watermarked"])


def test_rendition_manifest_without_a_parent_is_refused(unsigned: dict[str, bytes], signer: Any, context: Any) -> None:
    manifest = rendition_manifest(title="orphan.jpg", actions=["c2pa.resized"])

    with pytest.raises(SigningError, match="first action must be created or opened"):
        c2pa_sign(unsigned["image/jpeg"], mime="image/jpeg", manifest=manifest, signer=signer, context=context)


@pytest.mark.parametrize("action", ["c2pa.created", "resized"])
def test_rendition_manifest_refuses_non_edit_actions(action: str) -> None:
    with pytest.raises(ValueError, match=repr(action)):
        rendition_manifest(title="x.jpg", actions=[action])


def test_generated_manifest_refuses_a_record_that_is_not_json() -> None:
    with pytest.raises(ValueError, match="generation_record"):
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


def test_dev_chain_passes_the_check_and_keeps_its_key_private(signing_files: SigningFiles) -> None:
    signing_files_check(signing_files)

    assert signing_files.key.stat().st_mode & 0o777 == 0o600
    assert len(x509.load_pem_x509_certificates(signing_files.chain.read_bytes())) == 2


def test_dev_chain_create_refuses_to_overwrite(tmp_path: Path) -> None:
    files = dev_chain_create(tmp_path / "keys")
    first_key = files.key.read_bytes()

    with pytest.raises(SigningError, match="already exists") as refused:
        dev_chain_create(tmp_path / "keys")
    assert refused.value.path is not None and str(refused.value.path) in str(refused.value)
    assert files.key.read_bytes() == first_key

    dev_chain_create(tmp_path / "keys", overwrite=True)
    assert files.key.read_bytes() != first_key
    signing_files_check(files)


def test_missing_key_file_is_refused_naming_it(signing_files: SigningFiles, tmp_path: Path) -> None:
    files = files_copy(signing_files, tmp_path / "keys")
    files.key.unlink()

    with pytest.raises(SigningError, match="does not exist") as refused:
        signing_files_check(files)
    assert refused.value.path == files.key
    assert str(files.key) in str(refused.value)
    with pytest.raises(SigningError):
        signer_create(files)


def test_expired_signing_certificate_is_refused_naming_the_file(tmp_path: Path) -> None:
    files = chain_write(
        tmp_path / "expired",
        signer_not_before=datetime(2024, 1, 1, tzinfo=UTC),
        signer_not_after=datetime(2025, 1, 1, tzinfo=UTC),
    )

    with pytest.raises(SigningError) as refused:
        signing_files_check(files)

    assert refused.value.path == files.chain
    assert f"Signing certificate {files.chain} expired on 2025-01-01 (not valid after" in str(refused.value)
    with pytest.raises(SigningError, match="expired"):
        signer_create(files)


def test_certificate_not_yet_valid_is_refused(tmp_path: Path) -> None:
    now = datetime.now(UTC)
    files = chain_write(
        tmp_path / "future",
        signer_not_before=now + timedelta(days=2),
        signer_not_after=now + timedelta(days=30),
    )

    with pytest.raises(SigningError, match="not yet valid") as refused:
        signing_files_check(files)
    assert str(files.chain) in str(refused.value)


def test_dev_chain_expires_after_its_days(signing_files: SigningFiles) -> None:
    later = datetime.now(UTC) + timedelta(days=400)

    with pytest.raises(SigningError, match="expired on"):
        signing_files_check(signing_files, now=later)


def test_key_that_does_not_match_the_certificate_is_refused(signing_files: SigningFiles, tmp_path: Path) -> None:
    files = files_copy(signing_files, tmp_path / "keys")
    stranger = ec.generate_private_key(ec.SECP256R1())
    files.key.write_bytes(
        stranger.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )

    with pytest.raises(SigningError, match="does not match") as refused:
        signing_files_check(files)
    assert refused.value.path == files.key
    assert str(files.key) in str(refused.value)


def test_chain_file_that_is_not_pem_is_refused(signing_files: SigningFiles, tmp_path: Path) -> None:
    files = files_copy(signing_files, tmp_path / "keys")
    files.chain.write_text("not a certificate\n")

    with pytest.raises(SigningError, match="not a PEM certificate file") as refused:
        signing_files_check(files)
    assert refused.value.path == files.chain and str(files.chain) in str(refused.value)


def test_trust_anchor_that_did_not_issue_the_chain_is_refused(signing_files: SigningFiles, tmp_path: Path) -> None:
    other = dev_chain_create(tmp_path / "other")

    with pytest.raises(SigningError, match="'valid', not 'trusted'") as refused:
        signing_files_check(replace(signing_files, trust_anchors=other.trust_anchors))
    assert refused.value.path == other.trust_anchors


# --- A key held in a KMS or HSM: the callback signer --------------------------------------

# The fake KMS at the boundary: an in-memory EC key behind a plain function, reached by its
# import path as GREENLIGHT_SIGNING_CALLBACK would name it.
FAKE_KMS: dict[str, Any] = {}
CALLBACK = "tests.pipeline.test_signing:fake_kms_sign"


def fake_kms_sign(data: bytes) -> bytes:
    """Sign like a KMS would: DER-encoded ECDSA with SHA-256, the key never leaving it."""
    FAKE_KMS["calls"] = FAKE_KMS.get("calls", 0) + 1
    if FAKE_KMS.get("fail"):
        raise ConnectionError("KMS endpoint unreachable")
    key: ec.EllipticCurvePrivateKey = FAKE_KMS["key"]
    return key.sign(data, ec.ECDSA(hashes.SHA256()))


@pytest.fixture
def kms_files(signing_files: SigningFiles, tmp_path: Path) -> Iterator[SigningFiles]:
    """The dev chain with its private key moved into the fake KMS: no key file exists."""
    copied = files_copy(signing_files, tmp_path / "kms")
    key = serialization.load_pem_private_key(copied.key.read_bytes(), password=None)
    copied.key.unlink()
    FAKE_KMS.clear()
    FAKE_KMS["key"] = key
    yield replace(copied, callback=CALLBACK)
    FAKE_KMS.clear()


def key_lines(pem: bytes) -> list[str]:
    """The base64 lines of a PEM private key: what must never leak."""
    return [line for line in pem.decode().splitlines() if line and not line.startswith("-----")]


def test_callback_signer_signs_without_a_key_file_and_reads_back_trusted(
    kms_files: SigningFiles, unsigned: dict[str, bytes], context: Any
) -> None:
    assert not kms_files.key.exists()
    signing_files_check(kms_files)  # one probe signature through the KMS

    with signer_create(kms_files) as signer:
        signed = c2pa_sign(
            unsigned["image/png"], mime="image/png", manifest=manifest_for(), signer=signer, context=context
        )
    report = c2pa_read(signed, mime="image/png", context=context)

    assert report.state == "trusted", report
    assert report.actions() == ["c2pa.created", "c2pa.watermarked"]
    assert report.assertion(GENERATION_LABEL) == RECORD
    assert FAKE_KMS["calls"] == 3  # check, signer_create's check, the signature itself


def test_signing_key_is_the_callback_when_one_is_set(kms_files: SigningFiles, signing_files: SigningFiles) -> None:
    assert signing_key(signing_files) == KeyFileKey(signing_files.key)
    key = signing_key(kms_files)
    assert isinstance(key, CallbackKey) and key.name == CALLBACK
    assert key.describe() == f"signing callback {CALLBACK}"


def test_callback_whose_key_is_not_the_certificates_is_refused(kms_files: SigningFiles) -> None:
    FAKE_KMS["key"] = ec.generate_private_key(ec.SECP256R1())

    with pytest.raises(SigningError, match="does not verify with the end-entity certificate") as refused:
        signing_files_check(kms_files)
    assert refused.value.path == kms_files.chain
    with pytest.raises(SigningError, match="do not belong together"):
        signer_create(kms_files)


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("no_colon_here", "not an import path of the form 'package.module:function'"),
        ("tests.no_such_module:sign", "module 'tests.no_such_module' cannot be imported"),
        ("tests.pipeline.test_signing:no_such_function", "has no attribute 'no_such_function'"),
        ("tests.pipeline.test_signing:CALLBACK", "is a str, not a callable"),
    ],
)
def test_callback_that_cannot_be_imported_is_refused_naming_it(
    kms_files: SigningFiles, path: str, message: str
) -> None:
    with pytest.raises(SigningError, match=message) as refused:
        signer_create(replace(kms_files, callback=path))
    assert repr(path) in str(refused.value)


def test_kms_failure_at_signing_time_is_a_signing_error(
    kms_files: SigningFiles, unsigned: dict[str, bytes], context: Any, caplog: pytest.LogCaptureFixture
) -> None:
    with signer_create(kms_files) as signer:
        FAKE_KMS["fail"] = True
        with caplog.at_level("DEBUG"), pytest.raises(SigningError, match="C2PA signing of a image/png file failed"):
            c2pa_sign(unsigned["image/png"], mime="image/png", manifest=manifest_for(), signer=signer, context=context)

    assert f"Signing callback {CALLBACK} failed: ConnectionError: KMS endpoint unreachable" in caplog.text
    with pytest.raises(SigningError, match="failed: ConnectionError: KMS endpoint unreachable"):
        signing_files_check(kms_files)


def test_private_key_never_appears_in_errors_logs_or_reprs(
    signing_files: SigningFiles,
    kms_files: SigningFiles,
    unsigned: dict[str, bytes],
    context: Any,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    secret_pem = signing_files.key.read_bytes()
    secrets = key_lines(secret_pem)
    texts: list[str] = []
    # A key file that is not this chain's key, and one that is damaged: both refused, by name only.
    wrong = files_copy(signing_files, tmp_path / "wrong")
    other_key = dev_chain_create(tmp_path / "other").key.read_bytes()
    wrong.key.write_bytes(other_key)
    damaged = files_copy(signing_files, tmp_path / "damaged")
    lines = secret_pem.decode().splitlines()
    damaged.key.write_text("\n".join([*lines[:2], "!!" + lines[2][2:], *lines[3:]]) + "\n")
    with caplog.at_level("DEBUG"):
        for files, secret in ((wrong, key_lines(other_key)), (damaged, secrets)):
            with pytest.raises(SigningError) as refused:
                signer_create(files)
            error: BaseException | None = refused.value
            while error is not None:  # the message and everything chained to it
                texts.append(f"{error!s} {error!r}")
                error = error.__cause__ or error.__context__
            assert not any(line in " ".join(texts) for line in secret)
        # Signing with the key file and with the KMS, everything logged at DEBUG.
        for files in (signing_files, kms_files):
            with signer_create(files) as signer:
                c2pa_sign(
                    unsigned["image/jpeg"], mime="image/jpeg", manifest=manifest_for(), signer=signer, context=context
                )
            key = signing_key(files)
            texts += [repr(files), str(files), repr(key), key.describe()]
    texts.append(caplog.text)

    dump = "\n".join(texts)
    assert "PRIVATE KEY" not in dump
    assert not any(line in dump for line in secrets)
    assert "Signing key" in dump and "does not match" in dump and "is not a PEM private key that can be loaded" in dump


def test_callback_setting_reaches_the_pipeline_config(settings: Any, signing_files: SigningFiles) -> None:
    settings.GREENLIGHT_SIGNING_CALLBACK = CALLBACK

    assert config_from_settings().signing.callback == CALLBACK
