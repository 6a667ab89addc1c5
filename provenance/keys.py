"""Signing keys: where the signing material lives, how it is checked, and a c2pa Signer over it.

Signing files are a PEM chain (end-entity certificate, then its intermediate), the end-entity's
private key and the PEM root that readers trust. They are checked before any generation starts
(``signing_files_check``), so a batch never renders images it cannot sign.

The private key sits behind one interface, ``SigningKey``, with two implementations:
``KeyFileKey`` (a PEM file, the development default) and ``CallbackKey`` (a key held in a KMS or
HSM: a callable that returns the signature of the bytes it is given, named by
``SigningFiles.callback``). Neither keeps key material in its repr, its errors or its logs.

Timestamps: with ``SigningFiles.tsa_url`` set (GREENLIGHT_TSA_URL, an RFC 3161 timestamp
authority), c2pa asks it for a timestamp at each sign, so a manifest stays valid after its
certificate expires; a sign it does not answer fails (nothing is signed without its timestamp).
c2pa trusts a timestamp the way it trusts a signer, through the same trust anchors (with the
timeStamping extended key usage instead): the TSA's root belongs in the trust anchor file, and
``signing_files_check`` proves it with one timestamped sign read back. Without a TSA (the
default, the demo, the tests) nothing leaves the machine.

Revocation: a certificate on the installation's revocation list (``provenance.revocation``,
``SigningFiles.revocation_list``) signs nothing more.

Close the Signer you get from ``signer_create`` with ``with``; one Signer serves any number of signs.
"""

from __future__ import annotations

import importlib
import io
import itertools
import json
import logging
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

import c2pa
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes, PublicKeyTypes
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.x509.oid import ExtendedKeyUsageOID
from PIL import Image

from provenance.errors import SigningError
from provenance.revocation import REVOCATION_LIST, revocations_load

logger = logging.getLogger("greenlight.signing")

# Extended key usages c2pa-rs accepts for a signing certificate. With
# documentSigning or the C2PA EKU, readers also need trust.trust_config.
_SIGNING_EKUS = {
    ExtendedKeyUsageOID.EMAIL_PROTECTION,
    x509.ObjectIdentifier("1.3.6.1.5.5.7.3.36"),  # documentSigning
    x509.ObjectIdentifier("1.3.6.1.4.1.62558.2.1"),  # C2PA signing
}


@dataclass(frozen=True)
class SigningFiles:
    """Where the signing material lives (all PEM), and how the private key is reached.

    With ``callback`` set ("package.module:function", a callable ``(data: bytes) -> bytes``
    returning the signature, e.g. a KMS or HSM client), ``key`` is never read.
    """

    chain: Path  # end-entity certificate, then intermediate
    key: Path  # end-entity private key (unused with a callback)
    trust_anchors: Path  # root CA that readers trust
    callback: str = ""  # import path of a signing callable for a key held in a KMS/HSM
    tsa_url: str = ""  # an RFC 3161 timestamp authority's http(s) URL; "" signs without a timestamp

    @property
    def revocation_list(self) -> Path:
        """The installation's list of revoked signing certificates, beside the chain."""
        return self.chain.parent / REVOCATION_LIST


def signing_files_check(files: SigningFiles, *, now: datetime | None = None) -> None:
    """Fail with a SigningError naming the file if these files cannot sign.

    Checks: each file exists and is PEM; every certificate in the chain and
    the trust anchors is valid at ``now``; the end-entity certificate is not on the revocation
    list; its key is of a type c2pa signs with (ECDSA P-256/384/521, Ed25519, RSA of 2048 bits
    or more) and the signing key is that key (a key file: the same public key; a callback: one
    probe signature that verifies with the certificate); the chain is in order and
    ends at one of the trust anchors (otherwise readers would say "valid", not "trusted"); with a
    timestamp authority, one tiny file signed with its timestamp reads back with that timestamp
    trusted (`timestamp_authority_check`). Run it before generating anything.
    """
    chain = _chain_checked(files, now=now)
    _algorithm(chain[0], files.chain)  # a key type c2pa signs with, before any key is asked to sign
    key = signing_key(files)
    key.check(chain[0], files.chain)
    if files.tsa_url:
        timestamp_authority_check(files, chain=chain, key=key)


# The timestamp authority each Signer asks (c2pa's Signer cannot tell), for error messages.
_TSA_URLS: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()


def signer_create(files: SigningFiles) -> c2pa.Signer:
    """A c2pa Signer for these files (key file or KMS/HSM callback), timestamped by
    ``files.tsa_url`` when it is set.

    Checks the files first. Reusable for any number of signs; close it
    (``with signer_create(files) as signer:``).
    """
    tsa_url = tsa_url_check(files.tsa_url)
    chain = _chain_checked(files, now=None)
    alg = _algorithm(chain[0], files.chain)
    key = signing_key(files)
    key.check(chain[0], files.chain)
    chain_pem = b"".join(cert.public_bytes(serialization.Encoding.PEM) for cert in chain)
    try:
        signer = key.signer(chain_pem, alg, tsa_url)
    except c2pa.C2paError as error:
        raise SigningError(
            f"c2pa refused the signing chain {files.chain} with {key.describe()}: {error}",
            path=files.chain,
        ) from error
    if tsa_url:
        _TSA_URLS[signer] = tsa_url
    return signer


def signer_tsa_url(signer: c2pa.Signer) -> str | None:
    """The timestamp authority a Signer from ``signer_create`` asks at each sign, if any."""
    return _TSA_URLS.get(signer)


def trust_settings(anchors: list[x509.Certificate], *, verify_after_sign: bool = True) -> dict[str, Any]:
    """c2pa settings for a Context that trusts ``anchors`` (signers and timestamp authorities
    alike), with no network and no thumbnails. ``verify_after_sign=False`` skips c2pa's own
    validation of each file it has just signed: only for a signer whose every file is read straight
    back with ``signed_manifest``, which validates it again and demands "trusted"."""
    anchors_pem = "".join(cert.public_bytes(serialization.Encoding.PEM).decode("ascii") for cert in anchors)
    return {
        "trust": {"user_anchors": anchors_pem},
        "verify": {"remote_manifest_fetch": False, "ocsp_fetch": False, "verify_after_sign": verify_after_sign},
        "builder": {"thumbnail": {"enabled": False}},
    }


TIMESTAMP_TRUSTED = "timeStamp.trusted"  # c2pa's success code for a timestamp from a trusted TSA


def timestamp_authority_check(
    files: SigningFiles, *, chain: list[x509.Certificate] | None = None, key: SigningKey | None = None
) -> None:
    """Sign a tiny image with a timestamp from ``files.tsa_url`` and read it back with the trust
    anchors; fail, naming the URL, unless the authority answered and readers trust its timestamp.

    Why sign rather than only ask: it is the whole path a real sign takes (c2pa's own request, its
    checks of the answer), and the read back proves the TSA's root is among the trust anchors,
    without which a timestamp is carried but worth nothing once the certificate expires.
    """
    url = tsa_url_check(files.tsa_url)
    if url is None:
        raise SigningError("timestamp_authority_check needs GREENLIGHT_TSA_URL to be set")
    chain = chain if chain is not None else _chain_checked(files, now=None)
    key = key or signing_key(files)
    chain_pem = b"".join(cert.public_bytes(serialization.Encoding.PEM) for cert in chain)
    picture = io.BytesIO()
    Image.new("RGB", (16, 16), (128, 128, 128)).save(picture, "PNG")
    manifest = {"claim_generator_info": [{"name": "Greenlight timestamp authority check"}], "title": "TSA check"}
    settings = trust_settings(certificates_load(files.trust_anchors, "Trust anchor file"))
    signed = io.BytesIO()
    try:
        with (
            key.signer(chain_pem, _algorithm(chain[0], files.chain), url) as signer,
            c2pa.Context.from_dict(settings) as context,
        ):
            with c2pa.Builder(manifest, context=context) as builder:
                builder.set_intent(c2pa.C2paBuilderIntent.CREATE, c2pa.C2paDigitalSourceType.DIGITAL_CREATION)
                builder.sign(signer, "image/png", io.BytesIO(picture.getvalue()), signed)
            with c2pa.Reader("image/png", io.BytesIO(signed.getvalue()), context=context) as reader:
                results = json.loads(reader.json()).get("validation_results") or {}
    except c2pa.C2paError as error:
        raise SigningError(
            f"Timestamp authority GREENLIGHT_TSA_URL = {url!r} gave no timestamp, and nothing is signed without "
            f"one: {error}"
        ) from error
    active = results.get("activeManifest") or {}
    success = {entry.get("code") for entry in active.get("success", []) if isinstance(entry, dict)}
    if TIMESTAMP_TRUSTED not in success:
        said = sorted(
            str(entry.get("code"))
            for entry in (*active.get("informational", []), *active.get("failure", []))
            if isinstance(entry, dict) and str(entry.get("code", "")).startswith("timeStamp.")
        )
        raise SigningError(
            f"Timestamp authority GREENLIGHT_TSA_URL = {url!r} answered, but its timestamp is not trusted "
            f"({', '.join(said) or 'no timestamp in the manifest'}): add the authority's root certificate to "
            f"the trust anchor file {files.trust_anchors} (c2pa checks a timestamp's certificate against the "
            "same anchors, with the timeStamping extended key usage)",
            path=files.trust_anchors,
        )


# --- Signing keys: one interface, two implementations ---------------------------


class SigningKey(Protocol):
    """Where the end-entity's private key is held, and how a c2pa Signer reaches it."""

    def describe(self) -> str:
        """A name for messages (a path or an import path; never key material)."""
        ...

    def check(self, end_entity: x509.Certificate, chain_path: Path) -> None:
        """Raise SigningError unless this key belongs to ``end_entity`` and can sign."""
        ...

    def signer(self, chain_pem: bytes, alg: c2pa.C2paSigningAlg, tsa_url: str | None = None) -> c2pa.Signer:
        """A c2pa Signer using this key and the PEM chain, timestamped by ``tsa_url`` if given."""
        ...


@dataclass(frozen=True)
class KeyFileKey:
    """An unencrypted PEM private key on disk (the development chain's ``signer.key``), of any
    type c2pa signs with: it signs with the algorithm of its certificate (``_algorithm``).

    The key is read when needed and never kept on this object.
    """

    path: Path

    def describe(self) -> str:
        return f"key file {self.path}"

    def check(self, end_entity: x509.Certificate, chain_path: Path) -> None:
        self._load_checked(end_entity, chain_path)

    def signer(self, chain_pem: bytes, alg: c2pa.C2paSigningAlg, tsa_url: str | None = None) -> c2pa.Signer:
        end_entity = x509.load_pem_x509_certificates(chain_pem)[0]
        key = self._load_checked(end_entity, self.path)
        info = c2pa.C2paSignerInfo(alg, chain_pem, private_key_pem(key), tsa_url.encode("ascii") if tsa_url else None)
        return c2pa.Signer.from_info(info)

    def _load_checked(self, end_entity: x509.Certificate, chain_path: Path) -> PrivateKeyTypes:
        key = _private_key_load(self.path)
        if _spki(key.public_key()) != _spki(end_entity.public_key()):
            raise SigningError(
                f"Signing key {self.path} does not match the end-entity certificate in "
                f"{chain_path} ({certificate_subject(end_entity)})",
                path=self.path,
            )
        return key


SIGNING_PROBE = b"greenlight signing-key check"


@dataclass(frozen=True)
class CallbackKey:
    """A private key held in a KMS or HSM, reached through ``sign(data) -> signature``.

    The signature is what the end-entity certificate's algorithm expects: DER-encoded
    ECDSA (raw r||s is accepted too), Ed25519, or RSA-PSS. ``name`` is the callable's
    import path, used in messages; the callable itself is kept out of the repr.
    Exceptions the callable raises are reported by type and message only.
    """

    name: str
    sign: Callable[[bytes], bytes] = dataclass_field(repr=False, compare=False)

    def describe(self) -> str:
        return f"signing callback {self.name}"

    def check(self, end_entity: x509.Certificate, chain_path: Path) -> None:
        signature = self._call(SIGNING_PROBE)
        if not _signature_verifies(end_entity.public_key(), signature, SIGNING_PROBE):
            raise SigningError(
                f"Signing callback {self.name} returned a signature that does not verify with the "
                f"end-entity certificate in {chain_path} ({certificate_subject(end_entity)}): the KMS key "
                "and the certificate do not belong together",
                path=chain_path,
            )

    def signer(self, chain_pem: bytes, alg: c2pa.C2paSigningAlg, tsa_url: str | None = None) -> c2pa.Signer:
        def sign(data: bytes) -> bytes:
            try:
                return self._call(data)
            except SigningError as error:
                logger.error("%s", error.problem)
                # c2pa logs this message and turns it into a signing failure.
                raise RuntimeError(error.problem) from None

        return c2pa.Signer.from_callback(sign, alg, chain_pem.decode("ascii"), tsa_url or None)

    def _call(self, data: bytes) -> bytes:
        try:
            signature = self.sign(data)
        except Exception as error:
            raise SigningError(f"Signing callback {self.name} failed: {type(error).__name__}: {error}") from None
        if not isinstance(signature, bytes | bytearray) or not signature:
            raise SigningError(
                f"Signing callback {self.name} returned {type(signature).__name__}, not the signature bytes"
            )
        return bytes(signature)


def signing_key(files: SigningFiles) -> SigningKey:
    """The key these files name: their callback if one is set (no key file is read), else the key file."""
    if not files.callback:
        return KeyFileKey(files.key)
    return CallbackKey(name=files.callback, sign=callback_import(files.callback))


RETIRED_DIR = "retired"  # beside the chain: `signing_keys_create --rotate` keeps each earlier chain here


def signing_certificates_known(files: SigningFiles) -> dict[str, str]:
    """This installation's signing certificates by serial number (decimal, as c2pa reports it):
    the current end-entity certificate ("current") and each one retired by a rotation ("earlier,
    retired <time>"). Unreadable files are left out: this names signers, it does not check them."""
    return {serial: label for serial, (label, _) in signing_certificates_listed(files).items()}


def signing_certificates_listed(files: SigningFiles) -> dict[str, tuple[str, x509.Certificate]]:
    """`signing_certificates_known` with each certificate: its label and the certificate itself."""
    known: dict[str, tuple[str, x509.Certificate]] = {}
    retired = sorted((files.chain.parent / RETIRED_DIR).glob("*/chain.pem"))
    for path, label in [*((p, f"earlier, retired {p.parent.name}") for p in retired), (files.chain, "current")]:
        try:
            certificate = x509.load_pem_x509_certificates(path.read_bytes())[0]
        except (OSError, ValueError, IndexError):
            continue
        known[str(certificate.serial_number)] = (label, certificate)
    return known


def tsa_url_check(url: str) -> str | None:
    """The timestamp authority's URL, or None without one; refuses anything but an http(s) URL
    with a host (naming the value)."""
    if not url:
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or any(c.isspace() for c in url):
        raise SigningError(f"GREENLIGHT_TSA_URL = {url!r} is not an http(s) URL of an RFC 3161 timestamp authority")
    return url


def callback_import(path: str) -> Callable[[bytes], bytes]:
    """Import the callable ``package.module:function`` (GREENLIGHT_SIGNING_CALLBACK)."""
    module_name, _, attribute = path.partition(":")
    if not module_name or not attribute:
        raise SigningError(f"Signing callback {path!r} is not an import path of the form 'package.module:function'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise SigningError(f"Signing callback {path!r}: module {module_name!r} cannot be imported ({error})") from None
    target: Any = module
    for part in attribute.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise SigningError(f"Signing callback {path!r}: {module_name!r} has no attribute {attribute!r}") from None
    if not callable(target):
        raise SigningError(f"Signing callback {path!r} is a {type(target).__name__}, not a callable")
    signer: Callable[[bytes], bytes] = target
    return signer


def _algorithm(end_entity: x509.Certificate, chain_path: Path) -> c2pa.C2paSigningAlg:
    """The c2pa signing algorithm for the end-entity certificate's key type."""
    public_key = end_entity.public_key()
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        by_curve = {"secp256r1": "ES256", "secp384r1": "ES384", "secp521r1": "ES512"}
        if public_key.curve.name in by_curve:
            return c2pa.C2paSigningAlg[by_curve[public_key.curve.name]]
    elif isinstance(public_key, ed25519.Ed25519PublicKey):
        return c2pa.C2paSigningAlg.ED25519
    elif isinstance(public_key, rsa.RSAPublicKey) and public_key.key_size >= 2048:
        return c2pa.C2paSigningAlg.PS256
    raise SigningError(
        f"Signing certificate {chain_path} ({certificate_subject(end_entity)}) has a key c2pa cannot sign with "
        "(use ECDSA P-256/384/521, Ed25519 or RSA >= 2048)",
        path=chain_path,
    )


def _signature_verifies(public_key: PublicKeyTypes, signature: bytes, data: bytes) -> bool:
    """Whether ``signature`` of ``data`` verifies with ``public_key`` as c2pa would use it."""
    try:
        if isinstance(public_key, ec.EllipticCurvePublicKey):
            digest = {256: hashes.SHA256(), 384: hashes.SHA384(), 521: hashes.SHA512()}[public_key.curve.key_size]
            size = (public_key.curve.key_size + 7) // 8
            if len(signature) == 2 * size:  # raw r||s (IEEE P1363), as some HSMs return it
                r, s = int.from_bytes(signature[:size], "big"), int.from_bytes(signature[size:], "big")
                signature = encode_dss_signature(r, s)
            public_key.verify(signature, data, ec.ECDSA(digest))
        elif isinstance(public_key, ed25519.Ed25519PublicKey):
            public_key.verify(signature, data)
        elif isinstance(public_key, rsa.RSAPublicKey):
            pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
            public_key.verify(signature, data, pss, hashes.SHA256())
        else:
            return False
    except (InvalidSignature, ValueError, KeyError):
        return False
    return True


# --- Helpers -----------------------------------------------------------------


def _chain_checked(files: SigningFiles, *, now: datetime | None) -> list[x509.Certificate]:
    """Load and check the chain and trust anchors (not the key); return the chain."""
    if now is None:
        now = datetime.now(UTC)
    elif now.tzinfo is None:
        raise SigningError(f"signing_files_check needs a timezone-aware 'now' (now = {now!r})")
    chain = certificates_load(files.chain, "Signing certificate chain")
    anchors = certificates_load(files.trust_anchors, "Trust anchor file")

    for index, cert in enumerate(chain, start=1):
        _validity_check(cert, path=files.chain, label="Signing certificate", which=f"{index} of {len(chain)}", now=now)

    _end_entity_check(chain[0], files.chain)
    revoked = revocations_load(files.revocation_list).get(str(chain[0].serial_number))
    if revoked is not None and revoked.revoked_at <= now:
        raise SigningError(
            f"Signing certificate {files.chain}: {revoked.describe()}, listed in {files.revocation_list}; "
            "make a new chain (`manage.py signing_keys_create --rotate`) or install a new certificate",
            path=files.chain,
        )
    for index, (child, issuer) in enumerate(itertools.pairwise(chain), start=1):
        if not _issued_by(child, issuer):
            raise SigningError(
                f"Signing certificate chain {files.chain}: certificate {index} "
                f"({certificate_subject(child)}) is not issued by certificate {index + 1} "
                f"({certificate_subject(issuer)}); list the end-entity certificate first, then its issuer",
                path=files.chain,
            )
    issuers = [anchor for anchor in anchors if _issued_by(chain[-1], anchor)]
    if not issuers:
        raise SigningError(
            f"Trust anchor file {files.trust_anchors} holds no issuer of the last certificate "
            f"in {files.chain} ({certificate_subject(chain[-1])}); readers would report 'valid', "
            "not 'trusted'",
            path=files.trust_anchors,
        )
    # Only the root that issues the chain must be valid now: the file also keeps every earlier root
    # (`signing_keys_create --rotate`), so that files signed before a rotation stay trusted.
    index = anchors.index(issuers[0]) + 1
    _validity_check(
        issuers[0], path=files.trust_anchors, label="Trust anchor", which=f"{index} of {len(anchors)}", now=now
    )
    return chain


def _file_read(path: Path, what: str) -> bytes:
    if not path.exists():
        raise SigningError(f"{what} {path} does not exist", path=path)
    try:
        return path.read_bytes()
    except OSError as error:
        raise SigningError(f"{what} {path} cannot be read: {error.strerror}", path=path) from error


def certificates_load(path: Path, what: str) -> list[x509.Certificate]:
    data = _file_read(path, what)
    try:
        certs = x509.load_pem_x509_certificates(data)
    except ValueError as error:
        raise SigningError(f"{what} {path} is not a PEM certificate file ({error})", path=path) from error
    if not certs:
        raise SigningError(f"{what} {path} holds no certificate", path=path)
    return certs


def _private_key_load(path: Path) -> PrivateKeyTypes:
    data = _file_read(path, "Signing key")
    try:
        return serialization.load_pem_private_key(data, password=None)
    except TypeError:  # encrypted, and no password given
        raise SigningError(
            f"Signing key {path} is encrypted; the signer needs an unencrypted PEM key",
            path=path,
        ) from None
    except (ValueError, UnsupportedAlgorithm):
        # cryptography's message is not repeated (nor chained): it describes the file's content.
        raise SigningError(
            f"Signing key {path} is not a PEM private key that can be loaded (wrong file, damaged, "
            "or an unsupported key type)",
            path=path,
        ) from None


def _validity_check(cert: x509.Certificate, *, path: Path, label: str, which: str, now: datetime) -> None:
    detail = f"certificate {which}, {certificate_subject(cert)}"
    if now > cert.not_valid_after_utc:
        raise SigningError(
            f"{label} {path} expired on {cert.not_valid_after_utc:%Y-%m-%d} (not valid after; {detail})",
            path=path,
        )
    if now < cert.not_valid_before_utc:
        raise SigningError(
            f"{label} {path} is not valid until {cert.not_valid_before_utc:%Y-%m-%d %H:%M} UTC "
            f"(not yet valid; {detail})",
            path=path,
        )


def _end_entity_check(cert: x509.Certificate, path: Path) -> None:
    """Refuse certificates c2pa-rs is known to refuse as signers."""
    try:
        if cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca:
            raise SigningError(
                f"Signing certificate {path} starts with a CA certificate "
                f"({certificate_subject(cert)}); put the end-entity certificate first",
                path=path,
            )
    except x509.ExtensionNotFound:
        pass
    try:
        usages = set(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
    except x509.ExtensionNotFound:
        usages = set()
    if not usages & _SIGNING_EKUS:
        raise SigningError(
            f"Signing certificate {path} ({certificate_subject(cert)}) has no extended key usage c2pa "
            "accepts for signing (emailProtection, documentSigning or the C2PA EKU)",
            path=path,
        )


def _issued_by(child: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        child.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _spki(public_key: PublicKeyTypes) -> bytes:
    return public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def certificate_subject(cert: x509.Certificate) -> str:
    return cert.subject.rfc4514_string() or "no subject"


def private_key_pem(key: PrivateKeyTypes) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
