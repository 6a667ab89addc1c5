from __future__ import annotations

from django.apps import AppConfig


class ReviewConfig(AppConfig):
    """Every asset's state after it exists: review queue, decisions, audit, publishing."""

    name = "review"
    verbose_name = "Review"

    def ready(self) -> None:
        from axes.models import AccessAttempt
        from axes.signals import user_locked_out
        from django.contrib.admin.models import LogEntry
        from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
        from django.db.models.signals import post_delete, post_migrate, post_save

        from prompt_library.models import Campaign
        from review import signals
        from review.roles import roles_sync

        user_logged_in.connect(signals.logged_in, dispatch_uid="review.audit_login")
        user_logged_out.connect(signals.logged_out, dispatch_uid="review.audit_logout")
        user_login_failed.connect(signals.login_failed, dispatch_uid="review.audit_login_failed")
        post_save.connect(signals.admin_logged, sender=LogEntry, dispatch_uid="review.audit_admin")
        user_locked_out.connect(signals.locked_out, dispatch_uid="review.audit_locked_out")
        post_delete.connect(signals.lockout_cleared, sender=AccessAttempt, dispatch_uid="review.audit_unlocked")
        post_migrate.connect(roles_sync, sender=self, dispatch_uid="review.roles_sync")
        post_save.connect(_campaign_saved, sender=Campaign, dispatch_uid="review.campaign_queue_sync")
        from review.models import AuditEvent

        post_save.connect(_audit_event_saved, sender=AuditEvent, dispatch_uid="review.webhooks")
        from prompt_library.authoring import prompt_part_created, prompt_version_created
        from review.services import library as library_audit

        prompt_version_created.connect(library_audit.version_audited, dispatch_uid="review.audit_prompt_version")
        prompt_part_created.connect(library_audit.part_audited, dispatch_uid="review.audit_prompt_part")
        from prompt_library.matrix import campaign_variables_saved

        campaign_variables_saved.connect(library_audit.matrix_audited, dispatch_uid="review.audit_matrix")


def _campaign_saved(sender: type, instance: object, created: bool, **kwargs: object) -> None:
    """A campaign's deadline or kind changed: its assets move in the review queue."""
    from review.services import campaign_queue_sync

    if not created:
        campaign_queue_sync(campaign=instance)  # type: ignore[arg-type]


def _audit_event_saved(sender: type, instance: object, created: bool, **kwargs: object) -> None:
    """An audit event that is a webhook event (a decision that moved an asset, a publication, a
    run's end): record its deliveries in the same transaction (review.webhooks)."""
    from review.webhooks import webhook_for_event

    if created:
        webhook_for_event(instance)  # type: ignore[arg-type]
