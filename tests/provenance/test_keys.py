"""Signing files and keys: checks that name the file, key files and KMS/HSM callbacks."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from infra.dev_certs import dev_chain_create
from provenance.config import provenance_config_from_settings
from provenance.credentials import (
    GENERATION_LABEL,
    c2pa_read,
    c2pa_sign,
    reader_context,
)
from provenance.errors import SigningError
from provenance.keys import (
    CallbackKey,
    KeyFileKey,
    SigningFiles,
    signer_create,
    signer_tsa_url,
    signing_files_check,
    signing_key,
)
from provenance.revocation import Revocation, revocation_add
from tests.factories import chain_write
from tests.provenance.samples import RECORD, manifest_for
from tests.provenance.tsa import LocalTsa, timestamped_files


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


@pytest.mark.parametrize(
    ("key_new", "algorithm"),
    [
        (ed25519.Ed25519PrivateKey.generate, "Ed25519"),
        (lambda: ec.generate_private_key(ec.SECP256R1()), "ES256"),
        (lambda: ec.generate_private_key(ec.SECP384R1()), "ES384"),
        (lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048), "PS256"),
    ],
    ids=["ed25519", "es256", "es384", "ps256"],
)
def test_a_key_file_signs_with_its_certificates_algorithm_and_reads_back_trusted(
    tmp_path: Path, unsigned: dict[str, bytes], key_new: Any, algorithm: str
) -> None:
    now = datetime.now(UTC)
    files = chain_write(
        tmp_path / "keys",
        signer_not_before=now - timedelta(days=1),
        signer_not_after=now + timedelta(days=30),
        key_new=key_new,
    )
    signing_files_check(files)

    with signer_create(files) as signer, reader_context(files) as context:
        signed = c2pa_sign(
            unsigned["image/png"], mime="image/png", manifest=manifest_for(), signer=signer, context=context
        )
        report = c2pa_read(signed, mime="image/png", context=context)

    assert report.state == "trusted", report
    assert report.store is not None
    assert report.store["manifests"][report.active_label]["signature_info"]["alg"].lower() == algorithm.lower()


def test_a_key_c2pa_cannot_sign_with_is_refused_naming_the_chain(tmp_path: Path) -> None:
    now = datetime.now(UTC)
    files = chain_write(
        tmp_path / "keys",
        signer_not_before=now - timedelta(days=1),
        signer_not_after=now + timedelta(days=30),
        key_new=lambda: ec.generate_private_key(ec.SECP256K1()),
    )

    with pytest.raises(SigningError, match="has a key c2pa cannot sign with") as refused:
        signing_files_check(files)
    assert refused.value.path == files.chain
    with pytest.raises(SigningError, match="cannot sign with"):
        signer_create(files)
    files = replace(files, callback=CALLBACK)  # a KMS key of that type: refused before it is asked to sign
    FAKE_KMS.clear()
    with pytest.raises(SigningError, match="has a key c2pa cannot sign with"):
        signing_files_check(files)
    assert "calls" not in FAKE_KMS


# --- A key held in a KMS or HSM: the callback signer --------------------------------------

# The fake KMS at the boundary: an in-memory EC key behind a plain function, reached by its
# import path as GREENLIGHT_SIGNING_CALLBACK would name it.
FAKE_KMS: dict[str, Any] = {}
CALLBACK = "tests.provenance.test_keys:fake_kms_sign"


def fake_kms_sign(data: bytes) -> bytes:
    """Sign like a KMS would, as its key's type signs (Ed25519, or DER-encoded ECDSA with
    SHA-256), the key never leaving it."""
    FAKE_KMS["calls"] = FAKE_KMS.get("calls", 0) + 1
    if FAKE_KMS.get("fail"):
        raise ConnectionError("KMS endpoint unreachable")
    key = FAKE_KMS["key"]
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return key.sign(data)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
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
        ("tests.provenance.test_keys:no_such_function", "has no attribute 'no_such_function'"),
        ("tests.provenance.test_keys:CALLBACK", "is a str, not a callable"),
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

    assert provenance_config_from_settings().signing.callback == CALLBACK


# --- A timestamp authority, proven before anything is generated --------------------------------


def test_signing_files_check_signs_once_with_the_timestamp_authority_and_needs_its_root_trusted(
    signing_files: SigningFiles, tmp_path: Path
) -> None:
    with LocalTsa() as tsa:
        files = timestamped_files(signing_files, tsa, tmp_path / "tsa")
        signing_files_check(files)
        assert tsa.requests == 1  # one real timestamped sign, read back

        # The same authority without its root among the trust anchors: its timestamps would be worth
        # nothing once the certificate expires, so the check refuses, naming the URL and the anchors.
        untrusted = replace(signing_files, tsa_url=tsa.url)
        with pytest.raises(SigningError, match="its timestamp is not trusted") as refused:
            signing_files_check(untrusted)
    assert repr(tsa.url) in str(refused.value) and "timeStamp.untrusted" in str(refused.value)
    assert refused.value.path == signing_files.trust_anchors


def test_signing_files_check_fails_naming_a_timestamp_authority_that_does_not_answer(
    signing_files: SigningFiles, tmp_path: Path
) -> None:
    with LocalTsa() as tsa:
        files = timestamped_files(signing_files, tsa, tmp_path / "tsa")
    # The server is gone: the port no longer answers.
    with pytest.raises(SigningError, match="gave no timestamp, and nothing is signed without one") as refused:
        signing_files_check(files)
    assert f"GREENLIGHT_TSA_URL = {tsa.url!r}" in str(refused.value)


def test_a_timestamp_authority_that_stops_answering_fails_the_sign_naming_it(
    signing_files: SigningFiles, unsigned: dict[str, bytes], context: Any, tmp_path: Path
) -> None:
    tsa = LocalTsa()
    files = timestamped_files(signing_files, tsa, tmp_path / "tsa")
    with tsa, signer_create(files) as signer:
        assert signer_tsa_url(signer) == tsa.url
        c2pa_sign(unsigned["image/png"], mime="image/png", manifest=manifest_for(), signer=signer, context=context)
        tsa.refuse = True  # answers with a rejection (PKIStatus 2) from now on
        with pytest.raises(SigningError, match="needs a timestamp from") as refused:
            c2pa_sign(unsigned["image/png"], mime="image/png", manifest=manifest_for(), signer=signer, context=context)
    assert f"GREENLIGHT_TSA_URL = {tsa.url!r}" in str(refused.value) and "nothing was signed" in str(refused.value)
    with signer_create(signing_files) as plain:
        assert signer_tsa_url(plain) is None


# --- Revocation -------------------------------------------------------------------------------


def test_a_revoked_signing_certificate_signs_nothing(signing_files: SigningFiles, tmp_path: Path) -> None:
    files = files_copy(signing_files, tmp_path / "keys")
    serial = str(x509.load_pem_x509_certificates(files.chain.read_bytes())[0].serial_number)
    at = datetime.now(UTC) - timedelta(minutes=5)
    revocation_add(files.revocation_list, Revocation(serial=serial, revoked_at=at, reason="keyCompromise", subject="s"))

    with pytest.raises(SigningError, match=f"certificate {serial} .* revoked at .* \\(keyCompromise\\)") as refused:
        signer_create(files)
    assert str(files.revocation_list) in str(refused.value) and "--rotate" in str(refused.value)
    signing_files_check(files, now=at - timedelta(minutes=1))  # before the revocation it could still sign
