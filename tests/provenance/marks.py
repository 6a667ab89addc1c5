"""The installation's watermark key as the settings name it, for tests that read a stored file's mark."""

from __future__ import annotations

from provenance.config import provenance_config_from_settings
from provenance.watermark_keys import watermark_keys_load


def installation_key() -> str:
    """The current watermark key's secret (what the pipeline marks with under these settings)."""
    return watermark_keys_load(provenance_config_from_settings().watermark_keys).current.secret
