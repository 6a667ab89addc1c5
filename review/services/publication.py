"""Writing an approved asset's renditions to the publish target (called by `asset_publish`)."""

from __future__ import annotations

from dataclasses import dataclass

from prompt_library.parsing import template_from_dict
from provenance.config import provenance_config_from_settings
from provenance.credentials import SignedManifest, reader_context, signed_manifest
from provenance.keys import signer_create
from provenance.media import EXTENSION, MIME
from provenance.renditions import RenditionRequest, rendition_make
from provenance.storage import LocalStorage, publish_storage
from review.models import Asset


@dataclass(frozen=True)
class WrittenRendition:
    name: str
    path: str
    mime: str
    width: int
    height: int
    sha256: str
    size: int
    manifest: SignedManifest  # as read back right after signing, for the manifest store


def publish_path(asset: Asset, name: str, fmt: str) -> str:
    """Where a rendition goes under the publish root: campaign folder, serial, rendition name."""
    return f"{asset.campaign.name}/{asset.pk:08d}-{name}.{EXTENSION[fmt]}"


def renditions_write(asset: Asset) -> list[WrittenRendition]:
    """Render, sign and write every rendition of the asset's output spec (master as parent).

    With no renditions in the spec the master itself is published, re-signed as a rendition (a
    clip re-encoded at CRF 18). A clip's renditions are clips (every frame resized and marked
    again) or stills of its first frame (posters). Each rendition is read back after signing: its
    manifest goes to the manifest store.
    """
    config = provenance_config_from_settings()
    master = LocalStorage(config.storage_root).read(asset.file_path)
    output = template_from_dict(asset.prompt_version.spec).output
    requests = [
        RenditionRequest(name=r.name, format=r.format, width=r.width, height=r.height, quality=r.quality)
        for r in output.renditions
    ] or [RenditionRequest(name="master", format=output.format, width=asset.width, height=asset.height, quality=100)]
    target = publish_storage(config.publish_root, config.publish_url, config.publish_options)
    written: list[WrittenRendition] = []
    # Sign every rendition before writing any: a signing failure then publishes nothing.
    with signer_create(config.signing) as signer, reader_context(config.signing) as context:
        made = [
            (
                request,
                rendition_make(
                    master,
                    master_mime=asset.mime,
                    serial=asset.pk,
                    request=request,
                    title=f"{asset.campaign.name} #{asset.pk}",
                    signer=signer,
                    context=context,
                ),
            )
            for request in requests
        ]
        manifests = [
            signed_manifest(data, kind=f"rendition:{request.name}", mime=MIME[request.format], context=context)
            for request, data in made
        ]
    try:
        for (request, data), manifest in zip(made, manifests, strict=True):
            path = publish_path(asset, request.name, request.format)
            sha256 = target.write(path, data)
            written.append(
                WrittenRendition(
                    name=request.name,
                    path=path,
                    mime=MIME[request.format],
                    width=request.width,
                    height=request.height,
                    sha256=sha256,
                    size=len(data),
                    manifest=manifest,
                )
            )
    except BaseException:
        # The publication rolls back; so do the files already written.
        for done in written:
            target.delete(done.path)
        raise
    return written


def renditions_delete(paths: list[str]) -> None:
    """Remove published files from the publish target (missing ones are already gone)."""
    config = provenance_config_from_settings()
    target = publish_storage(config.publish_root, config.publish_url, config.publish_options)
    for path in paths:
        target.delete(path)
