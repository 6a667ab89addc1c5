"""C2PA Content Credentials: signing files, signing and reading, all offline.

Signing files are a PEM chain (end-entity certificate, then its intermediate),
the end-entity's private key and the PEM root that readers trust. They are
checked before any generation starts (``signing_files_check``), so a batch
never renders images it cannot sign.

The private key sits behind one interface, ``SigningKey``, with two
implementations: ``KeyFileKey`` (a PEM file, the development default) and
``CallbackKey`` (a key held in a KMS or HSM: a callable that returns the
signature of the bytes it is given, named by ``SigningFiles.callback``).
Neither keeps key material in its repr, its errors or its logs.

Offline: the signer has no timestamp authority (``ta_url`` None), and readers
and builders never fetch remote manifests or OCSP responses. Thumbnails are
off: c2pa's default lossless WebP thumbnail made a 29 KB file 786 KB, and it
adds an ingredient thumbnail to every rendition as well.

Native handles: ``Signer``, ``Context``, ``Builder`` and ``Reader`` hold native
resources. Builders and Readers are closed here; close the Signer and the
Context you get from ``signer_create`` and ``reader_context`` with ``with``.
One Signer and one Context serve any number of signs and reads.
"""

from __future__ import annotations

import hashlib
import importlib
import io
import itertools
import json
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from datetime import UTC, datetime, timedelta
from importlib import metadata
from pathlib import Path
from typing import Any, Literal, Protocol

import c2pa
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes, PublicKeyTypes
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from pipeline.errors import SigningError
from pipeline.watermark import ALGORITHM

logger = logging.getLogger("greenlight.signing")

CLAIM_GENERATOR = "Greenlight"
GENERATION_LABEL = "org.greenlight.generation"
SOFT_BINDING_LABEL = "c2pa.soft-binding"
TRAINED_ALGORITHMIC_MEDIA = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
ACTIONS_LABELS = ("c2pa.actions.v2", "c2pa.actions")  # c2pa-rs writes v1 as v2

# Extended key usages c2pa-rs accepts for a signing certificate. With
# documentSigning or the C2PA EKU, readers also need trust.trust_config.
_SIGNING_EKUS = {
    ExtendedKeyUsageOID.EMAIL_PROTECTION,
    x509.ObjectIdentifier("1.3.6.1.5.5.7.3.36"),  # documentSigning
    x509.ObjectIdentifier("1.3.6.1.4.1.62558.2.1"),  # C2PA signing
}

State = Literal["trusted", "valid", "invalid", "none"]
_STATES: dict[str, State] = {"Trusted": "trusted", "Valid": "valid", "Invalid": "invalid"}


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


# --- Signing files -----------------------------------------------------------


def dev_chain_create(
    directory: Path,
    *,
    organisation: str = "Greenlight development",
    days: int = 365,
    overwrite: bool = False,
) -> SigningFiles:
    """Create a development chain (root -> intermediate -> signer, ECDSA P-256).

    Writes chain.pem, signer.key (mode 0600) and root.pem into ``directory``,
    creating it; refuses to replace existing files unless ``overwrite``.
    """
    if days < 1:
        raise ValueError(f"days must be at least 1, got {days}")
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
    root_key = ec.generate_private_key(ec.SECP256R1())
    intermediate_key = ec.generate_private_key(ec.SECP256R1())
    signer_key = ec.generate_private_key(ec.SECP256R1())
    root_name = _name(f"{organisation} Root CA", organisation)
    intermediate_name = _name(f"{organisation} Intermediate CA", organisation)

    root = (
        _certificate_builder(root_name, root_name, root_key.public_key(), not_before, not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=1), critical=True)
        .add_extension(_key_usage(cert_sign=True), critical=True)
        .sign(root_key, hashes.SHA256())
    )
    intermediate = (
        _certificate_builder(intermediate_name, root_name, intermediate_key.public_key(), not_before, not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(cert_sign=True), critical=True)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key()),
            critical=False,
        )
        .sign(root_key, hashes.SHA256())
    )
    signer = (
        _certificate_builder(
            _name(f"{organisation} Signer", organisation),
            intermediate_name,
            signer_key.public_key(),
            not_before,
            not_after,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(cert_sign=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(intermediate_key.public_key()),
            critical=False,
        )
        .sign(intermediate_key, hashes.SHA256())
    )

    pem = serialization.Encoding.PEM
    files.trust_anchors.write_bytes(root.public_bytes(pem))
    files.chain.write_bytes(signer.public_bytes(pem) + intermediate.public_bytes(pem))
    _private_write(files.key, _pkcs8_pem(signer_key))
    return files


def signing_files_check(files: SigningFiles, *, now: datetime | None = None) -> None:
    """Fail with a SigningError naming the file if these files cannot sign.

    Checks: each file exists and is PEM; every certificate in the chain and
    the trust anchors is valid at ``now``; the key matches the end-entity
    certificate (a key file: ECDSA P-256 for ES256; a callback: one probe
    signature that verifies with the certificate); the chain is in order and
    ends at one of the trust anchors (otherwise readers would say "valid", not
    "trusted"). Run it before generating anything.
    """
    chain = _chain_checked(files, now=now)
    signing_key(files).check(chain[0], files.chain)


def signer_create(files: SigningFiles) -> c2pa.Signer:
    """A c2pa Signer for these files (key file or KMS/HSM callback), without a timestamp authority.

    Checks the files first. Reusable for any number of signs; close it
    (``with signer_create(files) as signer:``).
    """
    chain = _chain_checked(files, now=None)
    key = signing_key(files)
    key.check(chain[0], files.chain)
    chain_pem = b"".join(cert.public_bytes(serialization.Encoding.PEM) for cert in chain)
    try:
        return key.signer(chain_pem, _algorithm(chain[0], files.chain))
    except c2pa.C2paError as error:
        raise SigningError(
            f"c2pa refused the signing chain {files.chain} with {key.describe()}: {error}",
            path=files.chain,
        ) from error


# --- Signing keys: one interface, two implementations ---------------------------


class SigningKey(Protocol):
    """Where the end-entity's private key is held, and how a c2pa Signer reaches it."""

    def describe(self) -> str:
        """A name for messages (a path or an import path; never key material)."""
        ...

    def check(self, end_entity: x509.Certificate, chain_path: Path) -> None:
        """Raise SigningError unless this key belongs to ``end_entity`` and can sign."""
        ...

    def signer(self, chain_pem: bytes, alg: c2pa.C2paSigningAlg) -> c2pa.Signer:
        """A c2pa Signer using this key and the PEM chain (no timestamp authority)."""
        ...


@dataclass(frozen=True)
class KeyFileKey:
    """An unencrypted PEM private key on disk (the development chain's ``signer.key``).

    The key is read when needed and never kept on this object.
    """

    path: Path

    def describe(self) -> str:
        return f"key file {self.path}"

    def check(self, end_entity: x509.Certificate, chain_path: Path) -> None:
        self._load_checked(end_entity, chain_path)

    def signer(self, chain_pem: bytes, alg: c2pa.C2paSigningAlg) -> c2pa.Signer:
        if alg != c2pa.C2paSigningAlg.ES256:
            raise SigningError(f"Signing key {self.path} signs ES256 only, not {alg.name}", path=self.path)
        end_entity = x509.load_pem_x509_certificates(chain_pem)[0]
        key = self._load_checked(end_entity, self.path)
        info = c2pa.C2paSignerInfo(alg, chain_pem, _pkcs8_pem(key), None)
        return c2pa.Signer.from_info(info)

    def _load_checked(self, end_entity: x509.Certificate, chain_path: Path) -> PrivateKeyTypes:
        key = _private_key_load(self.path)
        if _spki(key.public_key()) != _spki(end_entity.public_key()):
            raise SigningError(
                f"Signing key {self.path} does not match the end-entity certificate in "
                f"{chain_path} ({_subject(end_entity)})",
                path=self.path,
            )
        if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
            raise SigningError(
                f"Signing key {self.path} is not an ECDSA P-256 key; ES256 signing needs one",
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
                f"end-entity certificate in {chain_path} ({_subject(end_entity)}): the KMS key "
                "and the certificate do not belong together",
                path=chain_path,
            )

    def signer(self, chain_pem: bytes, alg: c2pa.C2paSigningAlg) -> c2pa.Signer:
        def sign(data: bytes) -> bytes:
            try:
                return self._call(data)
            except SigningError as error:
                logger.error("%s", error.problem)
                # c2pa logs this message and turns it into a signing failure.
                raise RuntimeError(error.problem) from None

        return c2pa.Signer.from_callback(sign, alg, chain_pem.decode("ascii"), None)

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
        f"Signing certificate {chain_path} ({_subject(end_entity)}) has a key c2pa cannot sign with "
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


def reader_context(files: SigningFiles) -> c2pa.Context:
    """A c2pa Context trusting ``files.trust_anchors``, with no network and no thumbnails.

    Use it for Readers and for Builders alike: c2pa records an ingredient's
    validation with the Builder's settings. Close it when done.
    """
    anchors = _certificates_load(files.trust_anchors, "Trust anchor file")
    anchors_pem = "".join(cert.public_bytes(serialization.Encoding.PEM).decode("ascii") for cert in anchors)
    settings = {
        "trust": {"user_anchors": anchors_pem},
        "verify": {"remote_manifest_fetch": False, "ocsp_fetch": False},
        "builder": {"thumbnail": {"enabled": False}},
    }
    return c2pa.Context.from_dict(settings)


# --- Manifests and signing ---------------------------------------------------


def generated_manifest(
    *,
    title: str,
    model_name: str,
    model_manifest_hash: str,
    generation_record: Mapping[str, object],
    watermark_value: str,
) -> dict[str, Any]:
    """Manifest definition for a freshly generated, watermarked master image.

    Actions: c2pa.created (trainedAlgorithmicMedia, softwareAgent = the model
    and its manifest hash) and c2pa.watermarked; a c2pa.soft-binding assertion
    naming ``ALGORITHM`` and ``watermark_value``; and the generation record
    under "org.greenlight.generation".
    """
    for field, value in (
        ("title", title),
        ("model_name", model_name),
        ("model_manifest_hash", model_manifest_hash),
        ("watermark_value", watermark_value),
    ):
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"generated_manifest needs a non-empty {field}, got {value!r}")
    record = _json_copy(generation_record, "generation_record")
    return {
        "claim_generator_info": [_claim_generator_info()],
        "title": title,
        "assertions": [
            {
                "label": "c2pa.actions.v2",
                "data": {
                    "actions": [
                        {
                            "action": "c2pa.created",
                            "digitalSourceType": TRAINED_ALGORITHMIC_MEDIA,
                            "softwareAgent": {"name": model_name, "version": model_manifest_hash},
                        },
                        # c2pa-rs refuses c2pa.watermarked without a soft-binding assertion.
                        {"action": "c2pa.watermarked"},
                    ]
                },
            },
            _soft_binding(watermark_value),
            {"label": GENERATION_LABEL, "data": record},
        ],
    }


def rendition_manifest(*, title: str, actions: Sequence[str], watermark_value: str | None = None) -> dict[str, Any]:
    """Manifest definition for a published rendition of a signed master.

    Sign it with ``c2pa_sign(..., parent=(master_bytes, mime))``: c2pa then
    adds the c2pa.opened action for the parent before ``actions``. A rendition
    that was watermarked again ("c2pa.watermarked") needs ``watermark_value``
    for its soft-binding assertion: c2pa-rs refuses the action without one.
    Only claim it after checking that the encoded file still reads back: JPEG
    with 4:2:0 chroma subsampling often erases the mark.
    """
    if not title.strip():
        raise ValueError("rendition_manifest needs a non-empty title")
    for action in actions:
        if action in ("c2pa.created", "c2pa.opened") or "." not in action:
            raise ValueError(
                f"rendition action {action!r} is not allowed: use edit actions such as "
                "'c2pa.converted' or 'c2pa.resized' (c2pa adds c2pa.opened itself)"
            )
    if "c2pa.watermarked" in actions and not watermark_value:
        raise ValueError(
            "rendition action 'c2pa.watermarked' needs watermark_value for the soft-binding "
            "assertion (c2pa-rs refuses the action without one)"
        )
    assertions: list[dict[str, Any]] = [
        {"label": "c2pa.actions.v2", "data": {"actions": [{"action": action} for action in actions]}}
    ]
    if watermark_value:
        assertions.append(_soft_binding(watermark_value))
    return {"claim_generator_info": [_claim_generator_info()], "title": title, "assertions": assertions}


def c2pa_sign(
    data: bytes,
    *,
    mime: str,
    manifest: Mapping[str, object],
    signer: c2pa.Signer,
    context: c2pa.Context,
    parent: tuple[bytes, str] | None = None,
) -> bytes:
    """Embed a signed manifest in ``data`` and return the signed file's bytes.

    ``parent`` is (signed master bytes, its mime), added as the parentOf
    ingredient of a rendition. Watermark before signing: any byte changed
    afterwards breaks the hard binding.
    """
    if mime not in c2pa.Builder.get_supported_mime_types():
        raise SigningError(f"Cannot sign a {mime!r} file: c2pa does not support that type")
    signed = io.BytesIO()
    try:
        with c2pa.Builder(dict(manifest), context=context) as builder:
            if parent is not None:
                parent_data, parent_mime = parent
                builder.set_intent(c2pa.C2paBuilderIntent.EDIT)
                builder.add_ingredient({"relationship": "parentOf"}, parent_mime, io.BytesIO(parent_data))
            builder.sign(signer, mime, io.BytesIO(data), signed)
    except c2pa.C2paError as error:
        raise SigningError(f"C2PA signing of a {mime} file failed: {error}") from error
    return signed.getvalue()


# --- Reading -----------------------------------------------------------------


@dataclass(frozen=True)
class C2paReport:
    """What a file's Content Credentials say, and whether they hold."""

    state: State
    active_label: str | None
    manifest: dict[str, Any] | None  # the active manifest, as c2pa's JSON
    validation_codes: tuple[str, ...]  # failure codes, e.g. "assertion.dataHash.mismatch"
    error: str | None  # why the file could not be read at all, if it could not
    # The whole manifest store as c2pa's JSON (every manifest, validation results), if read.
    store: dict[str, Any] | None = dataclass_field(default=None, repr=False, compare=False)

    def success_codes(self) -> tuple[str, ...]:
        """Success codes of the active manifest, e.g. "signingCredential.trusted"."""
        results = (self.store or {}).get("validation_results") or {}
        entries = (results.get("activeManifest") or {}).get("success", [])
        return tuple(e["code"] for e in entries if isinstance(e, dict) and isinstance(e.get("code"), str))

    def assertion(self, label: str) -> dict[str, Any] | None:
        """Data of the active manifest's first assertion with ``label``."""
        wanted = ACTIONS_LABELS if label in ACTIONS_LABELS else (label,)
        for item in self._assertions():
            if item.get("label") in wanted:
                data = item.get("data")
                return data if isinstance(data, dict) else None
        return None

    def actions(self) -> list[str]:
        """Action names of the active manifest, in order."""
        names: list[str] = []
        for item in self._assertions():
            if item.get("label") in ACTIONS_LABELS:
                data = item.get("data") or {}
                names.extend(str(action.get("action")) for action in data.get("actions", []))
        return names

    def _assertions(self) -> list[dict[str, Any]]:
        if self.manifest is None:
            return []
        return [item for item in self.manifest.get("assertions", []) if isinstance(item, dict)]


def c2pa_read(data: bytes, *, mime: str, context: c2pa.Context) -> C2paReport:
    """Read and validate a file's Content Credentials; never raises for a bad file.

    No manifest (e.g. stripped by a re-save) gives "none"; a file c2pa cannot
    parse gives "invalid" with ``error`` set.
    """
    if not context.is_valid:
        raise ValueError("c2pa_read was given a closed c2pa Context")
    try:
        with c2pa.Reader(mime, io.BytesIO(data), context=context) as reader:
            store_json = reader.json()
    except c2pa.C2paError.ManifestNotFound:
        return C2paReport("none", None, None, (), None)
    except c2pa.C2paError as error:
        return C2paReport("invalid", None, None, (), f"c2pa could not read the file: {error}")
    try:
        store = json.loads(store_json)
    except json.JSONDecodeError as error:
        return C2paReport("invalid", None, None, (), f"c2pa returned unreadable JSON: {error}")

    active_label = store.get("active_manifest")
    manifest = store.get("manifests", {}).get(active_label) if active_label else None
    codes = _failure_codes(store)
    raw_state = store.get("validation_state")
    state = _STATES.get(raw_state) if isinstance(raw_state, str) else None
    if state is None:
        return C2paReport("invalid", active_label, manifest, codes, f"unknown validation state {raw_state!r}", store)
    return C2paReport(state, active_label, manifest, codes, None, store)


@dataclass(frozen=True)
class SignedManifest:
    """A file this project has just signed, described for the manifest store.

    ``kind`` is "master", "thumbnail" or "rendition:<name>"; ``store`` is the manifest store
    JSON as c2pa read it back from the signed bytes (so it is exactly what a reader sees).
    """

    kind: str
    mime: str
    sha256: str
    label: str
    store: dict[str, Any] = dataclass_field(repr=False, compare=False)


def signed_manifest(data: bytes, *, kind: str, mime: str, context: c2pa.Context) -> SignedManifest:
    """Read a freshly signed file back (about 1 ms) and describe its manifest for the store.

    Raises SigningError unless it reads back trusted: a file whose credentials do not hold
    must not be stored or published.
    """
    report = c2pa_read(data, mime=mime, context=context)
    if report.state != "trusted" or report.active_label is None or report.store is None:
        detail = ", ".join(report.validation_codes) or report.error or "no manifest"
        raise SigningError(f"The signed {kind} ({mime}) reads back as {report.state}, not trusted ({detail})")
    return SignedManifest(
        kind=kind, mime=mime, sha256=hashlib.sha256(data).hexdigest(), label=report.active_label, store=report.store
    )


# --- Helpers -----------------------------------------------------------------


def _chain_checked(files: SigningFiles, *, now: datetime | None) -> list[x509.Certificate]:
    """Load and check the chain and trust anchors (not the key); return the chain."""
    if now is None:
        now = datetime.now(UTC)
    elif now.tzinfo is None:
        raise ValueError("signing_files_check needs a timezone-aware 'now'")
    chain = _certificates_load(files.chain, "Signing certificate chain")
    anchors = _certificates_load(files.trust_anchors, "Trust anchor file")

    for path, label, certs in (
        (files.chain, "Signing certificate", chain),
        (files.trust_anchors, "Trust anchor", anchors),
    ):
        for index, cert in enumerate(certs, start=1):
            _validity_check(cert, path=path, label=label, which=f"{index} of {len(certs)}", now=now)

    _end_entity_check(chain[0], files.chain)
    for index, (child, issuer) in enumerate(itertools.pairwise(chain), start=1):
        if not _issued_by(child, issuer):
            raise SigningError(
                f"Signing certificate chain {files.chain}: certificate {index} "
                f"({_subject(child)}) is not issued by certificate {index + 1} "
                f"({_subject(issuer)}); list the end-entity certificate first, then its issuer",
                path=files.chain,
            )
    if not any(_issued_by(chain[-1], anchor) for anchor in anchors):
        raise SigningError(
            f"Trust anchor file {files.trust_anchors} holds no issuer of the last certificate "
            f"in {files.chain} ({_subject(chain[-1])}); readers would report 'valid', "
            "not 'trusted'",
            path=files.trust_anchors,
        )
    return chain


def _file_read(path: Path, what: str) -> bytes:
    if not path.exists():
        raise SigningError(f"{what} {path} does not exist", path=path)
    try:
        return path.read_bytes()
    except OSError as error:
        raise SigningError(f"{what} {path} cannot be read: {error.strerror}", path=path) from error


def _certificates_load(path: Path, what: str) -> list[x509.Certificate]:
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
    detail = f"certificate {which}, {_subject(cert)}"
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
                f"({_subject(cert)}); put the end-entity certificate first",
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
            f"Signing certificate {path} ({_subject(cert)}) has no extended key usage c2pa "
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


def _subject(cert: x509.Certificate) -> str:
    return cert.subject.rfc4514_string() or "no subject"


def _pkcs8_pem(key: PrivateKeyTypes) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _private_write(path: Path, data: bytes) -> None:
    """Write a private key readable by its owner only, whatever the umask."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        os.fchmod(handle.fileno(), 0o600)  # an existing file keeps its old mode otherwise
        handle.write(data)


def _name(common_name: str, organisation: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation),
        ]
    )


def _certificate_builder(
    subject: x509.Name,
    issuer: x509.Name,
    public_key: ec.EllipticCurvePublicKey,
    not_before: datetime,
    not_after: datetime,
) -> x509.CertificateBuilder:
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


def _key_usage(*, cert_sign: bool) -> x509.KeyUsage:
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


def _soft_binding(watermark_value: str) -> dict[str, Any]:
    """The c2pa.soft-binding assertion for our watermark (c2pa-rs 0.91 decodes it on read)."""
    return {
        "label": SOFT_BINDING_LABEL,
        "data": {"alg": ALGORITHM, "blocks": [{"scope": {}, "value": watermark_value}]},
    }


def _claim_generator_info() -> dict[str, str]:
    try:
        return {"name": CLAIM_GENERATOR, "version": metadata.version("greenlight")}
    except metadata.PackageNotFoundError:  # running from a checkout
        return {"name": CLAIM_GENERATOR}


def _json_copy(value: Mapping[str, object], field: str) -> dict[str, Any]:
    try:
        copied = json.loads(json.dumps(dict(value), allow_nan=False))
    except (TypeError, ValueError) as error:
        raise ValueError(f"{field} must be JSON-serialisable: {error}") from error
    if not isinstance(copied, dict):
        raise ValueError(f"{field} must be a mapping")
    return copied


def _failure_codes(store: Mapping[str, Any]) -> tuple[str, ...]:
    """Failure codes of the active manifest and its ingredients, first seen first."""
    results = store.get("validation_results") or {}
    entries: list[Any] = list((results.get("activeManifest") or {}).get("failure", []))
    for delta in results.get("ingredientDeltas", []):
        entries.extend((delta.get("validationDeltas") or {}).get("failure", []))
    entries.extend(store.get("validation_status", []))
    codes: dict[str, None] = {}
    for entry in entries:
        if isinstance(entry, dict) and isinstance(entry.get("code"), str):
            codes[entry["code"]] = None
    return tuple(codes)
