"""Delivery: a request's approved assets as one zip, streamed as it is written, never built in
memory: each approved asset's signed renditions (those the brief asked for), `manifest.csv`
(through `review.exports.csv_writer`) and a README.

A published asset's renditions are the published files themselves; an approved one's are
rendered and signed now, with its master as parent, as publishing would. Either way each file
in the zip carries Content Credentials that `verify` reads as trusted, and its watermark leads
back to the asset. The zip is written with `zipfile` onto a write-only pipe that the response
drains after every chunk, so memory holds one file at a time, never the archive.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from django.utils import timezone

from provenance.config import provenance_config_from_settings
from provenance.credentials import c2pa_read, reader_context
from provenance.media import EXTENSION, MIME
from provenance.storage import publish_storage
from review.exports import csv_writer
from review.models import Asset, Publication, ReviewDecision
from review.requests.models import AssetRequest
from review.requests.selectors import request_approved_assets
from review.services.publication import renditions_make

CHUNK = 64 * 1024
MANIFEST_COLUMNS = (
    "file",
    "serial",
    "rendition",
    "mime",
    "sha256",
    "prompt",
    "variables",
    "seed",
    "model",
    "template",
    "approvers",
    "approved_at",
    "c2pa_state",
)


class _Pipe:
    """A write-only file for `zipfile`: what is written waits here until `drain` hands it on.
    It has no `tell` or `seek`, so zipfile writes each entry's sizes after its data."""

    def __init__(self) -> None:
        self._chunks: list[bytes] = []

    def write(self, data: bytes, /) -> int:
        self._chunks.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass

    def drain(self) -> bytes:
        out = b"".join(self._chunks)
        self._chunks.clear()
        return out


@dataclass(frozen=True)
class DeliveredFile:
    """One signed file of the zip and what its manifest row says."""

    name: str
    rendition: str
    mime: str
    data: bytes
    c2pa_state: str


def delivery_filename(request: AssetRequest) -> str:
    return f"{request.campaign.name}-approved.zip"


def delivery_stream(*, request: AssetRequest, now: datetime | None = None) -> Iterator[bytes]:
    """The zip of the request's approved assets, a chunk at a time."""
    assets = request_approved_assets(request=request)
    stamp = (now or timezone.now()).timetuple()[:6]
    pipe = _Pipe()
    rows: list[list[object]] = []
    with zipfile.ZipFile(pipe, mode="w", compression=zipfile.ZIP_STORED) as archive:
        for asset in assets:
            for delivered in _asset_files(asset, request.renditions):
                with archive.open(zipfile.ZipInfo(delivered.name, date_time=stamp), mode="w") as entry:
                    for start in range(0, len(delivered.data), CHUNK):
                        entry.write(delivered.data[start : start + CHUNK])
                        yield pipe.drain()
                rows.append(_manifest_row(asset, delivered))
                yield pipe.drain()
        text = io.StringIO()
        writer = csv_writer(text)
        writer.writerow(MANIFEST_COLUMNS)
        writer.writerows(rows)
        _text_entry(archive, "manifest.csv", text.getvalue(), stamp)
        _text_entry(archive, "README.txt", _readme(request, assets, len(rows)), stamp)
        yield pipe.drain()
    yield pipe.drain()  # the central directory, written as the archive closes


def _text_entry(archive: zipfile.ZipFile, name: str, text: str, stamp: tuple[int, ...]) -> None:
    info = zipfile.ZipInfo(name, date_time=stamp)  # type: ignore[arg-type]
    info.compress_type = zipfile.ZIP_DEFLATED
    archive.writestr(info, text.encode("utf-8"))


def _asset_files(asset: Asset, wanted: list[str]) -> Iterator[DeliveredFile]:
    """The asset's signed files the brief asked for: published renditions as published, the
    others rendered and signed now as publishing does (`renditions_make`)."""
    config = provenance_config_from_settings()
    published = {
        p.rendition: p
        for p in asset.publications.all()
        if p.state == Publication.State.PUBLISHED and p.revoked_at is None
    }
    made = {} if all(n in published for n in wanted) else {r.name: r for r in renditions_make(asset)}
    target = publish_storage(config.publish_root, config.publish_url, config.publish_options)
    with reader_context(config.signing) as context:
        for name in wanted:
            if name in published:
                data, mime = target.read(published[name].path), published[name].mime
            elif name in made:
                data, mime = made[name].data, made[name].mime
            else:  # a rendition the template no longer offers cannot be made
                continue
            state = c2pa_read(data, mime=mime, context=context).state
            yield DeliveredFile(
                name=f"{asset.pk:08d}-{name}.{EXTENSION[_format_of(mime)]}",
                rendition=name,
                mime=mime,
                data=data,
                c2pa_state=state,
            )


def _format_of(mime: str) -> str:
    for fmt, known in MIME.items():
        if known == mime:
            return fmt
    raise ValueError(f"no format for MIME type {mime!r}")


def _manifest_row(asset: Asset, delivered: DeliveredFile) -> list[object]:
    approvals = [d for d in asset.decisions.all() if d.decision == ReviewDecision.Decision.APPROVE]
    return [
        delivered.name,
        asset.pk,
        delivered.rendition,
        delivered.mime,
        hashlib.sha256(delivered.data).hexdigest(),
        asset.prompt,
        json.dumps(asset.variables, sort_keys=True, ensure_ascii=False),
        asset.seed,
        asset.model_name,
        f"{asset.prompt_version.template.name} v{asset.prompt_version.number}",
        "; ".join(f"{d.reviewer.get_username()} {d.created_at.isoformat(timespec='seconds')}" for d in approvals),
        max((d.created_at for d in approvals), default=asset.updated_at).isoformat(timespec="seconds"),
        delivered.c2pa_state,
    ]


def _readme(request: AssetRequest, assets: list[Asset], files: int) -> str:
    version = request.prompt_version
    return (
        f"Greenlight delivery: {request.label}\n"
        f"Requested by {request.requester.get_username()} on {request.created_at:%Y-%m-%d %H:%M} UTC, "
        f"from template {version.template.name} v{version.number}.\n"
        f"{len(assets)} approved asset(s), {files} file(s), each signed with C2PA Content Credentials and\n"
        "carrying an invisible watermark with its asset's serial.\n\n"
        "manifest.csv lists every file: its asset serial, prompt, variables, seed, model, who approved\n"
        "it and when, and the state of its Content Credentials when it was packed.\n\n"
        "Check any file, now or after it was copied, re-saved or stripped of its metadata:\n"
        "  on the dashboard's Verify page, or with `python manage.py verify FILE`.\n"
    )
