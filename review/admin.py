from __future__ import annotations

from django.contrib import admin

from review.models import Asset, AuditEvent, ManifestRecord, Publication, ReviewDecision


@admin.register(Asset)
class AssetAdmin(admin.ModelAdmin):
    """Assets are shown, not edited: state changes go through the review services."""

    list_display = ["id", "state", "campaign", "prompt", "seed", "model_name", "created_at"]
    list_filter = ["state", "campaign"]
    list_select_related = ["campaign"]
    search_fields = ["prompt", "key"]
    readonly_fields = [f.name for f in Asset._meta.fields]

    def has_add_permission(self, request: object) -> bool:
        return False  # assets come from the pipeline

    def has_delete_permission(self, request: object, obj: object = None) -> bool:
        return False  # an asset's record is kept; revoke unpublishes it


@admin.register(ReviewDecision)
class ReviewDecisionAdmin(admin.ModelAdmin):
    list_display = ["asset", "reviewer", "decision", "reason", "created_at"]
    list_filter = ["decision", "reason"]
    list_select_related = ["asset", "reviewer"]
    readonly_fields = [f.name for f in ReviewDecision._meta.fields]

    def has_add_permission(self, request: object) -> bool:
        return False

    def has_delete_permission(self, request: object, obj: object = None) -> bool:
        return False


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    """The audit log is append-only: no adding, changing or deleting here."""

    list_display = ["created_at", "asset", "actor", "action", "from_state", "to_state"]
    list_filter = ["action"]
    list_select_related = ["asset", "actor"]
    readonly_fields = [f.name for f in AuditEvent._meta.fields]

    def has_add_permission(self, request: object) -> bool:
        return False

    def has_delete_permission(self, request: object, obj: object = None) -> bool:
        return False


@admin.register(Publication)
class PublicationAdmin(admin.ModelAdmin):
    list_display = [
        "asset",
        "rendition",
        "path",
        "state",
        "width",
        "height",
        "published_by",
        "created_at",
        "revoked_at",
    ]
    list_filter = ["state"]
    list_select_related = ["asset", "published_by"]
    readonly_fields = [f.name for f in Publication._meta.fields]

    def has_add_permission(self, request: object) -> bool:
        return False

    def has_delete_permission(self, request: object, obj: object = None) -> bool:
        return False


@admin.register(ManifestRecord)
class ManifestRecordAdmin(admin.ModelAdmin):
    """The manifest store is written by the hand-over and publication services only: read-only here."""

    list_display = ["created_at", "asset", "kind", "mime", "label", "sha256"]
    list_filter = ["kind", "mime"]
    list_select_related = ["asset"]
    search_fields = ["sha256", "label"]
    readonly_fields = [f.name for f in ManifestRecord._meta.fields]

    def has_add_permission(self, request: object) -> bool:
        return False

    def has_change_permission(self, request: object, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: object, obj: object = None) -> bool:
        return False
