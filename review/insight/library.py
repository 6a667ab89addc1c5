"""Selectors of the prompt library pages: templates with their versions, where each version was
used, a contact sheet of recently approved assets, and the prompts a campaign will resolve to."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Count, Prefetch, QuerySet

from prompt_library.errors import PromptLibraryError
from prompt_library.models import Campaign, PromptPart, PromptTemplate, PromptVersion
from prompt_library.parsing import template_from_dict
from prompt_library.selectors import campaign_plan_get
from prompt_library.specs import TemplateSpec
from review.insight.filters import APPROVED_STATES
from review.models import Asset

CONTACT_SHEET = 12


def template_list() -> QuerySet[PromptTemplate]:
    """Every template with its number of versions and newest version number."""
    return PromptTemplate.objects.annotate(version_count=Count("versions")).prefetch_related(
        Prefetch("versions", queryset=PromptVersion.objects.select_related("created_by").order_by("number"))
    )


@dataclass(frozen=True)
class VersionView:
    """A version with its authored spec and the campaigns and requests that used it."""

    version: PromptVersion
    spec: TemplateSpec
    campaigns: tuple[Campaign, ...]
    requests: tuple[Campaign, ...]
    assets: int


def template_versions(*, template: PromptTemplate) -> list[VersionView]:
    """The template's versions, newest first, each with where it was used (2 queries)."""
    versions = list(
        PromptVersion.objects.filter(template=template)
        .select_related("created_by")
        .annotate(asset_count=Count("assets"))
        .order_by("-number")
    )
    used: dict[int, list[Campaign]] = {}
    for campaign in Campaign.objects.filter(prompt_version__template=template).order_by("name"):
        used.setdefault(campaign.prompt_version_id, []).append(campaign)
    return [
        VersionView(
            version=v,
            spec=template_from_dict(v.spec),
            campaigns=tuple(c for c in used.get(v.pk, []) if c.kind == Campaign.Kind.SCHEDULED),
            requests=tuple(c for c in used.get(v.pk, []) if c.kind == Campaign.Kind.REQUEST),
            assets=int(getattr(v, "asset_count", 0)),
        )
        for v in versions
    ]


def contact_sheet(*, template: PromptTemplate, limit: int = CONTACT_SHEET) -> list[Asset]:
    """The template's most recently approved (or published) assets that have a thumbnail."""
    return list(
        Asset.objects.filter(prompt_version__template=template, state__in=APPROVED_STATES)
        .exclude(thumb_path="")
        .select_related("prompt_version")
        .order_by("-updated_at", "-id")[:limit]
    )


@dataclass(frozen=True)
class ResolvedPrompt:
    campaign: str
    variables: dict[str, str]
    prompt: str
    negative_prompt: str
    variants: int


def resolved_prompts(*, version: PromptVersion, limit: int = 3) -> list[ResolvedPrompt]:
    """What the first variant of each campaign using the version will be drawn from: the prompt
    with its styles, negative presets and variable values filled in, before any run."""
    out = []
    for campaign in Campaign.objects.filter(prompt_version=version).order_by("name")[:limit]:
        try:
            plan = campaign_plan_get(name=campaign.name)
        except PromptLibraryError:
            continue
        if plan.variants:
            first = plan.variants[0]
            out.append(
                ResolvedPrompt(
                    campaign=campaign.name,
                    variables=dict(first.variables),
                    prompt=first.prompt,
                    negative_prompt=first.negative_prompt,
                    variants=len(plan.variants),
                )
            )
    return out


def parts_list() -> list[PromptPart]:
    return list(PromptPart.objects.select_related("created_by").order_by("kind", "name", "-number"))
