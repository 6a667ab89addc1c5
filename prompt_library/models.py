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
    # Who made the version (None when it was loaded from the library's files).
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="prompt_versions"
    )
    # The styles and negative presets the version included, pinned: {"style": ["house", 2], ...}.
    parts = models.JSONField(default=dict, blank=True)
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
    # Linked values from a matrix import's rows layout ([{variable: value}, ...]): the campaign
    # makes these rows only (times the other variables' values); [] crosses every variable.
    variable_rows = models.JSONField(default=list, blank=True)
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
    # Generation order among campaign runs: lower first (requests with a deadline run at 0).
    priority = models.PositiveSmallIntegerField(default=5)
    # A schedule as data (the campaign file's `schedule: {cron, timezone}` and `active`): loading
    # the library turns it into the schedule of the campaign's deployment.
    schedule_cron = models.CharField(max_length=100, blank=True)
    schedule_timezone = models.CharField(max_length=64, blank=True, default="UTC")
    schedule_active = models.BooleanField(default=True)
    source_file = models.CharField(max_length=300, blank=True)
    # The sha256 of a stored SourceImage the campaign's variants draw from instead of their
    # template version's own (a request's reference image); "" keeps the template's.
    source_image = models.CharField(max_length=64, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class PromptPart(models.Model):
    """A reusable, versioned piece of prompt a template includes by name: a house style added to
    the prompt, or a negative preset added to the negative prompt. Versions are immutable."""

    class Kind(models.TextChoices):
        STYLE = "style", "Style"
        NEGATIVE = "negative", "Negative preset"

    kind = models.CharField(max_length=10, choices=Kind.choices)
    name = models.SlugField(max_length=100)
    number = models.PositiveIntegerField()
    text = models.TextField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="prompt_parts"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["kind", "name", "number"]
        constraints = [models.UniqueConstraint(fields=["kind", "name", "number"], name="prompt_part_unique_number")]

    def __str__(self) -> str:
        return f"{self.kind} {self.name} v{self.number}"


class SourceImage(models.Model):
    """A product or reference photo (or a mask) that templates and briefs generate from: stored
    once under its sha256 and never changed, so an asset's key and generation record can name it."""

    sha256 = models.CharField(max_length=64, unique=True)
    name = models.CharField(max_length=200)  # the uploaded or library file's name
    file_path = models.CharField(max_length=300)  # under the storage root
    mime = models.CharField(max_length=50)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    size = models.PositiveIntegerField()
    has_alpha = models.BooleanField(default=False)  # transparency: an inpainting mask can be made from it
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="source_images"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.sha256[:12]})"
