"""Expansion: a campaign and its template version become the variants to make.

`params_resolve` lays a template's parameters over a model's defaults, `embeddings_resolve` pins
its textual inversions, `campaign_check` matches a campaign's variables to its template's, and
`campaign_expand` multiplies values by seeds in a stable order.
"""

from __future__ import annotations

import itertools
from pathlib import Path

from models import ModelError, ModelManifest
from models.adapters import TEXTUAL_INVERSION, adapter_manifest_load
from models.families import TEXTUAL_INVERSION_FAMILIES
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


def embeddings_resolve(
    path: Path, template: TemplateSpec, manifest: ModelManifest, *, manifests_dir: Path
) -> list[list[str]]:
    """The template's textual inversions pinned now: [name, embedding manifest hash, token] each.

    Refused, naming the field: a model whose family's text encoder takes no textual inversion, a
    name with no manifest, a manifest of another kind or for another family.
    """
    if template.embeddings and manifest.family not in TEXTUAL_INVERSION_FAMILIES:
        raise LibraryFileError(
            path,
            f"field 'embeddings' names {template.embeddings[0][0]!r} but model '{manifest.name}' "
            f"({manifest.family}) has no text encoder that takes textual inversions "
            f"(families that do: {', '.join(TEXTUAL_INVERSION_FAMILIES)})",
        )
    pinned: list[list[str]] = []
    for i, (name, token) in enumerate(template.embeddings):
        try:
            embedding = adapter_manifest_load(name, manifests_dir=manifests_dir)
        except ModelError as exc:
            raise LibraryFileError(path, f"field 'embeddings[{i}].name' is {name!r}: {exc}") from exc
        if embedding.kind != TEXTUAL_INVERSION:
            raise LibraryFileError(
                path, f"field 'embeddings[{i}].name' is {name!r}, a {embedding.kind}, not a {TEXTUAL_INVERSION}"
            )
        if embedding.family != manifest.family:
            raise LibraryFileError(
                path,
                f"field 'embeddings[{i}].name' is {name!r}, an embedding for the {embedding.family} family; "
                f"model '{manifest.name}' is {manifest.family}",
            )
        pinned.append([name, embedding.manifest_hash, token])
    return pinned


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
    for number, row in enumerate(campaign.rows, start=1):
        names = [name for name, _ in row]
        if names != list(campaign.linked) or any(name not in given for name in names):
            raise LibraryFileError(
                where,
                f"field 'rows' row {number} names {', '.join(names) or 'nothing'}; every row must name the same "
                f"variables of the campaign ({', '.join(campaign.linked)})",
            )


def campaign_expand(
    campaign: CampaignSpec,
    template: TemplateSpec,
    *,
    params: GenerationParams,
    model_manifest_hash: str,
) -> list[Variant]:
    """Every combination of the campaign's variable values (its rows, where it has linked rows,
    times every combination of the other variables), times its seeds, in a stable order."""
    campaign_check(campaign, template)
    crossed = [(name, values) for name, values in campaign.variables if name not in campaign.linked]
    names = [name for name, _ in crossed]
    template_hash = template.content_hash
    variants = []
    for row, combo in itertools.product(campaign.rows or ((),), itertools.product(*(v for _, v in crossed))):
        values = {**dict(row), **dict(zip(names, combo, strict=True))}
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
