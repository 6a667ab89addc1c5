"""The pipeline's configuration, read once from Django settings at the edge: provenance's (where
files go, the signing files) and the pipeline's own (models, batch size, captioner)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from provenance.config import ProvenanceConfig, provenance_settings


@dataclass(frozen=True, kw_only=True)
class PipelineConfig(ProvenanceConfig):
    models_dir: Path
    batch_size: int
    captioner: str = ""  # a captioner manifest whose captions extend the alt text; "" for none


def config_from_settings() -> PipelineConfig:
    """Build the config from `infra.settings` (the environment variables the README lists)."""
    from django.conf import settings

    return PipelineConfig(
        **provenance_settings(),
        models_dir=Path(settings.GREENLIGHT_MODELS_DIR),
        batch_size=int(settings.GREENLIGHT_BATCH_SIZE),
        captioner=settings.GREENLIGHT_CAPTIONER,
    )
