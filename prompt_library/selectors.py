"""Selectors that read the prompt library."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from prompt_library.errors import CampaignNotFoundError, VariablesError
from prompt_library.expansion import campaign_expand
from prompt_library.models import Campaign, PromptVersion
from prompt_library.parsing import template_from_dict
from prompt_library.specs import CampaignSpec, GenerationParams, TemplateSpec, Variant

VALUE_MAX = 200  # characters in one variable's value


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
        rows=tuple(tuple((k, str(r[k])) for k in sorted(r)) for r in row.variable_rows),
        seeds=tuple(row.seeds),
        deadline=row.deadline,
        approvals_required=row.approvals_required,
        on_reject=row.on_reject,
        source_image=row.source_image,
    )
    params = GenerationParams(**version.params)
    variants = campaign_expand(campaign, template, params=params, model_manifest_hash=version.model_manifest_hash)
    return CampaignPlan(campaign=campaign, template=template, version=version, params=params, variants=tuple(variants))


def prompt_version_get(*, template: str, number: int) -> PromptVersion:
    """One template version (with its template)."""
    return PromptVersion.objects.select_related("template").get(template__name=template, number=number)


def variants_build(
    *,
    campaign: str,
    version: PromptVersion,
    values: Mapping[str, str],
    seeds: Sequence[int],
    source_image: str | None = None,
) -> list[Variant]:
    """Variants of one template version with one set of variable values, one per seed: what
    regenerating an asset asks for, and how a registered asset's variant is rebuilt to run it.

    `values` must name exactly the version's variables, each with non-empty text. The campaign's
    own source image (a request's reference image) is looked up by its name unless given.
    """
    if source_image is None:
        source_image = Campaign.objects.filter(name=campaign).values_list("source_image", flat=True).first() or ""
    template = template_from_dict(version.spec)
    given = sorted(values)
    if sorted(template.variables) != given:
        raise VariablesError(template.name, version.number, list(template.variables), given)
    for name, value in values.items():
        if not isinstance(value, str) or not value.strip() or len(value) > VALUE_MAX:
            raise VariablesError(template.name, version.number, list(template.variables), given, bad=(name, str(value)))
    spec = CampaignSpec(
        name=campaign,
        title=campaign,
        kind=Campaign.Kind.SCHEDULED,
        template=template.name,
        template_version=version.number,
        variables=tuple((name, (values[name].strip(),)) for name in template.variables),
        seeds=tuple(seeds),
        source_image=source_image,
    )
    return campaign_expand(
        spec, template, params=GenerationParams(**version.params), model_manifest_hash=version.model_manifest_hash
    )
