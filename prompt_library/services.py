"""Services that write the prompt library: loading template and campaign files into the database.

Library layout (under GREENLIGHT_LIBRARY_DIR):
    templates/<template-name>/v<N>.yaml    one immutable version per file
    campaigns/<campaign-name>.yaml         a campaign naming a template version
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import yaml
from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction

from models import ModelError, ModelManifest, manifest_load, scheduler_refusal
from models.adapters import adapter_manifest_load
from models.families import source_mode_refusal
from prompt_library.errors import (
    CampaignExistsError,
    LibraryFileError,
    SourceImageError,
    TemplateVersionNotFoundError,
    VersionChangedError,
)
from prompt_library.expansion import campaign_check, embeddings_resolve, params_resolve
from prompt_library.models import Campaign, PromptTemplate, PromptVersion
from prompt_library.parsing import campaign_parse, template_from_dict, template_parse
from prompt_library.sources import (
    ALPHA_MASK,
    SHA256_RE,
    source_image_get,
    source_image_store,
    source_override_refusal,
)
from prompt_library.specs import CampaignSpec, TemplateSpec

VERSION_FILE = re.compile(r"^v(?P<number>[1-9][0-9]*)\.ya?ml$")


@dataclass
class LoadReport:
    """What `library_load` did."""

    versions_created: list[str] = field(default_factory=list)
    versions_unchanged: list[str] = field(default_factory=list)
    campaigns_saved: list[str] = field(default_factory=list)


def _yaml_read(path: Path) -> object:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise LibraryFileError(path, f"not valid YAML: {exc}") from exc
    except OSError as exc:
        raise LibraryFileError(path, f"cannot be read: {exc.strerror}") from exc


def _relative(path: Path) -> str:
    try:
        return str(path.relative_to(settings.BASE_DIR))
    except ValueError:
        return str(path)


def library_read(root: Path) -> tuple[list[tuple[Path, TemplateSpec]], list[tuple[Path, CampaignSpec]]]:
    """Parse every template version and campaign file under `root`, checking each one."""
    if not root.is_dir():
        raise LibraryFileError(root, "prompt library folder does not exist")
    templates: list[tuple[Path, TemplateSpec]] = []
    for folder in sorted(p for p in (root / "templates").glob("*") if p.is_dir()):
        for path in sorted(folder.iterdir()):
            match = VERSION_FILE.match(path.name)
            if not match:
                raise LibraryFileError(path, "template version files are named v<N>.yaml")
            spec = template_parse(_yaml_read(path), path=path, number=int(match["number"]))
            if spec.name != folder.name:
                raise LibraryFileError(path, f"field 'name' is '{spec.name}' but the folder is '{folder.name}'")
            templates.append((path, _sources_resolve(spec, root=root, path=path)))
    campaigns = [
        (path, campaign_parse(_yaml_read(path), path=path)) for path in sorted((root / "campaigns").glob("*.y*ml"))
    ]
    return templates, campaigns


@transaction.atomic
def library_load(*, root: Path | None = None) -> LoadReport:
    """Load the library's files: new versions are created, published ones must be unchanged.

    Everything is checked before anything is written, and it is written in one transaction, so
    a bad file leaves the database as it was.
    """
    root = root or Path(settings.GREENLIGHT_LIBRARY_DIR)
    templates, campaigns = library_read(root)
    report = LoadReport()
    known: dict[tuple[str, int], TemplateSpec] = {}
    for path, spec in templates:
        known[(spec.name, spec.number)] = spec
        template, _ = PromptTemplate.objects.get_or_create(name=spec.name, defaults={"description": spec.description})
        existing = PromptVersion.objects.filter(template=template, number=spec.number).first()
        label = f"{spec.name} v{spec.number}"
        if existing is not None:
            if existing.content_hash != spec.content_hash:
                raise VersionChangedError(path, spec.name, spec.number)
            report.versions_unchanged.append(label)
            continue
        PromptVersion.objects.create(**_version_fields(path, spec), template=template)
        report.versions_created.append(label)
    for path, campaign in campaigns:
        version = PromptVersion.objects.filter(
            template__name=campaign.template, number=campaign.template_version
        ).first()
        if version is None:
            numbers = sorted(
                {n for (t, n) in known if t == campaign.template}
                | set(PromptVersion.objects.filter(template__name=campaign.template).values_list("number", flat=True))
            )
            raise TemplateVersionNotFoundError(path, campaign.template, campaign.template_version, numbers)
        campaign_check(campaign, template_from_version(version), path=path)
        campaign_source_check(campaign, template_from_version(version), path=path)
        Campaign.objects.update_or_create(
            name=campaign.name, defaults={**campaign_fields(campaign, version), "source_file": _relative(path)}
        )
        report.campaigns_saved.append(campaign.name)
    return report


def campaign_fields(campaign: CampaignSpec, version: PromptVersion) -> dict[str, object]:
    """A campaign's row from its checked spec (the library's files and the API save the same)."""
    return {
        "title": campaign.title,
        "kind": campaign.kind,
        "prompt_version": version,
        "variables": {k: list(v) for k, v in campaign.variables},
        "variable_rows": [dict(row) for row in campaign.rows],
        "seeds": list(campaign.seeds),
        "deadline": campaign.deadline,
        "approvals_required": campaign.approvals_required,
        "on_reject": campaign.on_reject,
        "priority": campaign.priority,
        "schedule_cron": campaign.schedule_cron,
        "schedule_timezone": campaign.schedule_timezone,
        "schedule_active": campaign.schedule_active,
        "source_image": campaign.source_image,
    }


@transaction.atomic
def campaign_create(*, data: Mapping[str, object], requested_by: User | None = None) -> Campaign:
    """A new campaign from the fields a campaign file holds (`data`, parsed YAML or JSON with the
    deadline as a date-time), checked exactly as `library_load` checks a file; a request records
    who asked for it (`requested_by`). A name already taken is refused (CampaignExistsError)."""
    where = Path(f"campaign {str(data.get('name', ''))[:100]!r}")
    campaign = campaign_parse(data, path=where)
    version = PromptVersion.objects.filter(template__name=campaign.template, number=campaign.template_version).first()
    if version is None:
        numbers = sorted(
            PromptVersion.objects.filter(template__name=campaign.template).values_list("number", flat=True)
        )
        raise TemplateVersionNotFoundError(None, campaign.template, campaign.template_version, numbers)
    campaign_check(campaign, template_from_version(version), path=where)
    campaign_source_check(campaign, template_from_version(version), path=where)
    if Campaign.objects.select_for_update().filter(name=campaign.name).exists():
        raise CampaignExistsError(campaign.name)
    requester = requested_by if campaign.kind == Campaign.Kind.REQUEST else None
    return Campaign.objects.create(name=campaign.name, **campaign_fields(campaign, version), requested_by=requester)


def campaign_source_check(campaign: CampaignSpec, template: TemplateSpec, *, path: Path) -> None:
    """A campaign's own source image (by sha256) must be stored, and one its template can draw
    from in place of its own; the refusal names the field, the value and why."""
    if not campaign.source_image:
        return
    try:
        source = source_image_get(sha256=campaign.source_image, field="source_image")
    except SourceImageError as exc:
        raise LibraryFileError(path, f"field 'source_image' is {campaign.source_image!r}: {exc.problem}") from exc
    why = source_override_refusal(
        template=template, width=source.width, height=source.height, has_alpha=source.has_alpha
    )
    if why:
        raise LibraryFileError(path, f"field 'source_image' is {campaign.source_image!r}: it {why}")


def _sources_resolve(spec: TemplateSpec, *, root: Path, path: Path) -> TemplateSpec:
    """The template with its source image and mask files (paths under the library folder) stored
    as source images and named by their sha256, which enters its content hash."""
    if not spec.source_image:
        return spec
    resolved = {"source_image": spec.source_image, "mask": spec.mask}
    for name, value in resolved.items():
        if not value or value == ALPHA_MASK or SHA256_RE.match(value):
            continue
        file = root / value
        try:
            data = file.read_bytes()
        except OSError as exc:
            raise LibraryFileError(
                path, f"field '{name}' names {value!r}, which cannot be read under {root} ({exc.strerror})"
            ) from exc
        try:
            resolved[name] = source_image_store(data=data, name=file.name, field=name).sha256
        except SourceImageError as exc:
            raise LibraryFileError(path, f"field '{name}' names {value!r}: {exc.problem}") from exc
    return replace(spec, source_image=resolved["source_image"], mask=resolved["mask"])


def _sources_check(path: Path, spec: TemplateSpec, manifest: ModelManifest) -> None:
    """A template that draws from a source image needs a family that can, an uploaded source,
    and for ``mask: alpha`` a source with transparency."""
    if not spec.source_image:
        return
    refusal = source_mode_refusal(manifest.family, spec.mode)
    if refusal:
        raise LibraryFileError(
            path, f"field 'mode' is {spec.mode!r} but model '{manifest.name}' ({manifest.family}) {refusal}"
        )
    try:
        source = source_image_get(sha256=spec.source_image, field="source_image")
        if spec.mask and spec.mask != ALPHA_MASK:
            mask = source_image_get(sha256=spec.mask, field="mask")
            if (mask.width, mask.height) != (source.width, source.height):
                raise LibraryFileError(
                    path,
                    f"field 'mask' is {mask.width}x{mask.height} but the source image is "
                    f"{source.width}x{source.height}: a mask has its photo's size",
                )
    except SourceImageError as exc:
        raise LibraryFileError(path, str(exc)) from exc
    if spec.mask == ALPHA_MASK and not source.has_alpha:
        raise LibraryFileError(
            path,
            f"field 'mask' is 'alpha' but source image {source.name!r} has no transparency: "
            "give a cut-out PNG, or a mask file (white: repaint, black: keep)",
        )


def _adapters_resolve(path: Path, spec: TemplateSpec, manifest: ModelManifest) -> list[list[object]]:
    """The template's adapters pinned now: [name, adapter manifest hash, scale] each, every one
    of the model's family (the adapter manifests sit beside the model's)."""
    pinned: list[list[object]] = []
    for i, (name, scale) in enumerate(spec.lora):
        try:
            adapter = adapter_manifest_load(name, manifests_dir=Path(settings.GREENLIGHT_MODELS_DIR))
        except ModelError as exc:
            raise LibraryFileError(path, f"field 'lora[{i}].name' is {name!r}: {exc}") from exc
        if adapter.family != manifest.family:
            raise LibraryFileError(
                path,
                f"field 'lora[{i}].name' is {name!r}, an adapter for the {adapter.family} family; "
                f"model '{manifest.name}' is {manifest.family}",
            )
        if adapter.kind != "lora":
            raise LibraryFileError(path, f"field 'lora[{i}].name' is {name!r}, a {adapter.kind}, not a LoRA")
        pinned.append([name, adapter.manifest_hash, scale])
    return pinned


def _controlnet_resolve(path: Path, spec: TemplateSpec, manifest: ModelManifest) -> list[object]:
    """The template's ControlNet pinned now: [name, manifest hash, conditioning, scale]."""
    name, conditioning, scale = spec.controlnet or ("", "", 0.0)
    try:
        control = adapter_manifest_load(name, manifests_dir=Path(settings.GREENLIGHT_MODELS_DIR))
    except ModelError as exc:
        raise LibraryFileError(path, f"field 'controlnet.name' is {name!r}: {exc}") from exc
    if control.kind != "controlnet" or control.family != manifest.family:
        raise LibraryFileError(
            path,
            f"field 'controlnet.name' is {name!r}, a {control.kind} for the {control.family} family; "
            f"model '{manifest.name}' needs a controlnet for the {manifest.family} family",
        )
    return [name, control.manifest_hash, conditioning, scale]


def _standalone_resolve(path: Path, where: str, name: str, kind: str) -> list[object]:
    """A safety classifier or an upscaler named by a template, pinned now: [name, manifest hash]."""
    try:
        pinned = adapter_manifest_load(name, manifests_dir=Path(settings.GREENLIGHT_MODELS_DIR))
    except ModelError as exc:
        raise LibraryFileError(path, f"field '{where}.name' is {name!r}: {exc}") from exc
    if pinned.kind != kind:
        raise LibraryFileError(
            path, f"field '{where}.name' is {name!r}, of kind {pinned.kind!r}; it must name one of kind {kind!r}"
        )
    return [name, pinned.manifest_hash]


def _version_fields(path: Path, spec: TemplateSpec) -> dict[str, object]:
    """A version's row: the authored spec plus the model pin and parameters resolved now."""
    manifest = manifest_load(spec.model_name, manifests_dir=Path(settings.GREENLIGHT_MODELS_DIR))
    if spec.model_manifest_hash and spec.model_manifest_hash != manifest.manifest_hash:
        raise LibraryFileError(
            path,
            f"field 'model.manifest_hash' pins {spec.model_manifest_hash[:12]}… but model "
            f"'{manifest.name}' has manifest hash {manifest.manifest_hash[:12]}…",
        )
    _sources_check(path, spec, manifest)
    params = asdict(params_resolve(spec, **asdict(manifest.defaults), size_multiple=manifest.size_multiple))
    del params["adapters"]  # stored only when the template names some, as versions before them were
    if spec.lora:
        params["adapters"] = _adapters_resolve(path, spec, manifest)
    del params["controlnet"]
    if spec.controlnet:
        params["controlnet"] = _controlnet_resolve(path, spec, manifest)
    del params["safety"], params["upscaler"], params["embeddings"]  # pinned now, stored only when named
    if spec.embeddings:
        params["embeddings"] = embeddings_resolve(
            path, spec, manifest, manifests_dir=Path(settings.GREENLIGHT_MODELS_DIR)
        )
    if spec.safety:
        params["safety"] = [*_standalone_resolve(path, "safety", spec.safety[0], "safety"), spec.safety[1]]
    if spec.output.upscale:
        params["upscaler"] = _standalone_resolve(path, "output.upscale", spec.output.upscale, "upscaler")
    refusal = scheduler_refusal(params["scheduler"], manifest.scheduler_config, model_name=manifest.name)
    if refusal:
        raise LibraryFileError(path, f"field 'params.scheduler' is {params['scheduler']!r}: {refusal}")
    return {
        "number": spec.number,
        "content_hash": spec.content_hash,
        "prompt": spec.prompt,
        "negative_prompt": spec.negative_prompt,
        "model_name": spec.model_name,
        "model_manifest_hash": manifest.manifest_hash,
        "params": params,
        "spec": asdict(spec),
        "source_file": _relative(path),
    }


def template_from_version(version: PromptVersion) -> TemplateSpec:
    """The TemplateSpec stored with a version row."""
    return template_from_dict(version.spec)
