"""The audit log's vocabulary: every action an audit event records, named once, in the past tense.

The audit table is append-only (a database trigger refuses UPDATE and DELETE), so rows written
under an older name keep it forever: decisions were once recorded as "approve" and "reject",
logins as "login" and "logout". Those rows are read, filtered and exported under today's name
(`audit_action_current`, `audit_action_spellings`); the rows themselves are never rewritten.
"""

from __future__ import annotations

from types import MappingProxyType

from django.db import models


class AuditAction(models.TextChoices):
    """What happened to an asset (or in a session): the `action` of an audit event."""

    # The pipeline (review.intake).
    REGISTERED = "registered", "Registered"
    GENERATED = "generated", "Generated"
    SUBMITTED = "submitted", "Submitted for review"
    GENERATION_FAILED = "generation_failed", "Generation failed"
    # Reviewers.
    CLAIMED = "claimed", "Claimed"
    RELEASED = "released", "Released"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"
    COMMENTED = "commented", "Commented"
    REGENERATION_REQUESTED = "regeneration_requested", "Regeneration requested"
    # Publishers.
    PUBLISHED = "published", "Published"
    REVOKED = "revoked", "Revoked"
    PUBLICATION_ROLLED_BACK = "publication_rolled_back", "Publication rolled back"
    WEBHOOK_DELIVERED = "webhook_delivered", "Webhook delivered"
    WEBHOOK_FAILED = "webhook_failed", "Webhook failed"
    # Sessions and Django's admin (review.signals).
    LOGGED_IN = "logged_in", "Logged in"
    LOGGED_OUT = "logged_out", "Logged out"
    LOGIN_FAILED = "login_failed", "Login failed"
    LOCKED_OUT = "locked_out", "Locked out (too many failed logins)"
    UNLOCKED = "unlocked", "Unlocked"
    ADMIN_ADDED = "admin_added", "Added in the admin"
    ADMIN_CHANGED = "admin_changed", "Changed in the admin"
    ADMIN_DELETED = "admin_deleted", "Deleted in the admin"
    ADMIN_LOGGED = "admin_logged", "Other admin action"
    # The prompt library, authored in the browser or through the API (prompt_library.authoring).
    PROMPT_VERSION_CREATED = "prompt_version_created", "Prompt version created"
    PROMPT_PART_CREATED = "prompt_part_created", "Style or negative preset created"
    CAMPAIGN_VARIABLES_IMPORTED = "campaign_variables_imported", "Campaign variables imported"
    # Housekeeping: a sweep of crash leftovers (infra.sweep), its report in the detail.
    SWEPT = "swept", "Crash leftovers swept"
    # Signing keys (`manage.py signing_keys_revoke`): the certificate's serial, time and reason in the detail.
    SIGNING_KEY_REVOKED = "signing_key_revoked", "Signing certificate revoked"
    # Campaign runs (review.services.runs): the run's id in the detail; an asset's own event when
    # a cancel or a resume moves it.
    RUN_STARTED = "run_started", "Run started"
    RUN_PAUSED = "run_paused", "Run paused"
    RUN_RESUMED = "run_resumed", "Run resumed"
    RUN_CANCELLED = "run_cancelled", "Run cancelled"
    RUN_FINISHED = "run_finished", "Run finished"
    GENERATION_CANCELLED = "generation_cancelled", "Generation cancelled"
    REQUEUED = "requeued", "Queued for generation again"
    # Asset requests (review.requests): the request and its campaign in the detail.
    REQUEST_CREATED = "request_created", "Request created"
    REQUEST_EXTENDED = "request_extended", "More asked of a request"
    REQUEST_CANCELLED = "request_cancelled", "Request cancelled"
    REQUEST_DOWNLOADED = "request_downloaded", "Request's approved assets downloaded"
    NOTIFIED = "notified", "Notification sent"


# Names the log held before every action was a past tense, and what they mean today.
LEGACY_ACTIONS = MappingProxyType(
    {
        "approve": AuditAction.APPROVED,
        "reject": AuditAction.REJECTED,
        "login": AuditAction.LOGGED_IN,
        "logout": AuditAction.LOGGED_OUT,
        "admin_action": AuditAction.ADMIN_LOGGED,
    }
)


def audit_action_current(action: str) -> str:
    """`action` under today's name: an older spelling becomes its past tense; others are kept."""
    return str(LEGACY_ACTIONS.get(action, action))


def audit_action_spellings(action: str) -> tuple[str, ...]:
    """Every spelling the log may hold for `action` (today's first, then older ones), so a filter
    on "approved" also finds the decisions recorded as "approve"."""
    current = audit_action_current(action)
    return (current, *sorted(old for old, new in LEGACY_ACTIONS.items() if new == current))
