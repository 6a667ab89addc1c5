"""Where provenance keeps and publishes files and finds its signing material, read once from
Django settings at the edge (the environment variables the README lists)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from provenance.keys import SigningFiles
from provenance.watermark_keys import WatermarkKeyFiles


@dataclass(frozen=True, kw_only=True)
class ProvenanceConfig:
    storage_root: Path  # signed masters and thumbnails
    publish_root: Path  # published renditions, unless publish_url is set
    signing: SigningFiles
    watermark_keys: WatermarkKeyFiles  # the installation's secret watermark keys
    publish_url: str = ""  # an fsspec URL (s3://bucket/prefix) instead of publish_root
    publish_options: Mapping[str, Any] = field(default_factory=dict, hash=False)


def provenance_settings() -> dict[str, Any]:
    """The `ProvenanceConfig` fields as `infra.settings` sets them (for configs that extend it)."""
    from django.conf import settings

    return {
        "storage_root": Path(settings.GREENLIGHT_STORAGE_ROOT),
        "publish_root": Path(settings.GREENLIGHT_PUBLISH_ROOT),
        "signing": SigningFiles(
            chain=Path(settings.GREENLIGHT_SIGNING_CHAIN),
            key=Path(settings.GREENLIGHT_SIGNING_KEY),
            trust_anchors=Path(settings.GREENLIGHT_TRUST_ANCHORS),
            callback=settings.GREENLIGHT_SIGNING_CALLBACK,
            tsa_url=settings.GREENLIGHT_TSA_URL,
        ),
        "watermark_keys": WatermarkKeyFiles(
            directory=Path(settings.GREENLIGHT_WATERMARK_KEYS_DIR),
            callback=settings.GREENLIGHT_WATERMARK_KEY_CALLBACK,
        ),
        "publish_url": settings.GREENLIGHT_PUBLISH_URL,
        "publish_options": settings.GREENLIGHT_PUBLISH_STORAGE_OPTIONS,
    }


def provenance_config_from_settings() -> ProvenanceConfig:
    """Build the config from `infra.settings`."""
    return ProvenanceConfig(**provenance_settings())
