from __future__ import annotations

from django.contrib import admin

from prompt_library.models import Campaign, PromptTemplate, PromptVersion


@admin.register(PromptTemplate)
class PromptTemplateAdmin(admin.ModelAdmin):
    list_display = ["name", "description", "created_at"]
    search_fields = ["name"]


@admin.register(PromptVersion)
class PromptVersionAdmin(admin.ModelAdmin):
    list_display = ["template", "number", "model_name", "content_hash", "created_at"]
    list_select_related = ["template"]
    list_filter = ["template"]
    # Versions are immutable once published: the admin shows them, it does not edit them.
    readonly_fields = [f.name for f in PromptVersion._meta.fields]


@admin.register(Campaign)
class CampaignAdmin(admin.ModelAdmin):
    list_display = ["name", "kind", "prompt_version", "deadline", "updated_at"]
    list_select_related = ["prompt_version__template"]
    list_filter = ["kind"]
