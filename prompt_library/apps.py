from __future__ import annotations

from django.apps import AppConfig


class PromptLibraryConfig(AppConfig):
    """Versioned prompt templates and the campaigns that expand them into variants."""

    name = "prompt_library"
    verbose_name = "Prompt library"
