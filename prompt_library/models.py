"""Prompt templates, their immutable versions, and campaigns."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class PromptTemplate(models.Model):
    """A named prompt template; its content lives in numbered, immutable versions."""

    name = models.SlugField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class PromptVersion(models.Model):
    """One published version of a template: prompt, negative prompt, model pin, output spec."""

    template = models.ForeignKey(PromptTemplate, on_delete=models.PROTECT, related_name="versions")
    number = models.PositiveIntegerField()
    content_hash = models.CharField(max_length=64)
    prompt = models.TextField()
    negative_prompt = models.TextField(blank=True)
    model_name = models.CharField(max_length=100)
    model_manifest_hash = models.CharField(max_length=64)
    # The resolved generation parameters (template values over the model's defaults).
    params = models.JSONField(default=dict)
    # The version as authored (TemplateSpec); `content_hash` is its hash.
    spec = models.JSONField(default=dict)
    source_file = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["template__name", "number"]
        constraints = [models.UniqueConstraint(fields=["template", "number"], name="prompt_version_unique_number")]

    def __str__(self) -> str:
        return f"{self.template.name} v{self.number}"


class Campaign(models.Model):
    """A scheduled campaign or a marketing request: a template version times variable values."""

    class Kind(models.TextChoices):
        SCHEDULED = "scheduled", "Scheduled campaign"
        REQUEST = "request", "Asset request"

    name = models.SlugField(max_length=100, unique=True)
    title = models.CharField(max_length=200, blank=True)
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.SCHEDULED)
    prompt_version = models.ForeignKey(PromptVersion, on_delete=models.PROTECT, related_name="campaigns")
    variables = models.JSONField(default=dict)
    seeds = models.JSONField(default=list)
    deadline = models.DateTimeField(null=True, blank=True)
    # The review policy: distinct approvals needed, and what one rejection does.
    approvals_required = models.PositiveSmallIntegerField(default=1)

    class OnReject(models.TextChoices):
        REJECT = "reject", "One rejection rejects the asset"
        RETURN = "return", "A rejection is one vote; the same quorum rejects"

    on_reject = models.CharField(max_length=10, choices=OnReject.choices, default=OnReject.REJECT)
    # Who asked for a request's assets: they may not also approve them (segregation of duties).
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="requests"
    )
    source_file = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name
