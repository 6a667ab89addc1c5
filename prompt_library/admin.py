"""The prompt library in the admin: shown, never written.

Templates, versions, campaigns and source images are created only through the services (`library_load`, the
authoring and request services), which check every field and keep a published version immutable:
the admin neither adds, changes nor deletes them (deleting a version and loading a changed file
under its number would break that immutability).
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from prompt_library.models import Campaign, PromptTemplate, PromptVersion, SourceImage


class ReadOnlyAdmin(admin.ModelAdmin):
    """Listed and viewed only: no add, change or delete, whatever the user's permissions."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(PromptTemplate)
class PromptTemplateAdmin(ReadOnlyAdmin):
    list_display = ["name", "description", "created_at"]
    search_fields = ["name"]


@admin.register(PromptVersion)
class PromptVersionAdmin(ReadOnlyAdmin):
    list_display = ["template", "number", "model_name", "content_hash", "created_at"]
    list_select_related = ["template"]
    list_filter = ["template"]


@admin.register(Campaign)
class CampaignAdmin(ReadOnlyAdmin):
    list_display = ["name", "kind", "prompt_version", "deadline", "updated_at"]
    list_select_related = ["prompt_version__template"]
    list_filter = ["kind"]


@admin.register(SourceImage)
class SourceImageAdmin(ReadOnlyAdmin):
    list_display = ["name", "sha256", "mime", "width", "height", "has_alpha", "created_at"]
    search_fields = ["name", "sha256"]
