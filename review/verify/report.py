"""What `verify` reports about a file: frozen facts, the outcome, and the one-line verdict."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Literal

Outcome = Literal[
    "authentic",
    "trusted_unknown",
    "expired",
    "revoked",
    "tampered",
    "third_party",
    "recovered",
    "mark_mismatch",
    "unknown_serial",
    "nothing",
]


@dataclass(frozen=True)
class FileFacts:
    """The file as given: its name, what its bytes are, and how big."""

    filename: str
    size: int
    sha256: str
    format: str  # png, jpeg, webp, mp4 (from the bytes)
    mime: str
    width: int
    height: int
    extension_matches: bool  # False when the name's extension names another format


@dataclass(frozen=True)
class C2paFacts:
    """The file's own Content Credentials, as c2pa validated them with our trust anchors."""

    state: str  # trusted, valid, invalid, none
    codes: tuple[str, ...]  # failure codes, e.g. assertion.dataHash.mismatch
    error: str | None
    label: str | None
    claim_generator: str | None
    title: str | None
    actions: tuple[str, ...]
    signer: str | None  # the signing certificate's issuer / common name
    ingredients: tuple[str, ...]  # titles and relationships of the active manifest's ingredients
    credentials_intact: bool  # trusted signer and validated claim signature, whatever the content
    serial: int | None  # from the generation record, if any
    asset_key: str | None
    # The claim signature holds and the content matches, but the signing certificate has expired
    # (or been revoked) since: "signed by a certificate that has since expired", not tampering.
    expired_unchanged: bool = False
    signer_serial: str | None = None  # the signing certificate's serial number (decimal)
    signed_with: str | None = None  # which of this installation's certificates signed it, if one did
    # When a trusted RFC 3161 timestamp authority says the manifest was signed (GREENLIGHT_TSA_URL).
    timestamped_at: datetime | None = None
    # The signing certificate is on this installation's revocation list: since when, and why.
    revoked_at: datetime | None = None
    revocation_reason: str | None = None


@dataclass(frozen=True)
class WatermarkFacts:
    """What the watermark detector found, read with each of the installation's watermark keys."""

    found: bool
    serial: int | None  # the mark id it carries (`Asset.mark_id`), not an asset's serial
    confidence: float | None
    note: str  # why it was not read, if it was not
    key_id: str | None = None  # the watermark key it was read with (never the key)


@dataclass(frozen=True)
class Examination:
    """What the file itself says, before any database lookup."""

    file: FileFacts
    c2pa: C2paFacts
    watermark: WatermarkFacts
    notes: tuple[str, ...]
    # The decoded picture (a clip's first frame), kept for the content check against an asset's
    # stored descriptor; None when the pixels could not be decoded.
    picture: Any = field(default=None, repr=False, compare=False)


@dataclass(frozen=True)
class DecisionFacts:
    reviewer: str
    decision: str
    reason: str
    comment: str
    at: datetime


@dataclass(frozen=True)
class PublicationFacts:
    rendition: str
    path: str
    mime: str
    sha256: str
    published_by: str
    at: datetime
    revoked_at: datetime | None


@dataclass(frozen=True)
class AssetFacts:
    """The asset's record: what made it and who let it out."""

    serial: int
    key: str
    state: str
    campaign: str
    template: str
    template_version: int
    model_name: str
    model_manifest_hash: str
    seed: int
    prompt: str
    negative_prompt: str
    created_at: datetime
    has_thumbnail: bool
    decisions: tuple[DecisionFacts, ...]
    publications: tuple[PublicationFacts, ...]


@dataclass(frozen=True)
class StoredManifestFacts:
    """A manifest from the manifest store: the one this file carries (by sha256) or the asset's
    master manifest (by serial)."""

    matched_by: str  # "sha256" or "serial"
    kind: str
    mime: str
    sha256: str
    label: str
    created_at: datetime
    store: dict[str, Any]


@dataclass(frozen=True)
class VerifyReport:
    """Everything `verify` found about one file, and the one-line verdict."""

    outcome: Outcome
    verdict: str
    file: FileFacts
    c2pa: C2paFacts
    watermark: WatermarkFacts
    matched_by: str | None  # how the asset was identified: sha256, manifest or watermark
    asset: AssetFacts | None  # the asset this file is: its bytes, its intact manifest, or its pixels' watermark
    # The asset the file's manifest names when that is not this file's asset: the content does not
    # match the manifest, and the watermark names another asset or cannot be read (a manifest
    # copied from another file, or pixels changed beyond their mark). Never equal to `asset`.
    manifest_asset: int | None
    # The asset whose mark the file carries when its picture is not that asset's (the content
    # check failed): a mark copied onto another picture. Never equal to `asset`; no record shown.
    marked_as: int | None
    # How much the file's picture looks like the marked asset's master (cosine similarity of
    # `provenance.fingerprint`; a match needs MATCH_SIMILARITY), when they were compared.
    content_similarity: float | None
    stored_manifest: StoredManifestFacts | None
    other_manifests: tuple[str, ...]  # the asset's other stored manifests, as "kind label"
    notes: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (datetimes as ISO 8601 text)."""
        return _jsonable(asdict(self))


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    return value
