"""Types for pytest-django fixtures that the plugin does not export."""

from __future__ import annotations

from typing import Any

# The `settings` fixture: a wrapper whose attribute assignments override Django settings.
SettingsWrapper = Any
