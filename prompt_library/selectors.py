"""Selectors that read the prompt library."""

from __future__ import annotations

from dataclasses import dataclass

from prompt_library.errors import CampaignNotFoundError
from prompt_library.models import Campaign, PromptVersion
from prompt_library.specs import (
    CampaignSpec,
    GenerationParams,
    TemplateSpec,
    Variant,
    campaign_expand,
    template_from_dict,
)


@dataclass(frozen=True)
class CampaignPlan:
    """A campaign ready to run: its spec, its pinned template version and its variants."""

    campaign: CampaignSpec
    template: TemplateSpec
    version: PromptVersion
    params: GenerationParams
    variants: tuple[Variant, ...]


def campaign_plan_get(*, name: str) -> CampaignPlan:
    """Expand a loaded campaign into variants from its pinned template version."""
    row = Campaign.objects.select_related("prompt_version__template").filter(name=name).first()
    if row is None:
        raise CampaignNotFoundError(name, list(Campaign.objects.values_list("name", flat=True)))
    version: PromptVersion = row.prompt_version
    template = template_from_dict(version.spec)
    campaign = CampaignSpec(
        name=row.name,
        title=row.title,
        kind=row.kind,
        template=version.template.name,
        template_version=version.number,
        variables=tuple((k, tuple(v)) for k, v in row.variables.items()),
        seeds=tuple(row.seeds),
        deadline=row.deadline,
        approvals_required=row.approvals_required,
        on_reject=row.on_reject,
    )
    params = GenerationParams(**version.params)
    variants = campaign_expand(campaign, template, params=params, model_manifest_hash=version.model_manifest_hash)
    return CampaignPlan(campaign=campaign, template=template, version=version, params=params, variants=tuple(variants))
