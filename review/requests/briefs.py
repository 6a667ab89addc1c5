"""A brief checked before anything is registered: every field, then the preflight the web process
can do without the generation engine (the model's pin and role, the signing files).

`brief_check` collects every bad field with its value and raises them together
(`BriefRefusedError`), so the form shows all of them at once. What it returns is the brief as it
will be stored and run: the pinned template version, the cleaned values and the variant count.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from django.conf import settings
from django.utils import timezone

from models import VIDEO_ROLE, ModelError, manifest_load
from prompt_library.errors import SourceImageError
from prompt_library.models import PromptTemplate, PromptVersion
from prompt_library.parsing import template_from_dict
from prompt_library.selectors import VALUE_MAX
from prompt_library.sources import source_image_describe, source_override_refusal
from prompt_library.specs import TemplateSpec
from provenance.config import provenance_config_from_settings
from provenance.errors import ProvenanceError
from provenance.keys import signing_files_check
from review.requests.errors import BriefProblem, BriefRefusedError

NOTES_MAX = 2000
TITLE_MAX = 200
VALUES_MAX = 20  # values of one variable in one brief
REFERENCE_MODES = ("image-to-image", "inpainting", "image-to-video")  # template modes that take a reference image
REFERENCE_FIELD = "reference_image"
MASTER = "master"  # the rendition name of the signed master itself, for templates without renditions


def variants_max() -> int:
    """The most variants one brief may make (GREENLIGHT_REQUEST_MAX_VARIANTS)."""
    return int(settings.GREENLIGHT_REQUEST_MAX_VARIANTS)


@dataclass(frozen=True)
class CheckedBrief:
    """A brief that can run: its pinned version and template, and its cleaned fields."""

    version: PromptVersion
    template: TemplateSpec
    values: dict[str, list[str]]
    variants_per_combination: int
    renditions: list[str]
    deadline: datetime | None
    notes: str
    title: str
    variant_count: int
    reference_image: bytes | None = None  # drawn from instead of the template's own source image


def rendition_names(template: TemplateSpec) -> list[str]:
    """The renditions a brief may ask for: the template's output presets, else the master."""
    return [r.name for r in template.output.renditions] or [MASTER]


def variable_choices(version: PromptVersion) -> dict[str, list[str]]:
    """The values a template version declares for its variables (`choices` in its spec), if any;
    a variable without declared choices takes free text."""
    declared = version.spec.get("choices") or {}
    return (
        {str(k): [str(v) for v in vs] for k, vs in declared.items() if isinstance(vs, list)}
        if isinstance(declared, Mapping)
        else {}
    )


def version_resolve(template: str, version: int | None, problems: list[BriefProblem]) -> PromptVersion | None:
    """The template version a brief names (its latest when no number is given), or None with
    the problem recorded."""
    readable = isinstance(template, str) and template.isprintable() and 0 < len(template) <= 100
    row = PromptTemplate.objects.filter(name=template).first() if readable else None
    if row is None:
        known = ", ".join(PromptTemplate.objects.values_list("name", flat=True)[:20]) or "none"
        problems.append(BriefProblem("template", template, f"is not a template here (known: {known})"))
        return None
    versions = PromptVersion.objects.select_related("template").filter(template=row)
    if version is None:
        found = versions.order_by("-number").first()
    elif isinstance(version, bool) or not isinstance(version, int):
        problems.append(BriefProblem("version", version, "must be a version number"))
        return None
    else:
        found = versions.filter(number=version).first()
    if found is None:
        numbers = ", ".join(f"v{n}" for n in versions.values_list("number", flat=True)) or "no versions"
        problems.append(BriefProblem("version", version, f"of template '{template}' does not exist ({numbers})"))
    return found


def brief_check(
    *,
    template: str,
    version: int | None,
    values: Mapping[str, Any],
    variants_per_combination: Any,
    renditions: Sequence[Any],
    deadline: datetime | None,
    notes: str,
    title: str = "",
    reference_image: bytes | None = None,
    now: datetime | None = None,
    already: int = 0,
    require_deadline_future: bool = True,
) -> CheckedBrief:
    """Check every field of a brief and the preflight; raise `BriefRefusedError` naming each bad
    field and its value, or return the brief ready to store and run. `already` is how many
    variants the request had before (asking for more): only the new ones count against the
    maximum."""
    problems: list[BriefProblem] = []
    pinned = version_resolve(template, version, problems)
    spec = template_from_dict(pinned.spec) if pinned is not None else None
    clean_values = _values_check(values, spec, variable_choices(pinned) if pinned else {}, problems)
    count = _count_check(variants_per_combination, problems, limit=variants_max() + already)
    if spec is not None and count is not None and clean_values is not None:
        total = math.prod(len(v) for v in clean_values.values()) * count
        if total - already > variants_max():
            problems.append(
                BriefProblem(
                    "variants_per_combination",
                    count,
                    f"makes {total - already} new variants with these values; a brief may make at most "
                    f"{variants_max()}",
                )
            )
    else:
        total = 0
    chosen = _renditions_check(renditions, spec, problems)
    if deadline is not None:
        if not isinstance(deadline, datetime) or timezone.is_naive(deadline):
            problems.append(BriefProblem("deadline", deadline, "must be a date and time with its time zone"))
        elif require_deadline_future and deadline <= (now or timezone.now()):
            problems.append(BriefProblem("deadline", deadline.isoformat(), "has already passed"))
    if not isinstance(notes, str) or len(notes) > NOTES_MAX or "\x00" in notes:
        problems.append(BriefProblem("notes", notes, f"must be text of at most {NOTES_MAX} characters"))
    if not isinstance(title, str) or len(title) > TITLE_MAX or not (title.isprintable() or not title):
        problems.append(BriefProblem("title", title, f"must be printable text of at most {TITLE_MAX} characters"))
    if reference_image is not None and spec is not None:
        _reference_check(reference_image, spec, problems)
    if pinned is not None and spec is not None:
        _preflight(pinned, spec, problems)
    if problems:
        raise BriefRefusedError(problems)
    assert pinned is not None and spec is not None and clean_values is not None and count is not None
    return CheckedBrief(
        version=pinned,
        template=spec,
        values=clean_values,
        variants_per_combination=count,
        renditions=chosen,
        deadline=deadline,
        notes=notes.strip(),
        title=title.strip(),
        variant_count=total,
        reference_image=reference_image,
    )


def _reference_check(data: bytes, spec: TemplateSpec, problems: list[BriefProblem]) -> None:
    """A brief's reference image: taken only where the template draws from a photo (its variants
    are then drawn from this one instead), and an image the source store accepts."""
    shown = f"{len(data)} bytes" if isinstance(data, bytes) else data
    if not isinstance(data, bytes):
        problems.append(BriefProblem(REFERENCE_FIELD, shown, "must be an uploaded image file"))
        return
    if spec.mode not in REFERENCE_MODES:
        problems.append(
            BriefProblem(
                REFERENCE_FIELD,
                shown,
                f"is not taken by template '{spec.name}' v{spec.number}: its mode is {spec.mode} "
                f"(a reference image is for {', '.join(REFERENCE_MODES)})",
            )
        )
        return
    try:
        _, _, width, height, alpha = source_image_describe(data, field=REFERENCE_FIELD)
    except SourceImageError as exc:
        problems.append(BriefProblem(REFERENCE_FIELD, exc.value, exc.problem))
        return
    why = source_override_refusal(template=spec, width=width, height=height, has_alpha=alpha)
    if why:
        problems.append(BriefProblem(REFERENCE_FIELD, f"{width}x{height}", why))


def _values_check(
    values: Mapping[str, Any],
    spec: TemplateSpec | None,
    choices: Mapping[str, list[str]],
    problems: list[BriefProblem],
) -> dict[str, list[str]] | None:
    """Each of the template's variables with 1 to VALUES_MAX distinct values (from its choices
    where it declares them); a variable the template lacks is refused."""
    if not isinstance(values, Mapping):
        problems.append(BriefProblem("values", values, "must map each variable to its values"))
        return None
    if spec is None:
        return None
    before = len(problems)
    clean: dict[str, list[str]] = {}
    for name in values:
        if name not in spec.variables:
            problems.append(
                BriefProblem(
                    f"values.{name}",
                    values[name],
                    f"is not a variable of template '{spec.name}' v{spec.number} "
                    f"(its variables: {', '.join(spec.variables) or 'none'})",
                )
            )
    for name in spec.variables:
        given = values.get(name)
        field = f"values.{name}"
        if isinstance(given, str):
            given = [given]
        if not isinstance(given, list | tuple) or not given:
            problems.append(BriefProblem(field, given, "needs at least one value"))
            continue
        if len(given) > VALUES_MAX:
            problems.append(BriefProblem(field, given, f"has more than {VALUES_MAX} values"))
            continue
        cleaned: list[str] = []
        for value in given:
            text = value.strip() if isinstance(value, str) else None
            if not text or len(text) > VALUE_MAX or any(c in text for c in "{}") or not text.isprintable():
                problems.append(
                    BriefProblem(field, value, f"needs 1 to {VALUE_MAX} printable characters of text, without braces")
                )
            elif name in choices and text not in choices[name]:
                problems.append(BriefProblem(field, value, f"is not one of the choices: {', '.join(choices[name])}"))
            elif text in cleaned:
                problems.append(BriefProblem(field, value, "is listed twice"))
            else:
                cleaned.append(text)
        clean[name] = cleaned
    return clean if len(problems) == before else None


def _count_check(count: Any, problems: list[BriefProblem], *, limit: int) -> int | None:
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= limit:
        problems.append(BriefProblem("variants_per_combination", count, f"must be a whole number from 1 to {limit}"))
        return None
    return count


def _renditions_check(renditions: Sequence[Any], spec: TemplateSpec | None, problems: list[BriefProblem]) -> list[str]:
    if isinstance(renditions, str) or not isinstance(renditions, Sequence):
        problems.append(BriefProblem("renditions", renditions, "must list rendition names"))
        return []
    if spec is None:
        return []
    offered = rendition_names(spec)
    if not renditions:
        problems.append(BriefProblem("renditions", list(renditions), f"needs at least one of {', '.join(offered)}"))
        return []
    chosen: list[str] = []
    for name in renditions:
        if name not in offered:
            problems.append(
                BriefProblem("renditions", name, f"is not an output of this template (offered: {', '.join(offered)})")
            )
        elif name not in chosen:
            chosen.append(name)
    return chosen


def _preflight(version: PromptVersion, spec: TemplateSpec, problems: list[BriefProblem]) -> None:
    """What the web process can check of a run before registering anything, without importing the
    generation engine: the model's manifest, its pin and its role against the output, and that the
    signing files can sign. (The worker's own preflight checks the rest before generating.)"""
    label = f"template '{spec.name}' v{version.number}"
    try:
        manifest = manifest_load(version.model_name, manifests_dir=Path(settings.GREENLIGHT_MODELS_DIR))
    except (ModelError, OSError) as exc:
        problems.append(BriefProblem("model", version.model_name, f"of {label} fails preflight: {exc}"))
        return
    if manifest.manifest_hash != version.model_manifest_hash:
        problems.append(
            BriefProblem(
                "model",
                version.model_name,
                f"of {label} fails preflight: it is pinned to manifest {version.model_manifest_hash[:12]}… "
                f"but the model's manifest is now {manifest.manifest_hash[:12]}…",
            )
        )
    roles = ("generator", VIDEO_ROLE) if spec.output.is_video else ("generator",)
    if manifest.role not in roles:
        problems.append(
            BriefProblem(
                "model",
                version.model_name,
                f"of {label} fails preflight: role {manifest.role!r} cannot make its output",
            )
        )
    try:
        signing_files_check(provenance_config_from_settings().signing)
    except (ProvenanceError, OSError) as exc:
        problems.append(BriefProblem("signing key", "GREENLIGHT_SIGNING_KEY", f"cannot sign: {exc}"))
