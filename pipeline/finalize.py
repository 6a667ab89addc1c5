"""From a generated image to stored, signed files: watermark first, then sign, then store."""

from __future__ import annotations

from dataclasses import dataclass

import c2pa
from PIL import Image

from pipeline.renditions import MIME, RenditionRequest, image_encode, rendition_make
from pipeline.signing import c2pa_sign, generated_manifest, signed_manifest
from pipeline.storage import LocalStorage
from pipeline.watermark import watermark_embed, watermark_payload
from prompt_library.specs import Variant
from review.services import GeneratedFile

THUMBNAIL = RenditionRequest(name="thumbnail", format="jpeg", width=256, height=256, quality=80)


@dataclass(frozen=True)
class Signing:
    """A signer and the trust context it signs with, opened once per batch."""

    signer: c2pa.Signer
    context: c2pa.Context


def master_path(key: str) -> str:
    return f"masters/{key[:2]}/{key}.png"


def thumbnail_path(key: str) -> str:
    return f"thumbnails/{key[:2]}/{key}.jpg"


def asset_finalize(
    variant: Variant, *, serial: int, image: Image.Image, signing: Signing, storage: LocalStorage
) -> GeneratedFile:
    """Watermark the image with its serial, sign it as a PNG master, store it and a signed
    thumbnail, and describe the result (with both manifests) for the review hand-over."""
    # 1. Watermark first: any byte changed after signing would break the hard binding.
    marked = watermark_embed(image, serial)
    png = image_encode(marked, "png")
    # 2. Sign, with the generation record and the watermark as soft binding.
    record = {**variant.generation_record(), "serial": serial, "asset_key": variant.key}
    title = f"{variant.campaign} #{serial}"
    manifest = generated_manifest(
        title=title,
        model_name=variant.model_name,
        model_manifest_hash=variant.model_manifest_hash,
        generation_record=record,
        watermark_value=watermark_payload(serial),
    )
    signed = c2pa_sign(png, mime="image/png", manifest=manifest, signer=signing.signer, context=signing.context)
    # 3. Read the manifest back (about 1 ms) for the manifest store: what `verify` retrieves
    #    when a copy of the file has lost its own.
    master_manifest = signed_manifest(signed, kind="master", mime="image/png", context=signing.context)
    # 4. Store the master and a signed thumbnail for the dashboard.
    sha256 = storage.write(master_path(variant.key), signed)
    thumb = rendition_make(
        signed,
        master_mime="image/png",
        serial=serial,
        request=THUMBNAIL,
        title=title,
        signer=signing.signer,
        context=signing.context,
    )
    storage.write(thumbnail_path(variant.key), thumb)
    thumb_manifest = signed_manifest(thumb, kind="thumbnail", mime=MIME[THUMBNAIL.format], context=signing.context)
    return GeneratedFile(
        key=variant.key,
        file_path=master_path(variant.key),
        thumb_path=thumbnail_path(variant.key),
        mime="image/png",
        sha256=sha256,
        size=len(signed),
        generation_record=record,
        manifests=(master_manifest, thumb_manifest),
    )
