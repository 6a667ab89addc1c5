"""Selectors that read asset requests: a user's list, one request's progress and decisions, and
the templates the new-request form offers."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth.models import User
from django.db.models import Count, Prefetch, Q, QuerySet
from django.urls import reverse

from prompt_library.models import PromptTemplate, PromptVersion
from prompt_library.parsing import template_from_dict
from review.models import Asset, ReviewDecision, Run
from review.requests.briefs import rendition_names, variable_choices
from review.requests.models import AssetRequest, Notification
from review.states import AssetState

STRIP = 6  # recently approved thumbnails shown with a template
SUGGESTIONS = 12  # earlier values offered for a free-text variable
PROGRESS_STATES = (
    AssetState.PENDING,
    AssetState.FAILED,
    AssetState.IN_REVIEW,
    AssetState.APPROVED,
    AssetState.REJECTED,
    AssetState.PUBLISHED,
    AssetState.CANCELLED,
)
APPROVED = (AssetState.APPROVED, AssetState.PUBLISHED)
DECIDED_VERB: dict[str, str] = {ReviewDecision.Decision.APPROVE: "approved", ReviewDecision.Decision.REJECT: "rejected"}


def user_is_admin(user: User) -> bool:
    return bool(user.is_superuser or user.groups.filter(name="admin").exists())


def request_list(*, user: User) -> QuerySet[AssetRequest]:
    """The requests a user may see, newest first, with their assets counted by state: a
    requester their own, an admin every one."""
    qs = AssetRequest.objects.select_related("campaign", "requester", "prompt_version__template")
    if not user_is_admin(user):
        qs = qs.filter(requester=user)
    counts = {
        f"n_{state}": Count("campaign__assets", filter=Q(campaign__assets__state=state)) for state in PROGRESS_STATES
    }
    return qs.annotate(n_total=Count("campaign__assets"), **counts).order_by("-created_at", "-id")


def request_get(*, pk: int) -> AssetRequest:
    return AssetRequest.objects.select_related("campaign", "requester", "cancelled_by", "prompt_version__template").get(
        pk=pk
    )


def request_for_campaign(*, campaign_id: int) -> AssetRequest | None:
    """The request behind a campaign, if it is one (the asset page and the queue show its notes)."""
    return AssetRequest.objects.filter(campaign_id=campaign_id).first()


@dataclass(frozen=True)
class RequestProgress:
    """What the request page shows and its JSON endpoint returns."""

    counts: dict[str, int]
    total: int
    generated: int
    run_state: str
    run_open: bool
    assets: list[dict[str, Any]] = field(default_factory=list)
    cancelled: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "counts": self.counts,
            "total": self.total,
            "generated": self.generated,
            "run": {"state": self.run_state, "open": self.run_open},
            "cancelled": self.cancelled,
            "assets": self.assets,
            "finished": not self.run_open,
        }


def request_progress(*, request: AssetRequest) -> RequestProgress:
    """Counts per state, the latest run's state, and each asset with its thumbnail and the
    reviewers' decisions (three queries, whatever the number of assets)."""
    assets = list(
        Asset.objects.filter(campaign_id=request.campaign_id)
        .only("id", "state", "thumb_path", "alt_text", "variables", "seed", "mime", "campaign_id")
        .prefetch_related(
            Prefetch("decisions", queryset=ReviewDecision.objects.select_related("reviewer").order_by("created_at"))
        )
        .order_by("id")
    )
    run = Run.objects.filter(campaign_id=request.campaign_id).order_by("-created_at", "-id").first()
    counts = {str(state): 0 for state in PROGRESS_STATES}
    rows = []
    for asset in assets:
        counts[asset.state] = counts.get(asset.state, 0) + 1
        rows.append(
            {
                "serial": asset.pk,
                "state": asset.state,
                "state_label": AssetState(asset.state).label,
                "thumbnail": reverse("review:file", args=[asset.pk, "thumbnail"]) if asset.thumb_path else "",
                "alt": asset.alt_text,
                "variables": asset.variables,
                "seed": asset.seed,
                "decisions": [
                    {
                        "reviewer": d.reviewer.get_username(),
                        "decision": d.decision,
                        "verb": DECIDED_VERB.get(d.decision, d.decision),
                        "reason": d.get_reason_display() if d.reason else "",
                        "comment": d.comment,
                        "at": d.created_at.isoformat(timespec="seconds"),
                    }
                    for d in asset.decisions.all()
                ],
            }
        )
    made = len(assets) - counts[AssetState.PENDING] - counts[AssetState.FAILED] - counts[AssetState.CANCELLED]
    return RequestProgress(
        counts=counts,
        total=len(assets),
        generated=made,
        run_state=run.state if run else "",
        run_open=bool(run and run.is_open),
        assets=rows,
        cancelled=request.cancelled_at is not None,
    )


def request_approved_assets(*, request: AssetRequest) -> list[Asset]:
    """The request's approved (and published) assets, oldest first, with what the manifest names."""
    return list(
        Asset.objects.filter(campaign_id=request.campaign_id, state__in=APPROVED)
        .select_related("campaign", "prompt_version__template")
        .prefetch_related(
            Prefetch(
                "decisions",
                queryset=ReviewDecision.objects.select_related("reviewer").order_by("created_at"),
            ),
            "publications",
        )
        .order_by("id")
    )


@dataclass(frozen=True)
class TemplateCard:
    """A template version as the new-request form offers it."""

    name: str
    number: int
    description: str
    variables: tuple[str, ...]
    choices: dict[str, list[str]]
    suggestions: dict[str, list[str]]
    output: str
    renditions: list[str]
    mode: str
    approved: list[Asset]


def template_cards() -> list[TemplateCard]:
    """Each template's latest version, with its description, variables (choices where declared,
    earlier values as suggestions), output spec, renditions and recently approved assets."""
    latest: dict[int, PromptVersion] = {}
    for version in PromptVersion.objects.select_related("template").order_by("template_id", "number"):
        latest[version.template_id] = version
    cards = []
    templates = PromptTemplate.objects.filter(pk__in=latest).order_by("name")
    for template in templates:
        version = latest[template.pk]
        spec = template_from_dict(version.spec)
        out = spec.output
        size = f"{out.width}×{out.height} {out.format.upper()}"
        if out.is_video:
            size += f", {out.seconds:g} s at {out.fps} fps"
        approved = list(
            Asset.objects.filter(prompt_version__template=template, state__in=APPROVED)
            .exclude(thumb_path="")
            .only("id", "alt_text", "thumb_path")
            .order_by("-updated_at", "-id")[:STRIP]
        )
        cards.append(
            TemplateCard(
                name=template.name,
                number=version.number,
                description=spec.description or template.description,
                variables=spec.variables,
                choices=variable_choices(version),
                suggestions=_suggestions(template, spec.variables),
                output=size,
                renditions=rendition_names(spec),
                mode=str(version.spec.get("mode") or "text-to-image"),
                approved=approved,
            )
        )
    return cards


def _suggestions(template: PromptTemplate, variables: Iterable[str]) -> dict[str, list[str]]:
    """Values the template's campaigns used for each variable, for the form's suggestions."""
    seen: dict[str, list[str]] = {name: [] for name in variables}
    rows = template.versions.values_list("campaigns__variables", flat=True)
    for values in rows:
        if not isinstance(values, dict):
            continue
        for name, given in values.items():
            if name in seen:
                for value in given if isinstance(given, list) else [given]:
                    if isinstance(value, str) and value not in seen[name] and len(seen[name]) < SUGGESTIONS:
                        seen[name].append(value)
    return seen


def notification_list(*, user: User, limit: int = 50) -> list[Notification]:
    return list(
        Notification.objects.filter(recipient=user).select_related("request").order_by("-created_at", "-id")[:limit]
    )


def notifications_unread_count(*, user: User) -> int:
    return Notification.objects.filter(recipient=user, read_at=None).count()
