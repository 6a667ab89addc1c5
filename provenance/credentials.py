"""C2PA Content Credentials: manifest definitions, signing and reading, all offline.

Readers and builders never fetch remote manifests or OCSP responses (only a signer set with a
timestamp authority asks it, at each sign: ``provenance.keys``). Thumbnails are off: c2pa's
default lossless WebP thumbnail made a 29 KB file 786 KB, and it adds an ingredient thumbnail to
every rendition as well.

Native handles: ``Signer``, ``Context``, ``Builder`` and ``Reader`` hold native resources.
Builders and Readers are closed here; close the Context you get from ``reader_context`` (and the
Signer from ``provenance.keys.signer_create``) with ``with``. One Signer and one Context serve any
number of signs and reads.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from datetime import datetime
from importlib import metadata
from typing import Any, Literal

import c2pa

from provenance.errors import SigningError
from provenance.keys import TIMESTAMP_TRUSTED, SigningFiles, certificates_load, signer_tsa_url, trust_settings
from provenance.watermark import ALGORITHM
from provenance.watermark_keys import soft_binding_name

CLAIM_GENERATOR = "Greenlight"
GENERATION_LABEL = "org.greenlight.generation"
SOFT_BINDING_LABEL = "c2pa.soft-binding"
TRAINED_ALGORITHMIC_MEDIA = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
ACTIONS_LABELS = ("c2pa.actions.v2", "c2pa.actions")  # c2pa-rs writes v1 as v2

State = Literal["trusted", "valid", "invalid", "none"]
_STATES: dict[str, State] = {"Trusted": "trusted", "Valid": "valid", "Invalid": "invalid"}


def reader_context(files: SigningFiles, *, verify_after_sign: bool = True) -> c2pa.Context:
    """A c2pa Context trusting ``files.trust_anchors``, with no network and no thumbnails.

    Use it for Readers and for Builders alike: c2pa records an ingredient's
    validation with the Builder's settings. Close it when done. ``verify_after_sign=False`` is
    only for a signer that reads every file it signs straight back with ``signed_manifest``
    (post-processing): c2pa's own check after signing would validate the same file twice.
    """
    anchors = certificates_load(files.trust_anchors, "Trust anchor file")
    return c2pa.Context.from_dict(trust_settings(anchors, verify_after_sign=verify_after_sign))


# --- Manifests and signing ---------------------------------------------------


def generated_manifest(
    *,
    title: str,
    model_name: str,
    model_manifest_hash: str,
    generation_record: Mapping[str, object],
    watermark_value: str,
    watermark_key_id: str | None = None,
    edit_actions: Sequence[Mapping[str, object]] = (),
) -> dict[str, Any]:
    """Manifest definition for a freshly generated, watermarked master image.

    ``edit_actions`` are what was done to the drawing before it was marked (a resize to the
    output's size, with its method: ``{"action": "c2pa.resized", "parameters": {...}}``).

    Actions: c2pa.created (trainedAlgorithmicMedia, softwareAgent = the model
    and its manifest hash) and c2pa.watermarked; a c2pa.soft-binding assertion
    naming ``ALGORITHM``, the watermark key's id (``watermark_key_id``, never the key) and
    ``watermark_value``; and the generation record under "org.greenlight.generation".
    """
    for field, value in (
        ("title", title),
        ("model_name", model_name),
        ("model_manifest_hash", model_manifest_hash),
        ("watermark_value", watermark_value),
    ):
        if not isinstance(value, str) or not value.strip():
            raise SigningError(f"generated_manifest needs a non-empty {field}, got {value!r}")
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
                        *(_json_copy(action, "edit_actions") for action in edit_actions),
                        # c2pa-rs refuses c2pa.watermarked without a soft-binding assertion.
                        {"action": "c2pa.watermarked"},
                    ]
                },
            },
            _soft_binding(watermark_value, watermark_key_id),
            {"label": GENERATION_LABEL, "data": record},
        ],
    }


def rendition_manifest(
    *, title: str, actions: Sequence[str], watermark_value: str | None = None, watermark_key_id: str | None = None
) -> dict[str, Any]:
    """Manifest definition for a published rendition of a signed master.

    Sign it with ``c2pa_sign(..., parent=(master_bytes, mime))``: c2pa then
    adds the c2pa.opened action for the parent before ``actions``. A rendition
    that was watermarked again ("c2pa.watermarked") needs ``watermark_value``
    for its soft-binding assertion: c2pa-rs refuses the action without one.
    Only claim it after checking that the encoded file still reads back: JPEG
    with 4:2:0 chroma subsampling often erases the mark.
    """
    if not title.strip():
        raise SigningError("rendition_manifest needs a non-empty title")
    for action in actions:
        if action in ("c2pa.created", "c2pa.opened") or "." not in action:
            raise SigningError(
                f"rendition action {action!r} is not allowed: use edit actions such as "
                "'c2pa.converted' or 'c2pa.resized' (c2pa adds c2pa.opened itself)"
            )
    if "c2pa.watermarked" in actions and not watermark_value:
        raise SigningError(
            "rendition action 'c2pa.watermarked' needs watermark_value for the soft-binding "
            "assertion (c2pa-rs refuses the action without one)"
        )
    assertions: list[dict[str, Any]] = [
        {"label": "c2pa.actions.v2", "data": {"actions": [{"action": action} for action in actions]}}
    ]
    if watermark_value:
        assertions.append(_soft_binding(watermark_value, watermark_key_id))
    return {"claim_generator_info": [_claim_generator_info()], "title": title, "assertions": assertions}


@dataclass(frozen=True)
class Ingredient:
    """A file a signed file was made from, other than its parent: a source photo whose pixels it
    keeps ("componentOf") or that a model redrew ("inputTo")."""

    data: bytes
    mime: str
    title: str
    relationship: str  # "componentOf" or "inputTo"


def c2pa_sign(
    data: bytes,
    *,
    mime: str,
    manifest: Mapping[str, object],
    signer: c2pa.Signer,
    context: c2pa.Context,
    parent: tuple[bytes, str] | None = None,
    ingredients: Sequence[Ingredient] = (),
) -> bytes:
    """Embed a signed manifest in ``data`` and return the signed file's bytes.

    ``parent`` is (signed master bytes, its mime), added as the parentOf
    ingredient of a rendition. ``ingredients`` are other files it was made
    from (a source photo: componentOf or inputTo). Watermark before signing:
    any byte changed afterwards breaks the hard binding. With a Signer that asks a timestamp
    authority, a sign it does not answer fails naming the authority: nothing is signed without it.
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
            for ingredient in ingredients:
                builder.add_ingredient(
                    {"title": ingredient.title, "relationship": ingredient.relationship},
                    ingredient.mime,
                    io.BytesIO(ingredient.data),
                )
            builder.sign(signer, mime, io.BytesIO(data), signed)
    except c2pa.C2paError as error:
        tsa_url = signer_tsa_url(signer)
        if tsa_url and str(error).startswith("Signature:"):  # the step that asks the authority
            raise SigningError(
                f"C2PA signing of a {mime} file failed at its signature, which needs a timestamp from "
                f"GREENLIGHT_TSA_URL = {tsa_url!r} (is the timestamp authority answering?); nothing was signed "
                f"without one: {error}"
            ) from error
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

    def informational_codes(self) -> tuple[str, ...]:
        """Informational codes of the active manifest, e.g. "timeStamp.untrusted"."""
        results = (self.store or {}).get("validation_results") or {}
        entries = (results.get("activeManifest") or {}).get("informational", [])
        return tuple(e["code"] for e in entries if isinstance(e, dict) and isinstance(e.get("code"), str))

    def timestamp(self) -> datetime | None:
        """When a trusted timestamp authority says the claim was signed (RFC 3161), or None
        without a timestamp, or with one from an authority the trust anchors do not cover."""
        info = (self.manifest or {}).get("signature_info") or {}
        if TIMESTAMP_TRUSTED not in self.success_codes() or not isinstance(info.get("time"), str):
            return None
        try:
            return datetime.fromisoformat(info["time"])
        except ValueError:
            return None

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
        raise SigningError("c2pa_read was given a closed c2pa Context")
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

    Raises SigningError unless it reads back trusted, and unless its timestamp, if it carries
    one, is trusted too: a file whose credentials do not hold, or will not hold once the
    certificate expires, must not be stored or published.
    """
    report = c2pa_read(data, mime=mime, context=context)
    if report.state != "trusted" or report.active_label is None or report.store is None:
        detail = ", ".join(report.validation_codes) or report.error or "no manifest"
        raise SigningError(f"The signed {kind} ({mime}) reads back as {report.state}, not trusted ({detail})")
    doubtful = [code for code in report.informational_codes() if code.startswith("timeStamp.")]
    if doubtful:
        raise SigningError(
            f"The signed {kind} ({mime}) carries a timestamp its readers do not trust ({', '.join(doubtful)}): "
            "add the timestamp authority's root certificate to the trust anchors (GREENLIGHT_TRUST_ANCHORS)"
        )
    return SignedManifest(
        kind=kind, mime=mime, sha256=hashlib.sha256(data).hexdigest(), label=report.active_label, store=report.store
    )


# --- Helpers -----------------------------------------------------------------


def _soft_binding(watermark_value: str, key_id: str | None = None) -> dict[str, Any]:
    """The c2pa.soft-binding assertion for our watermark (c2pa-rs 0.91 decodes it on read): the
    algorithm, and in its ``name`` the watermark key's id (never the key itself)."""
    data: dict[str, Any] = {"alg": ALGORITHM, "blocks": [{"scope": {}, "value": watermark_value}]}
    if key_id:
        data["name"] = soft_binding_name(key_id)
    return {"label": SOFT_BINDING_LABEL, "data": data}


def _claim_generator_info() -> dict[str, str]:
    version = _greenlight_version()
    return {"name": CLAIM_GENERATOR, "version": version} if version else {"name": CLAIM_GENERATOR}


@functools.cache
def _greenlight_version() -> str:
    """The installed package's version, looked up once a process (1.6 ms a lookup: two a signed
    asset, when the whole of post-processing is about 25 ms); "" when running from a checkout."""
    try:
        return metadata.version("greenlight")
    except metadata.PackageNotFoundError:
        return ""


def _json_copy(value: Mapping[str, object], field: str) -> dict[str, Any]:
    try:
        copied = json.loads(json.dumps(dict(value), allow_nan=False))
    except (TypeError, ValueError) as error:
        raise SigningError(f"{field} must be JSON-serialisable: {error}") from error
    if not isinstance(copied, dict):
        raise SigningError(f"{field} must be a mapping")
    _number_lists_refuse(copied, field)
    return copied


def _number_lists_refuse(value: object, path: str) -> None:
    """Refuse a list made only of numbers anywhere in ``value``: c2pa writes such a list as a byte
    string, so ``[256, 256]`` would read back as ``"AAA="`` (each number cut to a byte) and
    ``[1.5, 2.5]`` as ``""``. Name the parts (``{"width": 256, "height": 256}``) instead."""
    if isinstance(value, dict):
        for key, item in value.items():
            _number_lists_refuse(item, f"{path}.{key}")
    elif isinstance(value, list):
        if value and all(isinstance(item, int | float) and not isinstance(item, bool) for item in value):
            raise SigningError(
                f"{path} = {value!r}: a list of numbers does not survive C2PA signing (it is stored as bytes); "
                "give each number a name"
            )
        for index, item in enumerate(value):
            _number_lists_refuse(item, f"{path}[{index}]")


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
