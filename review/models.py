"""Assets, review decisions, audit events and publications: the system of record."""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.db import models
from django.utils import timezone

from prompt_library.models import Campaign, PromptVersion
from provenance.watermark_keys import mark_id_new
from review.audit import audit_action_current
from review.states import AssetState


class Asset(models.Model):
    """One generated file. Its primary key is its serial; its watermark carries `mark_id`."""

    key = models.CharField(max_length=64, unique=True, help_text="Hash of what made the asset")
    # What its watermark carries: a random 40-bit id (never the row id, which anyone could guess),
    # embedded with the installation's secret watermark key.
    mark_id = models.BigIntegerField(unique=True, default=mark_id_new, editable=False)
    # A perceptual descriptor of the master, stored at hand-over (`provenance.fingerprint`): verify
    # names the asset by its watermark only when the file's pixels also match this.
    fingerprint = models.CharField(max_length=1200, blank=True, default="")
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
    # The template's safety classifier's unsafe score (null: not scored); flagged ones need a
    # person's approval on their own page (never a bulk one) before they can be published.
    safety_score = models.FloatField(null=True, blank=True)
    safety_flagged = models.BooleanField(default=False, db_index=True)
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
    # The campaign run that registered (or last re-queued) the asset; null for older rows.
    run = models.ForeignKey("review.Run", on_delete=models.PROTECT, null=True, blank=True, related_name="assets")
    # Which generation worker holds the asset's batch, and until when: another worker takes it
    # only once the lease has run out (the holder died), so no asset is made twice at once.
    gen_worker = models.CharField(max_length=100, blank=True)
    gen_lease_until = models.DateTimeField(null=True, blank=True)
    # When the file was handed over, and its share of its batch's generation time (the batch's
    # seconds over its assets): what the production dashboard counts as compute.
    generated_at = models.DateTimeField(null=True, blank=True)
    generation_seconds = models.FloatField(null=True, blank=True)
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


class Run(models.Model):
    """One run of a campaign: its variants registered, generated in batches by any number of
    workers, and counted here as the workers hand their assets over (see review.services.runs).
    """

    class State(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        PAUSED = "paused", "Paused"
        CANCELLED = "cancelled", "Cancelled"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    campaign = models.ForeignKey(Campaign, on_delete=models.PROTECT, null=True, blank=True, related_name="runs")
    state = models.CharField(max_length=20, choices=State.choices, default=State.QUEUED, db_index=True)
    # Lower runs first: 0 for a request with a deadline, else the campaign's priority.
    priority = models.PositiveSmallIntegerField(default=5)
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="runs"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    total = models.PositiveIntegerField(default=0)
    done = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    cancelled = models.PositiveIntegerField(default=0)
    # Assets handed over per worker name: {"worker-1": 120, ...}.
    workers = models.JSONField(default=dict, blank=True)
    flow_run_id = models.CharField(max_length=64, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        permissions = [("run_campaign", "Can start, pause, resume and cancel campaign runs (operator)")]
        indexes = [models.Index(fields=["campaign", "-created_at"], name="run_campaign_created")]

    def __str__(self) -> str:
        return f"run {self.pk} of {self.campaign or 'assets'} ({self.state})"

    @property
    def left(self) -> int:
        """Variants neither handed over, failed nor cancelled yet."""
        return max(self.total - self.done - self.failed - self.cancelled, 0)

    @property
    def is_open(self) -> bool:
        """Whether the run may still make progress (queued, running or paused)."""
        return self.state in (self.State.QUEUED, self.State.RUNNING, self.State.PAUSED)


class WorkerHeartbeat(models.Model):
    """A generation worker's last sign of life, written by the worker every few seconds."""

    name = models.CharField(max_length=100, unique=True)
    hostname = models.CharField(max_length=200, blank=True)
    pid = models.PositiveIntegerField(default=0)
    queues = models.JSONField(default=list, blank=True)
    models_loaded = models.JSONField(default=list, blank=True)
    batches_done = models.PositiveIntegerField(default=0)
    current = models.CharField(max_length=200, blank=True, help_text="the batch being made, if any")
    started_at = models.DateTimeField(default=timezone.now)
    seen_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"worker {self.name} seen {self.seen_at:%H:%M:%S}"


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
        UNSAFE_FLAGGED = "unsafe_flagged", "Unsafe (flagged)"
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


class WebhookDelivery(models.Model):
    """One webhook event for one receiver, and how its delivery went (review.webhooks).

    Written in the same transaction as what it tells of, sent once that commits, and retried with
    backoff until the receiver answers 2xx or the attempts run out (`failed`).
    """

    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        DELIVERED = "delivered", "Delivered"
        FAILED = "failed", "Failed (attempts exhausted)"

    event = models.CharField(max_length=40, help_text="asset.published, asset.decided or run.finished")
    url = models.CharField(max_length=500)
    payload = models.JSONField()
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_outcome = models.CharField(max_length=300, blank=True, help_text='e.g. "HTTP 204" or the network error')
    asset = models.ForeignKey(Asset, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    run = models.ForeignKey(Run, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            # The retry's question: which deliveries are due.
            models.Index(fields=["next_attempt_at"], name="webhook_due", condition=models.Q(state="pending"))
        ]

    def __str__(self) -> str:
        return f"{self.event} to {self.url}: {self.state} after {self.attempts} attempt(s)"
