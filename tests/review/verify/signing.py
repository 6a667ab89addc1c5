"""Signing a copy of an asset's picture with a chain of a test's own, as the verify tests need."""

from __future__ import annotations

import io

from PIL import Image

from provenance.credentials import c2pa_sign, generated_manifest, reader_context, signed_manifest
from provenance.keys import SigningFiles, signer_create
from provenance.watermark import watermark_payload
from review.intake import manifest_record_build
from review.models import Asset
from tests.review.helpers import master_bytes


def asset_copy_signed(asset: Asset, files: SigningFiles, *, title: str) -> bytes:
    """The asset's picture signed as a PNG with ``files`` (timestamped if they name a timestamp
    authority), its manifest stored with the asset as the pipeline stores one."""
    manifest = generated_manifest(
        title=title,
        model_name=asset.model_name,
        model_manifest_hash=asset.model_manifest_hash,
        generation_record={"serial": asset.pk, "asset_key": asset.key},
        watermark_value=watermark_payload(asset.mark_id),
    )
    buffer = io.BytesIO()
    Image.open(io.BytesIO(master_bytes(asset))).convert("RGB").save(buffer, "PNG")
    with signer_create(files) as signer, reader_context(files) as context:
        signed = c2pa_sign(buffer.getvalue(), mime="image/png", manifest=manifest, signer=signer, context=context)
        record = signed_manifest(signed, kind=f"rendition:{title}", mime="image/png", context=context)
    manifest_record_build(asset, record).save()
    return signed
