from __future__ import annotations

from django.contrib import admin, messages

from api.models import ApiToken, IdempotencyRecord
from api.tokens import api_token_create


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Tokens are made here with a user and a name; the whole token is shown once, in the message
    after saving. Only the hash is stored, so no field shows the secret."""

    list_display = ("name", "prefix", "user", "created_at", "expires_at", "last_used_at", "revoked_at")
    list_filter = ("revoked_at",)
    search_fields = ("name", "prefix", "user__username")
    fields = ("user", "name", "expires_at", "prefix", "created_at", "last_used_at", "revoked_at")
    readonly_fields = ("prefix", "created_at", "last_used_at")
    actions = ["revoke"]

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)
            return
        created = api_token_create(user=obj.user, name=obj.name)
        created.token.expires_at = obj.expires_at
        created.token.save(update_fields=["expires_at"])
        obj.pk = created.token.pk
        obj.prefix = created.token.prefix
        obj.secret_sha256 = created.token.secret_sha256
        obj.created_at = created.token.created_at
        messages.warning(request, f"The new token (shown only now, copy it): {created.plaintext}")

    @admin.action(description="Revoke the selected tokens")
    def revoke(self, request, queryset):
        from django.utils import timezone

        count = queryset.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())
        messages.success(request, f"Revoked {count} token(s).")


@admin.register(IdempotencyRecord)
class IdempotencyRecordAdmin(admin.ModelAdmin):
    list_display = ("key", "user", "status", "created_at", "expires_at")
    search_fields = ("key", "user__username")
    readonly_fields = ("user", "key", "fingerprint", "status", "body", "created_at", "expires_at")
