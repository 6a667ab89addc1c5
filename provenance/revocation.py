"""The installation's revocation list: which of its own signing certificates it has revoked, when,
and why (a leaked key, a retired organisation), kept as ``revoked.json`` beside the signing chain.

Why a list of its own rather than OCSP: this installation's readers never go to the network, and
its development chain keeps no CA key to sign OCSP answers with. `manage.py signing_keys_revoke`
writes the list; signing refuses a revoked certificate (`provenance.keys`), and `verify` reads
the list: a file signed by a revoked certificate is "revoked", not authentic, unless a trusted
timestamp proves it was signed before the revocation time. Other C2PA readers do not see this
list; a certificate authority's OCSP responder (named in the certificate) is what they consult.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from provenance.errors import SigningError

REVOCATION_LIST = "revoked.json"  # beside the signing chain
# RFC 5280's CRLReason names that fit a signer's own certificate.
REVOCATION_REASONS = (
    "unspecified",
    "keyCompromise",
    "affiliationChanged",
    "superseded",
    "cessationOfOperation",
)


@dataclass(frozen=True)
class Revocation:
    """One revoked signing certificate: its serial number (decimal, as c2pa reports it), from when
    it is revoked, why, and its subject (for people reading the list)."""

    serial: str
    revoked_at: datetime
    reason: str
    subject: str

    def describe(self) -> str:
        """``certificate 1234 (CN=...) revoked at 2026-01-02 03:04:05 UTC (keyCompromise)``."""
        return (
            f"certificate {self.serial} ({self.subject}) revoked at "
            f"{self.revoked_at.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC ({self.reason})"
        )


def revocations_load(path: Path) -> dict[str, Revocation]:
    """The revocations in the list at ``path`` by serial; an empty dict when there is no list.

    A list that exists but cannot be read is an error naming the file: a damaged list must not
    read as "nothing revoked".
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as error:
        raise SigningError(f"Revocation list {path} cannot be read: {error.strerror}", path=path) from error
    try:
        entries = json.loads(text)["revoked"]
        revocations = [
            Revocation(
                serial=str(entry["serial"]),
                revoked_at=_aware(datetime.fromisoformat(entry["revoked_at"])),
                reason=str(entry["reason"]),
                subject=str(entry.get("subject", "")),
            )
            for entry in entries
        ]
    except (ValueError, KeyError, TypeError) as error:
        raise SigningError(
            f"Revocation list {path} is damaged ({type(error).__name__}: {error}); restore it from a backup",
            path=path,
        ) from None
    return {revocation.serial: revocation for revocation in revocations}


def revocation_add(path: Path, revocation: Revocation, *, now: datetime | None = None) -> Revocation:
    """Add ``revocation`` to the list at ``path`` (created if missing), written whole and renamed
    into place so that a reader never sees half a list.

    Refuses, naming the value: a serial already revoked, an unknown reason, a time in the future
    (a revocation takes effect when it is made or from an earlier time, e.g. when a key leaked).
    """
    now = now or datetime.now(UTC)
    if revocation.reason not in REVOCATION_REASONS:
        raise SigningError(
            f"Revocation reason {revocation.reason!r} is not one of {', '.join(REVOCATION_REASONS)}", path=path
        )
    if revocation.revoked_at.tzinfo is None:
        raise SigningError(f"Revocation time {revocation.revoked_at!r} needs a time zone", path=path)
    if revocation.revoked_at > now:
        raise SigningError(
            f"Revocation time {revocation.revoked_at.isoformat()} is in the future; revoke now or from an earlier time",
            path=path,
        )
    existing = revocations_load(path)
    if revocation.serial in existing:
        raise SigningError(f"Signing {existing[revocation.serial].describe()} already", path=path)
    entries = [*existing.values(), revocation]
    document = {
        "revoked": [
            {
                "serial": entry.serial,
                "revoked_at": entry.revoked_at.astimezone(UTC).isoformat(),
                "reason": entry.reason,
                "subject": entry.subject,
            }
            for entry in entries
        ]
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(prefix=".revoked-", dir=path.parent)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            json.dump(document, handle, indent=2)
            handle.write("\n")
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return revocation


def _aware(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError(f"revoked_at {moment.isoformat()} has no time zone")
    return moment
