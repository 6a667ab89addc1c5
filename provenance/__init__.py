"""Provenance: mark, sign, read and store files, so any file can be traced back to its asset.

The invisible watermark carries an asset's serial; C2PA Content Credentials carry who made it and
how; renditions are signed with their master as parent; storage is a local folder or an object
store. Used by the pipeline (to finalise what it generates) and by review (to publish and verify).
Callers import from here; the media limits live in `provenance.media`.
"""

from __future__ import annotations

from provenance.config import ProvenanceConfig, provenance_config_from_settings
from provenance.credentials import (
    GENERATION_LABEL,
    C2paReport,
    SignedManifest,
    c2pa_read,
    c2pa_sign,
    generated_manifest,
    reader_context,
    rendition_manifest,
    signed_manifest,
)
from provenance.errors import (
    MediaError,
    ProvenanceError,
    SigningError,
    StorageError,
    WatermarkCapacityError,
    WatermarkError,
)
from provenance.keys import SigningFiles, signer_create, signing_files_check
from provenance.mp4 import Clip, mp4_clip, mp4_decode, mp4_encode
from provenance.renditions import RenditionRequest, image_encode, rendition_make
from provenance.storage import LocalStorage, Storage, publish_storage
from provenance.watermark import (
    WatermarkReading,
    watermark_embed,
    watermark_payload,
    watermark_read,
    watermark_read_frames,
)

__all__ = [
    "GENERATION_LABEL",
    "C2paReport",
    "Clip",
    "LocalStorage",
    "MediaError",
    "ProvenanceConfig",
    "ProvenanceError",
    "RenditionRequest",
    "SignedManifest",
    "SigningError",
    "SigningFiles",
    "Storage",
    "StorageError",
    "WatermarkCapacityError",
    "WatermarkError",
    "WatermarkReading",
    "c2pa_read",
    "c2pa_sign",
    "generated_manifest",
    "image_encode",
    "mp4_clip",
    "mp4_decode",
    "mp4_encode",
    "provenance_config_from_settings",
    "publish_storage",
    "reader_context",
    "rendition_make",
    "rendition_manifest",
    "signed_manifest",
    "signer_create",
    "signing_files_check",
    "watermark_embed",
    "watermark_payload",
    "watermark_read",
    "watermark_read_frames",
]
