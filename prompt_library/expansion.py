"""Expansion: a campaign and its template version become the variants to make.

`params_resolve` lays a template's parameters over a model's defaults, `campaign_check` matches a
campaign's variables to its template's, and `campaign_expand` multiplies values by seeds in a
stable order.
"""

from __future__ import annotations

import itertools
from pathlib import Path

from prompt_library.errors import LibraryFileError
from prompt_library.specs import CampaignSpec, GenerationParams, TemplateSpec, Variant


def params_resolve(
    template: TemplateSpec,
    *,
    steps: int,
    guidance: float,
    width: int,
    height: int,
    size_multiple: int | None = None,
) -> GenerationParams:
    """The template's generation parameters over the model's defaults (given as keywords).

    Without a size in the template, the model draws at its default area in the output's aspect
    ratio (each side a multiple of ``size_multiple``, when given), so that a 16:9 output is not a
    square drawing stretched: a 64x64 model asked for 1024x576 draws 84x48.
    """
    p = template.params
    if "width" not in p and "height" not in p and size_multiple:
        width, height = aspect_size(width * height, template.output.width / template.output.height, size_multiple)
    return GenerationParams(
        steps=int(p.get("steps", steps)),
        guidance=float(p.get("guidance", guidance)),
        width=int(p.get("width", width)),
        height=int(p.get("height", height)),
        scheduler=str(p.get("scheduler", "")),
    )


def aspect_size(area: int, aspect: float, multiple: int) -> tuple[int, int]:
    """The size of about ``area`` pixels with width/height ``aspect``, each side a multiple of ``multiple``."""
    exact_width = (area * aspect) ** 0.5
    width = max(multiple, round(exact_width / multiple) * multiple)
    height = max(multiple, round(exact_width / aspect / multiple) * multiple)
    return width, height


def campaign_check(campaign: CampaignSpec, template: TemplateSpec, *, path: Path | str | None = None) -> None:
    """A campaign must give values for exactly the variables its template version declares."""
    given = [name for name, _ in campaign.variables]
    missing = [v for v in template.variables if v not in given]
    extra = [v for v in given if v not in template.variables]
    where = path or f"campaign '{campaign.name}'"
    if missing:
        raise LibraryFileError(
            where,
            f"template '{template.name}' v{template.number} needs variable '{missing[0]}' "
            f"(given: {', '.join(given) or 'none'})",
        )
    if extra:
        raise LibraryFileError(
            where,
            f"template '{template.name}' v{template.number} has no variable '{extra[0]}' "
            f"(declared: {', '.join(template.variables)})",
        )


def campaign_expand(
    campaign: CampaignSpec,
    template: TemplateSpec,
    *,
    params: GenerationParams,
    model_manifest_hash: str,
) -> list[Variant]:
    """Every combination of the campaign's variable values, times its seeds, in a stable order."""
    campaign_check(campaign, template)
    names = [name for name, _ in campaign.variables]
    template_hash = template.content_hash
    variants = []
    for combo in itertools.product(*(values for _, values in campaign.variables)):
        values = dict(zip(names, combo, strict=True))
        prompt, negative = template.render(values)
        alt = template.alt_render(values)
        for seed in campaign.seeds:
            variants.append(
                Variant(
                    campaign=campaign.name,
                    template=template.name,
                    template_version=template.number,
                    template_hash=template_hash,
                    variables=tuple(sorted(values.items())),
                    prompt=prompt,
                    negative_prompt=negative,
                    seed=seed,
                    params=params,
                    output=template.output,
                    model_name=template.model_name,
                    model_manifest_hash=model_manifest_hash,
                    alt=alt,
                    mode=template.mode,
                    strength=template.strength,
                    source_image=campaign.source_image or template.source_image,
                    mask=template.mask,
                )
            )
    return variants
