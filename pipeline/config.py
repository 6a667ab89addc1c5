"""The pipeline's configuration, read once from Django settings at the edge."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.signing import SigningFiles


@dataclass(frozen=True)
class PipelineConfig:
    storage_root: Path
    publish_root: Path
    models_dir: Path
    batch_size: int
    signing: SigningFiles
    publish_url: str = ""  # an fsspec URL (s3://bucket/prefix) instead of publish_root
    publish_options: Mapping[str, Any] = field(default_factory=dict, hash=False)
    captioner: str = ""  # a captioner manifest whose captions extend the alt text; "" for none


def config_from_settings() -> PipelineConfig:
    """Build the config from `infra.settings` (the environment variables the README lists)."""
    from django.conf import settings

    return PipelineConfig(
        storage_root=Path(settings.GREENLIGHT_STORAGE_ROOT),
        publish_root=Path(settings.GREENLIGHT_PUBLISH_ROOT),
        models_dir=Path(settings.GREENLIGHT_MODELS_DIR),
        batch_size=int(settings.GREENLIGHT_BATCH_SIZE),
        signing=SigningFiles(
            chain=Path(settings.GREENLIGHT_SIGNING_CHAIN),
            key=Path(settings.GREENLIGHT_SIGNING_KEY),
            trust_anchors=Path(settings.GREENLIGHT_TRUST_ANCHORS),
            callback=settings.GREENLIGHT_SIGNING_CALLBACK,
        ),
        publish_url=settings.GREENLIGHT_PUBLISH_URL,
        publish_options=settings.GREENLIGHT_PUBLISH_STORAGE_OPTIONS,
        captioner=settings.GREENLIGHT_CAPTIONER,
    )
