"""Helpers the review tests share: stored and published bytes, a re-encoded copy, a streamed body."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import cast

from django.http import FileResponse
from PIL import Image

from provenance.config import provenance_config_from_settings
from provenance.storage import LocalStorage
from review.models import Asset, Publication
from tests.fixture_types import SettingsWrapper


def master_bytes(asset: Asset) -> bytes:
    return LocalStorage(provenance_config_from_settings().storage_root).read(asset.file_path)


def published_bytes(settings: SettingsWrapper, publication: Publication) -> bytes:
    return (Path(settings.GREENLIGHT_PUBLISH_ROOT) / publication.path).read_bytes()


def reencode(data: bytes, fmt: str, **options: object) -> bytes:
    """Decode and save again: every metadata chunk, the manifest included, is dropped."""
    buffer = io.BytesIO()
    Image.open(io.BytesIO(data)).convert("RGB").save(buffer, fmt, **options)
    return buffer.getvalue()


def body(response: object) -> bytes:
    """A streamed (file or CSV) response's whole body."""
    return b"".join(cast(Iterator[bytes], cast(FileResponse, response).streaming_content))
