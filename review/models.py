"""Assets, review decisions, audit events and publications: the system of record."""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.db import models
from django.utils import timezone

from prompt_library.models import Campaign, PromptVersion
from review.audit import audit_action_current
from review.states import AssetState


class Asset(models.Model):
    """One generated file. Its primary key is its serial, the payload of its watermark."""

    key = models.CharField(max_length=64, unique=True, help_text="Hash of what made the asset")
    campaign = models.ForeignKey(Campaign, on_delete=models.PROTECT, related_name="assets")
    prompt_version = models.ForeignKey(PromptVersion, on_delete=models.PROTECT, related_name="assets")
    state = models.CharField(max_length=20, choices=AssetState.choices, default=AssetState.PENDING, db_index=True)
    variables = models.JSONField(default=dict)
    prompt = models.TextField()
    negative_prompt = models.TextField(blank=True)
    seed = models.BigIntegerField()
    steps = models.PositiveIntegerField()
    guidance = models.FloatField()
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    model_name = models.CharField(max_length=100)
    model_manifest_hash = models.CharField(max_length=64)
    alt_text = models.TextField(blank=True)
    # Set once the file exists (paths relative to the storage root).
    file_path = models.CharField(max_length=300, blank=True)
    thumb_path = models.CharField(max_length=300, blank=True)
    mime = models.CharField(max_length=50, blank=True)
    file_sha256 = models.CharField(max_length=64, blank=True)
    file_size = models.PositiveBigIntegerField(null=True, blank=True)
    generation_record = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    # A reviewer's claim on the asset while it is in review; it lapses when the lease expires.
    claimed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="claims"
    )
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    # The claim order, copied from the campaign (see `queue_position`) so that one partial index
    # serves the claim query: requests with a deadline first, earliest deadline first.
    queue_priority = models.PositiveSmallIntegerField(default=1)
    queue_deadline = models.DateTimeField(null=True, blank=True)
    # A regenerated asset points at the rejected one it replaces.
    regenerated_from = models.ForeignKey(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="regenerations"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        permissions = [
            ("review_asset", "Can approve or reject assets (reviewer)"),
            ("publish_asset", "Can publish and revoke assets (publisher)"),
            ("request_asset", "Can request assets (requester)"),
        ]
        indexes = [
            models.Index(fields=["state", "created_at"], name="asset_state_created"),
            # The other tabs of the queue: most recently changed first.
            models.Index(fields=["state", "-updated_at", "-id"], name="asset_state_updated"),
            # The claim query's scan, in claim order (QUEUE_ORDER): only assets in review.
            models.Index(
                fields=["queue_priority", "queue_deadline", "created_at", "id"],
                name="asset_review_queue",
                condition=models.Q(state="in_review"),
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.serial} {self.prompt[:60]}"

    @property
    def serial(self) -> int:
        return self.pk

    def lease_live(self, now: datetime | None = None) -> bool:
        """Whether a reviewer's claim on the asset still holds at `now` (default: now)."""
        return (
            self.claimed_by_id is not None
            and self.lease_expires_at is not None
            and self.lease_expires_at > (now or timezone.now())
        )

    @property
    def claim_live(self) -> bool:
        """`lease_live()` for templates."""
        return self.lease_live()

    @property
    def is_video(self) -> bool:
        """Whether the master is a clip (an MP4) rather than a still."""
        return self.mime.startswith("video/")

    @property
    def seconds(self) -> float | None:
        """A clip's duration, from its generation record; None for a still."""
        value = self.generation_record.get("seconds") if self.is_video else None
        return float(value) if isinstance(value, int | float) else None


# The order in which assets in review are handed out, matching the `asset_review_queue` index
# (PostgreSQL sorts NULLs last in ascending order, as the index does).
QUEUE_ORDER = ("queue_priority", models.F("queue_deadline").asc(nulls_last=True), "created_at", "id")


def queue_position(campaign: Campaign) -> tuple[int, datetime | None]:
    """An asset's (queue_priority, queue_deadline) from its campaign: 0 and the deadline for a
    request with a deadline, else 1 and no deadline."""
    if campaign.kind == Campaign.Kind.REQUEST and campaign.deadline is not None:
        return 0, campaign.deadline
    return 1, None


class ReviewDecision(models.Model):
    """A reviewer's approval or rejection of one asset."""

    class Decision(models.TextChoices):
        APPROVE = "approve", "Approve"
        REJECT = "reject", "Reject"

    class Reason(models.TextChoices):
        OFF_BRAND = "off_brand", "Off-brand"
        VISUAL_ARTIFACT = "visual_artifact", "Visual artifact"
        WRONG_PRODUCT = "wrong_product", "Wrong product"
        TEXT_ERROR = "text_error", "Text error"
        UNSAFE = "unsafe", "Unsafe"
        OTHER = "other", "Other"

    asset = models.ForeignKey(Asset, on_delete=models.PROTECT, related_name="decisions")
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="decisions")
    decision = models.CharField(max_length=10, choices=Decision.choices)
    reason = models.CharField(max_length=20, choices=Reason.choices, blank=True)
    comment = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at"]
        constraints = [models.UniqueConstraint(fields=["asset", "reviewer"], name="decision_one_per_reviewer")]

    def __str__(self) -> str:
        return f"{self.decision} asset {self.asset_id} by reviewer {self.reviewer_id}"


class AuditEvent(models.Model):
    """An append-only record of everything that happened to an asset, and who did it."""

    asset = models.ForeignKey(Asset, on_delete=models.PROTECT, related_name="events", null=True, blank=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True)
    # A review.audit.AuditAction; rows written before the actions were all past tense keep their
    # older spelling (the table is append-only): read them through `action_name`.
    action = models.CharField(max_length=40)
    from_state = models.CharField(max_length=20, blank=True)
    to_state = models.CharField(max_length=20, blank=True)
    detail = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.action_name} asset {self.asset_id} by {self.actor or 'system'}"

    @property
    def action_name(self) -> str:
        """The action under today's name: a row recorded as "approve" reads "approved"."""
        return audit_action_current(self.action)


class Publication(models.Model):
    """A signed rendition of an approved asset, written to the publish target.

    The row is the publication's intent, committed before its file is written: `writing` while
    the file is being written, `published` once every rendition of the publication is written
    (one transaction completes them all, with the asset's move to published), `rolled_back` when
    its files were removed instead (a write failed, or the sweeper found it abandoned by a
    process that died). So no published file is ever unknown to this table.
    """

    class State(models.TextChoices):
        WRITING = "writing", "Writing"
        PUBLISHED = "published", "Published"
        ROLLED_BACK = "rolled_back", "Rolled back"

    asset = models.ForeignKey(Asset, on_delete=models.PROTECT, related_name="publications")
    rendition = models.CharField(max_length=50)
    path = models.CharField(max_length=300)
    mime = models.CharField(max_length=50)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    sha256 = models.CharField(max_length=64)
    size = models.PositiveBigIntegerField()
    published_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT)
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    state = models.CharField(max_length=20, choices=State.choices)

    class Meta:
        ordering = ["created_at", "rendition"]
        indexes = [
            # The sweeper's question: which publications are still being written, oldest first.
            models.Index(fields=["created_at"], name="publication_writing", condition=models.Q(state="writing"))
        ]

    def __str__(self) -> str:
        return f"{self.rendition} of asset {self.asset_id}: {self.path}"


class ManifestRecord(models.Model):
    """A C2PA manifest this project signed, as c2pa read it back right after signing.

    One row per signed file: the master and thumbnail at hand-over, each rendition at
    publication. `verify` retrieves it when a copy of the file has lost its own manifest (found
    by the watermark's serial), or finds it by the file's sha256. Rows are only ever inserted.
    """

    asset = models.ForeignKey(Asset, on_delete=models.PROTECT, related_name="manifests")
    kind = models.CharField(max_length=60, help_text='"master", "thumbnail" or "rendition:<name>"')
    sha256 = models.CharField(max_length=64, db_index=True, help_text="of the signed file")
    mime = models.CharField(max_length=50)
    label = models.CharField(max_length=200, help_text="the active manifest's label (urn:c2pa:...)")
    store = models.JSONField(help_text="the manifest store as c2pa read it back: every manifest and its validation")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["asset", "kind"], name="manifest_asset_kind")]

    def __str__(self) -> str:
        return f"{self.kind} of asset {self.asset_id}: {self.label}"
