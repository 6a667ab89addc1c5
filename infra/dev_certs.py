"""Development signing chains: a root CA, an intermediate and a signer, made on this machine.

For the demo, the tests and a first install only: production points the signing files at the
organisation's own certificate (and its key in a KMS or HSM). `manage.py signing_keys_create`
writes one; `--rotate` (``dev_chain_rotate``) replaces it with a new one and keeps every earlier
root in the trust anchors, so that files signed before stay trusted.

Its keys are Ed25519 unless asked otherwise (``--algorithm es256``): every asset is signed twice
(master and thumbnail) and read back twice, and each read checks the claim's signature and the
chain's. On one core, signing a 512 px master and its thumbnail (the master as its parent
ingredient) and reading both back took 5.7-5.9 ms with an Ed25519 chain against 9.1-9.2 ms with
ECDSA P-256 (ES256), alternated in one process. C2PA readers take both; an organisation's own
certificate may be either (or ES384/ES512, PS256), whatever its CA issues.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes, CertificatePublicKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from provenance.errors import SigningError
from provenance.keys import RETIRED_DIR, SigningFiles, private_key_pem

# The key types a development chain can be made of: how to make a key, and the digest its
# certificates are signed with (none for Ed25519, which hashes by itself).
ALGORITHMS: dict[str, tuple[Callable[[], CertificateIssuerPrivateKeyTypes], hashes.SHA256 | None]] = {
    "ed25519": (ed25519.Ed25519PrivateKey.generate, None),
    "es256": (lambda: ec.generate_private_key(ec.SECP256R1()), hashes.SHA256()),
}
DEFAULT_ALGORITHM = "ed25519"


def dev_chain_create(
    directory: Path,
    *,
    organisation: str = "Greenlight development",
    days: int = 365,
    overwrite: bool = False,
    signer_expires: datetime | None = None,
    algorithm: str = DEFAULT_ALGORITHM,
) -> SigningFiles:
    """Create a development chain (root -> intermediate -> signer), every key of ``algorithm``
    (``ALGORITHMS``: Ed25519 unless asked otherwise, see the module).

    Writes chain.pem, signer.key (mode 0600) and root.pem into ``directory``,
    creating it; refuses to replace existing files unless ``overwrite``.
    ``signer_expires`` ends the signer's certificate sooner than ``days`` (tests of what
    `verify` says once a certificate has expired).
    """
    if days < 1:
        raise SigningError(f"A development chain lasts at least 1 day (days = {days!r})")
    if algorithm not in ALGORITHMS:
        raise SigningError(
            f"A development chain is {' or '.join(sorted(ALGORITHMS))}, not {algorithm!r}", path=directory
        )
    key_new, digest = ALGORITHMS[algorithm]
    files = SigningFiles(
        chain=directory / "chain.pem",
        key=directory / "signer.key",
        trust_anchors=directory / "root.pem",
    )
    if not overwrite:
        for path in (files.chain, files.key, files.trust_anchors):
            if path.exists():
                raise SigningError(
                    f"Signing file {path} already exists; pass overwrite=True to replace it",
                    path=path,
                )
    directory.mkdir(parents=True, exist_ok=True)

    not_before = datetime.now(UTC) - timedelta(hours=1)  # tolerate clock skew
    not_after = not_before + timedelta(days=days, hours=1)
    root_key, intermediate_key, signer_key = key_new(), key_new(), key_new()
    root_name = certificate_name(f"{organisation} Root CA", organisation)
    intermediate_name = certificate_name(f"{organisation} Intermediate CA", organisation)

    root = (
        certificate_builder(root_name, root_name, root_key.public_key(), not_before, not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=1), critical=True)
        .add_extension(key_usage(cert_sign=True), critical=True)
        .sign(root_key, digest)
    )
    intermediate = (
        certificate_builder(intermediate_name, root_name, intermediate_key.public_key(), not_before, not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(key_usage(cert_sign=True), critical=True)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key()),
            critical=False,
        )
        .sign(root_key, digest)
    )
    signer = (
        certificate_builder(
            certificate_name(f"{organisation} Signer", organisation),
            intermediate_name,
            signer_key.public_key(),
            not_before,
            min(not_after, signer_expires) if signer_expires is not None else not_after,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(key_usage(cert_sign=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(intermediate_key.public_key()),
            critical=False,
        )
        .sign(intermediate_key, digest)
    )

    pem = serialization.Encoding.PEM
    files.trust_anchors.write_bytes(root.public_bytes(pem))
    files.chain.write_bytes(signer.public_bytes(pem) + intermediate.public_bytes(pem))
    _private_write(files.key, private_key_pem(signer_key))
    return files


def dev_chain_rotate(
    directory: Path,
    *,
    organisation: str = "Greenlight development",
    days: int = 365,
    algorithm: str = DEFAULT_ALGORITHM,
) -> SigningFiles:
    """Replace the development chain in ``directory`` by a new one (new root, intermediate and
    signer, of ``algorithm``), keeping every root trusted before as a trust anchor beside the new one.

    The old chain is kept under ``retired/<UTC time>/chain.pem`` (so `verify` can name which key
    signed a file); the old signer's private key is deleted: nothing signs with it again.
    """
    current = SigningFiles(
        chain=directory / "chain.pem", key=directory / "signer.key", trust_anchors=directory / "root.pem"
    )
    missing = [str(path) for path in (current.chain, current.trust_anchors) if not path.exists()]
    if missing:
        raise SigningError(f"Nothing to rotate: {', '.join(missing)} missing (create a chain first)", path=directory)
    earlier = x509.load_pem_x509_certificates(current.trust_anchors.read_bytes())
    retired = directory / RETIRED_DIR / datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    retired.mkdir(parents=True)
    shutil.copy2(current.chain, retired / "chain.pem")
    shutil.copy2(current.trust_anchors, retired / "root.pem")
    created = dev_chain_create(directory, organisation=organisation, days=days, overwrite=True, algorithm=algorithm)
    new_roots = x509.load_pem_x509_certificates(created.trust_anchors.read_bytes())
    pem = serialization.Encoding.PEM
    anchors: dict[bytes, x509.Certificate] = {}
    for cert in (*new_roots, *earlier):  # the new root first: the one that issues the chain
        anchors.setdefault(cert.fingerprint(hashes.SHA256()), cert)
    created.trust_anchors.write_bytes(b"".join(cert.public_bytes(pem) for cert in anchors.values()))
    return created


def retired_chains(directory: Path) -> list[Path]:
    """The chains retired by ``dev_chain_rotate`` in ``directory``, oldest first."""
    return sorted((directory / RETIRED_DIR).glob("*/chain.pem"))


def _private_write(path: Path, data: bytes) -> None:
    """Write a private key readable by its owner only, whatever the umask."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        os.fchmod(handle.fileno(), 0o600)  # an existing file keeps its old mode otherwise
        handle.write(data)


def certificate_name(common_name: str, organisation: str) -> x509.Name:
    """A certificate subject or issuer: its common name and organisation."""
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation),
        ]
    )


def certificate_builder(
    subject: x509.Name,
    issuer: x509.Name,
    public_key: CertificatePublicKeyTypes,
    not_before: datetime,
    not_after: datetime,
) -> x509.CertificateBuilder:
    """A certificate for ``public_key`` over that period, with a random serial and its subject
    key identifier: the caller adds its constraints and usages, then signs it."""
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    )


def key_usage(*, cert_sign: bool) -> x509.KeyUsage:
    """A CA's usages (certificate and CRL signing) or an end entity's (digital signature)."""
    return x509.KeyUsage(
        digital_signature=not cert_sign,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )
