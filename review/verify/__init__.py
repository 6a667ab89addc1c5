"""`verify`: given any file, what its Content Credentials, its watermark and our records say.

One service behind the CLI (`manage.py verify`), the dashboard page (`/verify/`) and the API
(`POST /api/verify`). The file's format comes from its bytes, never from its name; bad input is
refused before anything expensive runs (size first, then the header's pixel count, then a
decode: a video's only as far as its watermark is read), so no upload can make it decode a
decompression bomb or fill the memory. On the web each verify also has a time budget, and the
process runs only a few at once (`limits`).

Identifying an asset, without false matches:
1. the file's sha256 is one the manifest store holds (a file we signed, unchanged);
2. its manifest's generation record (`org.greenlight.generation`) names a serial, and the
   manifest was signed by a trusted signer with a validated claim signature: trusted, or invalid
   only because the content no longer matches (tampered pixels, intact credentials) and the
   watermark names the same serial;
3. its watermark carries an asset's mark id (read with each of the installation's secret
   watermark keys, reported only above the detector's false-positive bound) AND its picture
   matches that asset's stored descriptor (`provenance.fingerprint`); a mark on another picture is
   reported as such (`marked_as`), with none of that asset's record.
A serial must also be an asset in this database (and its key must match the manifest's). A
signing certificate that expired after signing unchanged content gives the "expired" outcome, never
"tampered"; one on the installation's revocation list (`provenance.revocation`) gives "revoked",
and its manifest's record names no asset (only the file's hash, or its watermark and picture, do),
unless a trusted timestamp (`GREENLIGHT_TSA_URL`) dates the signature before the revocation. A
manifest whose content does not match is evidence of the asset it was signed for, not of the
pixels it is attached to: when the watermark names another asset (a manifest copied from another
file) or cannot be read, the report names the manifest's asset as such (`manifest_asset`), never
as the file's.

- report: the frozen facts and the report, and its outcomes
- decoding: size and format checks, bounded image and video decoding
- limits: the time budget (`Deadline`) and the process's verify slots (`verify_slot`)
- examination: what the file says of itself (`file_examine`, no database)
- verdict: the lookup and the verdict (`file_verify`)
"""

from __future__ import annotations

from review.verify.decoding import format_detect, size_check
from review.verify.examination import file_examine, watermark_examine
from review.verify.limits import Deadline, verify_slot
from review.verify.report import (
    AssetFacts,
    C2paFacts,
    DecisionFacts,
    Examination,
    FileFacts,
    Outcome,
    PublicationFacts,
    StoredManifestFacts,
    VerifyReport,
    WatermarkFacts,
)
from review.verify.verdict import file_verify

__all__ = [
    "AssetFacts",
    "C2paFacts",
    "Deadline",
    "DecisionFacts",
    "Examination",
    "FileFacts",
    "Outcome",
    "PublicationFacts",
    "StoredManifestFacts",
    "VerifyReport",
    "WatermarkFacts",
    "file_examine",
    "file_verify",
    "format_detect",
    "size_check",
    "verify_slot",
    "watermark_examine",
]
