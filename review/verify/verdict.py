"""Which asset a file leads to, and the verdict: `file_verify` examines the file, looks up the
asset by the file's hash, then its intact manifest, then its watermark, and retrieves its stored
manifest. A manifest whose content no longer matches names an asset only where the watermark
agrees; otherwise the report names it as the manifest's asset (`manifest_asset`), not the file's.

A watermark is evidence of who marked a file, not of what the picture is: it names an asset only
when the file's pixels also match the asset's stored descriptor (`provenance.fingerprint`). A
mark on another picture is reported as such (`marked_as`), with none of that asset's record.
An expired signing certificate over unchanged content is its own verdict ("expired"), never
"tampered". So is a revoked one ("revoked"): one of this installation's certificates on its
revocation list (`provenance.revocation`), or one c2pa found revoked. A revoked certificate's word
no longer names an asset, unless a trusted timestamp dates the signature before the revocation:
then the file stays authentic."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

from PIL import Image

from provenance.config import provenance_config_from_settings
from provenance.credentials import c2pa_read, reader_context
from provenance.errors import SigningError
from provenance.fingerprint import MATCH_SIMILARITY, fingerprint_similarity
from provenance.keys import signing_certificates_known
from provenance.revocation import Revocation, revocations_load
from review.models import Asset, ManifestRecord
from review.verify.examination import file_examine
from review.verify.limits import Deadline
from review.verify.report import (
    AssetFacts,
    C2paFacts,
    DecisionFacts,
    Outcome,
    PublicationFacts,
    StoredManifestFacts,
    VerifyReport,
    WatermarkFacts,
)

logger = logging.getLogger("greenlight.verify")


def file_verify(*, data: bytes, filename: str, deadline: Deadline | None = None) -> VerifyReport:
    """Examine any file: C2PA state, watermark, the asset they lead to and its stored manifest.

    Raises VerifyRefusedError (with a reason code) for input it will not examine: empty, larger
    than GREENLIGHT_VERIFY_MAX_BYTES, not PNG/JPEG/WebP/MP4 by content, more pixels than
    GREENLIGHT_VERIFY_MAX_PIXELS (a video's frames: GREENLIGHT_VERIFY_MAX_VIDEO_PIXELS; checked on
    the header, before decoding), or truncated or corrupt with no readable manifest either (a
    tampered file whose pixels no longer decode is still reported, with its manifest's verdict);
    and when ``deadline`` (a time budget, `review.verify.limits.Deadline`) is spent (``timeout``).
    """
    config = provenance_config_from_settings()
    with reader_context(config.signing) as context:
        examined = file_examine(data=data, filename=filename, context=context, deadline=deadline)
        file, c2pa, watermark, notes = examined.file, examined.c2pa, examined.watermark, list(examined.notes)
        if c2pa.label is not None:  # read once more (about 1 ms) for the timestamp, which the facts lack
            c2pa = replace(c2pa, timestamped_at=c2pa_read(data, mime=file.mime, context=context).timestamp())
    sha256 = file.sha256
    revocation: Revocation | None = None  # the signer's, when its word no longer counts
    if c2pa.signer_serial is not None:
        c2pa = replace(c2pa, signed_with=signing_certificates_known(config.signing).get(c2pa.signer_serial))
        c2pa, revocation = _revocation_apply(c2pa, config.signing.revocation_list, notes)

    # 4. (1-3 are `file_examine`.) Which asset, if any: the file's hash, then its intact manifest, then
    # its watermark. A manifest whose content no longer matches (intact credentials, a content-binding
    # failure) says which asset it was signed for, not which asset these pixels are: a manifest copied
    # from another file reads exactly so. Then the pixels' own mark decides, and the manifest is
    # taken only where the watermark confirms it. A mark names its asset only where the picture
    # matches that asset's stored descriptor: a mark is evidence of who marked, not of what.
    # A revoked signer's manifest names nothing: whoever holds a leaked key can write any record.
    by_hash = ManifestRecord.objects.filter(sha256=sha256).order_by("created_at", "id").first()
    named = c2pa.serial if c2pa.credentials_intact and revocation is None else None  # the record's serial
    content_matches = c2pa.state == "trusted" and revocation is None
    marked = _marked_asset(watermark)  # (asset id, stored descriptor) of the mark id, if any
    similarity = _similarity(examined.picture, marked[1]) if marked is not None else None
    picture_matches = similarity is not None and similarity >= MATCH_SIMILARITY
    mark_confirms = marked is not None and picture_matches
    matched_by: str | None = None
    serial: int | None = None
    marked_as: int | None = None
    if by_hash is not None:
        matched_by, serial = "sha256", by_hash.asset_id
    elif named is not None and (content_matches or (mark_confirms and marked is not None and marked[0] == named)):
        matched_by, serial = "manifest", named
    elif marked is not None and mark_confirms:
        matched_by, serial = "watermark", marked[0]
    if marked is not None and not picture_matches and serial != marked[0]:
        marked_as = marked[0]
        notes.append(_mismatch_note(marked[0], similarity, has_descriptor=bool(marked[1])))
    if watermark.serial is not None and marked is None:
        notes.append(f"The watermark carries mark id {watermark.serial}, which is no asset's in this database.")
    asset = _asset_load(serial) if serial is not None else None
    if serial is not None and asset is None:
        notes.append(f"Serial {serial} ({matched_by}) is not an asset in this database.")
    if asset is not None and matched_by == "manifest" and not _key_matches(c2pa, asset.key):
        notes.append(f"The manifest's asset key does not match asset #{serial}'s: another installation's file?")
        asset = None
    manifest_asset: int | None = None
    if by_hash is not None and named is not None and named != serial:
        notes.append(f"The manifest names serial {named}, not {serial}.")
    elif named is not None and named != serial:  # content changed, and the pixels do not confirm the manifest
        key = Asset.objects.filter(pk=named).values_list("key", flat=True).first()
        if key is None:
            notes.append(f"The manifest names serial {named}, which is not an asset in this database.")
        elif not _key_matches(c2pa, key):
            notes.append(f"The manifest's asset key does not match asset #{named}'s: another installation's file?")
        else:
            manifest_asset = named
    if marked is not None and serial is not None and marked[0] != serial and marked_as is None:
        notes.append(f"The watermark is asset #{marked[0]}'s, not #{serial}'s.")

    # 5. The stored manifest: this very file's, else the asset's master.
    stored = by_hash
    if stored is None and asset is not None:
        stored = ManifestRecord.objects.filter(asset_id=asset.pk, kind="master").order_by("-created_at", "-id").first()
    stored_facts = (
        StoredManifestFacts(
            matched_by="sha256" if stored is by_hash else "serial",
            kind=stored.kind,
            mime=stored.mime,
            sha256=stored.sha256,
            label=stored.label,
            created_at=stored.created_at,
            store=stored.store,
        )
        if stored is not None
        else None
    )
    others: tuple[str, ...] = ()
    if asset is not None:
        rows = ManifestRecord.objects.filter(asset_id=asset.pk).order_by("created_at", "id")
        if stored is not None:
            rows = rows.exclude(pk=stored.pk)
        others = tuple(f"{kind} {label}" for kind, label in rows.values_list("kind", "label"))

    asset_facts = _asset_facts(asset) if asset is not None else None
    outcome, verdict = _verdict(
        c2pa, watermark, asset_facts, stored_facts, matched_by, manifest_asset, marked_as, revocation
    )
    return VerifyReport(
        outcome=outcome,
        verdict=verdict,
        file=file,
        c2pa=c2pa,
        watermark=watermark,
        matched_by=matched_by if asset_facts else None,
        asset=asset_facts,
        manifest_asset=manifest_asset,
        marked_as=marked_as,
        content_similarity=round(similarity, 3) if similarity is not None else None,
        stored_manifest=stored_facts,
        other_manifests=others,
        notes=tuple(notes),
    )


def _revocation_apply(c2pa: C2paFacts, path: Path, notes: list[str]) -> tuple[C2paFacts, Revocation | None]:
    """The facts with the signer's revocation, if this installation revoked it; and the revocation
    when it counts against the file: always, unless a trusted timestamp dates the signature before it."""
    try:
        revocation = revocations_load(path).get(c2pa.signer_serial or "")
    except SigningError as error:  # signing stops on it too, so the operator hears of it at once
        logger.error("%s", error.problem)
        notes.append(f"Revocations could not be checked: {error.problem}")
        return c2pa, None
    if revocation is None:
        return c2pa, None
    c2pa = replace(c2pa, revoked_at=revocation.revoked_at, revocation_reason=revocation.reason)
    stamped = c2pa.timestamped_at
    if stamped is not None and stamped < revocation.revoked_at:
        notes.append(
            f"The signing {revocation.describe()}, but a trusted timestamp dates this signature "
            f"{stamped:%Y-%m-%d %H:%M:%S} UTC, before it: the signature still holds."
        )
        return c2pa, None
    if stamped is not None:
        notes.append(
            f"A trusted timestamp dates this signature {stamped:%Y-%m-%d %H:%M:%S} UTC, after its certificate was "
            "revoked."
        )
    else:
        notes.append("No trusted timestamp says when it was signed, so it may have been signed after the revocation.")
    return c2pa, revocation


def _marked_asset(watermark: WatermarkFacts) -> tuple[int, str] | None:
    """The asset whose mark id the watermark carries, and its stored descriptor."""
    if watermark.serial is None:
        return None
    row = Asset.objects.filter(mark_id=watermark.serial).values_list("id", "fingerprint").first()
    return (row[0], row[1]) if row is not None else None


def _similarity(picture: Image.Image | None, fingerprint: str) -> float | None:
    if picture is None or not fingerprint:
        return None
    return fingerprint_similarity(picture, fingerprint)


def _mismatch_note(asset_id: int, similarity: float | None, *, has_descriptor: bool) -> str:
    if not has_descriptor:
        return (
            f"The watermark is asset #{asset_id}'s, but that asset has no stored picture descriptor to compare "
            "this picture with: its record is not shown."
        )
    if similarity is None:
        return f"The watermark is asset #{asset_id}'s, but this file's picture could not be compared with it."
    return (
        f"The watermark is asset #{asset_id}'s, but this picture is not that asset's (similarity {similarity:.2f}, "
        f"a match needs {MATCH_SIMILARITY}): a mark copied onto another picture; its record is not shown."
    )


def _asset_load(serial: int) -> Asset | None:
    """The asset and everything its record shows, in a fixed number of queries."""
    return (
        Asset.objects.select_related("campaign", "prompt_version__template")
        .prefetch_related("decisions__reviewer", "publications__published_by")
        .filter(pk=serial)
        .first()
    )


def _key_matches(c2pa: C2paFacts, key: str) -> bool:
    """Whether the manifest's record, if it names an asset key, names this one (not another installation's)."""
    return not c2pa.asset_key or c2pa.asset_key == key


def _asset_facts(asset: Asset) -> AssetFacts:
    return AssetFacts(
        serial=asset.pk,
        key=asset.key,
        state=asset.state,
        campaign=asset.campaign.name,
        template=asset.prompt_version.template.name,
        template_version=asset.prompt_version.number,
        model_name=asset.model_name,
        model_manifest_hash=asset.model_manifest_hash,
        seed=asset.seed,
        prompt=asset.prompt,
        negative_prompt=asset.negative_prompt,
        created_at=asset.created_at,
        has_thumbnail=bool(asset.thumb_path),
        decisions=tuple(
            DecisionFacts(d.reviewer.get_username(), d.decision, d.reason, d.comment, d.created_at)
            for d in asset.decisions.all()
        ),
        publications=tuple(
            PublicationFacts(
                p.rendition, p.path, p.mime, p.sha256, p.published_by.get_username(), p.created_at, p.revoked_at
            )
            for p in asset.publications.all()
            if p.state == p.State.PUBLISHED  # not one being written, nor one rolled back
        ),
    )


def _verdict(
    c2pa: C2paFacts,
    watermark: WatermarkFacts,
    asset: AssetFacts | None,
    stored: StoredManifestFacts | None,
    matched_by: str | None,
    manifest_asset: int | None,
    marked_as: int | None,
    revocation: Revocation | None = None,
) -> tuple[Outcome, str]:
    found = f"asset #{asset.serial} found" if asset else ""
    mismatch = f"this file carries asset #{marked_as}'s mark but is not that image" if marked_as is not None else ""
    unmatched = "no asset in this database matches" + (f"; {mismatch}" if mismatch else "")
    revoked_head = "signed by a certificate that has since been revoked (content unchanged)"
    if revocation is not None and (c2pa.state == "trusted" or c2pa.expired_unchanged):
        head = f"{revoked_head}: {revocation.describe()}"
        return "revoked", f"{head}; {found} by its {matched_by}" if asset else f"{head}; {unmatched}"
    if c2pa.state == "trusted":
        if asset:
            return "authentic", f"Content Credentials trusted; {found}"
        suffix = f"; {mismatch}" if mismatch else ""
        return "trusted_unknown", f"Content Credentials trusted, but no asset in this database matches{suffix}"
    if c2pa.expired_unchanged:
        outcome: Outcome = "expired"
        head = "signed by a certificate that has since expired (content unchanged)"
        if "signingCredential.revoked" in c2pa.codes:  # c2pa's own finding (an OCSP answer the file carries)
            outcome, head = "revoked", revoked_head
        if asset:
            return outcome, f"{head}; {found} by its {matched_by}"
        return outcome, f"{head}; {unmatched}"
    if c2pa.state == "invalid":
        detail = ", ".join(c2pa.codes) or c2pa.error or "no reason given"
        head = f"tampered: manifest invalid ({detail})"
        if manifest_asset is not None:  # the manifest is another asset's, or its asset is not proven
            copied = f"asset #{manifest_asset}'s manifest (a manifest copied from another file)"
            if asset:
                return "tampered", f"{head}; this file carries asset #{asset.serial}'s watermark but {copied}"
            if marked_as is not None:
                return "tampered", f"{head}; {mismatch}, and {copied}"
            if watermark.serial is not None:
                return "tampered", (
                    f"{head}; this file carries watermark mark id {watermark.serial} (no asset in this "
                    f"database) but {copied}"
                )
            return "tampered", (
                f"{head}; manifest of asset #{manifest_asset}, but the content does not match it; "
                "the pixels' asset is unknown"
            )
        if asset:
            return "tampered", f"{head}; it names asset #{asset.serial} ({matched_by})"
        return "tampered", head + (f"; {mismatch}" if mismatch else "")
    if c2pa.state == "valid":
        who = c2pa.claim_generator or "an unknown claim generator"
        suffix = f"; {found} by its {matched_by}" if asset else (f"; {mismatch}" if mismatch else "")
        return "third_party", f"Content Credentials valid but not trusted (third party: {who}){suffix}"
    if asset:
        retrieved = "stored manifest retrieved" if stored else "no stored manifest"
        how = "its watermark and its picture" if matched_by == "watermark" else f"its {matched_by}"
        return (
            "recovered",
            f"provenance recovered, file modified: no Content Credentials, {found} by {how}; {retrieved}",
        )
    if marked_as is not None:
        return "mark_mismatch", f"no Content Credentials; {mismatch}"
    if watermark.serial is not None:
        return "unknown_serial", (f"watermark carries mark id {watermark.serial}, which is no asset's in this database")
    return "nothing", "nothing found: no Content Credentials, no watermark"
