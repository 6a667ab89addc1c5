"""Asset requests: a marketing request (one request campaign), its immutable briefs, and the
notifications it sends.

A request is asked for with a brief; "ask for more" adds another brief to the same request. A
brief is stored as it was submitted, with who and when, pinned to the template version it was
made with, and never changed (the database refuses UPDATE and DELETE on the table).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from prompt_library.models import Campaign, PromptVersion


class AssetRequest(models.Model):
    """A marketing request: its campaign (kind "request"), who asked, the deadline, and whether it
    was cancelled. What was asked for is in its briefs."""

    campaign = models.OneToOneField(Campaign, on_delete=models.PROTECT, related_name="asset_request")
    requester = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="asset_requests")
    # Pinned: the request keeps the version it was made with when the template gets a new one.
    prompt_version = models.ForeignKey(PromptVersion, on_delete=models.PROTECT, related_name="asset_requests")
    title = models.CharField(max_length=200, blank=True)
    deadline = models.DateTimeField(null=True, blank=True)
    notes = models.TextField(blank=True)
    renditions = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    cancelled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["requester", "-created_at"], name="request_requester_created")]

    def __str__(self) -> str:
        return f"request {self.pk} ({self.campaign.name})"

    @property
    def label(self) -> str:
        return self.title or self.campaign.name


class Brief(models.Model):
    """One brief of a request as submitted: number 1 is the request itself, later numbers ask
    for more. Immutable (a database trigger refuses UPDATE and DELETE)."""

    request = models.ForeignKey(AssetRequest, on_delete=models.PROTECT, related_name="briefs")
    number = models.PositiveSmallIntegerField()
    submitted_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="briefs")
    prompt_version = models.ForeignKey(PromptVersion, on_delete=models.PROTECT, related_name="briefs")
    # Exactly what was submitted (template, version, values, counts, renditions, deadline, notes).
    content = models.JSONField()
    content_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["request", "number"]
        constraints = [models.UniqueConstraint(fields=["request", "number"], name="brief_unique_number")]

    def __str__(self) -> str:
        return f"brief {self.number} of request {self.request_id}"


class Notification(models.Model):
    """Something a person is told, by e-mail and in the dashboard's inbox. `key` makes each one
    happen once: the same event never notifies the same person twice."""

    class Kind(models.TextChoices):
        RUN_FINISHED = "run_finished", "Generation finished"
        ALL_DECIDED = "all_decided", "Every asset decided"
        DEADLINE_PASSED = "deadline_passed", "Deadline passed with assets undecided"
        REQUEST_ARRIVED = "request_arrived", "Request with a deadline arrived"

    recipient = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="notifications")
    kind = models.CharField(max_length=30, choices=Kind.choices)
    request = models.ForeignKey(
        AssetRequest, on_delete=models.PROTECT, null=True, blank=True, related_name="notifications"
    )
    key = models.CharField(max_length=200)
    subject = models.CharField(max_length=200)
    body = models.TextField()
    url = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    read_at = models.DateTimeField(null=True, blank=True)
    emailed_at = models.DateTimeField(null=True, blank=True)
    email_error = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["recipient", "key"], name="notification_once")]
        indexes = [
            models.Index(
                fields=["recipient", "-created_at"], name="notification_unread", condition=models.Q(read_at=None)
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} to user {self.recipient_id}: {self.subject}"
