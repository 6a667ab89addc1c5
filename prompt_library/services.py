"""Services that write the prompt library: loading template and campaign files into the database.

Library layout (under GREENLIGHT_LIBRARY_DIR):
    templates/<template-name>/v<N>.yaml    one immutable version per file
    campaigns/<campaign-name>.yaml         a campaign naming a template version
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml
from django.conf import settings
from django.db import transaction

from models import manifest_load, scheduler_refusal
from prompt_library.errors import LibraryFileError, TemplateVersionNotFoundError, VersionChangedError
from prompt_library.expansion import campaign_check, params_resolve
from prompt_library.models import Campaign, PromptTemplate, PromptVersion
from prompt_library.parsing import campaign_parse, template_from_dict, template_parse
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
            templates.append((path, spec))
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
        Campaign.objects.update_or_create(
            name=campaign.name,
            defaults={
                "title": campaign.title,
                "kind": campaign.kind,
                "prompt_version": version,
                "variables": {k: list(v) for k, v in campaign.variables},
                "seeds": list(campaign.seeds),
                "deadline": campaign.deadline,
                "approvals_required": campaign.approvals_required,
                "on_reject": campaign.on_reject,
                "source_file": _relative(path),
            },
        )
        report.campaigns_saved.append(campaign.name)
    return report


def _version_fields(path: Path, spec: TemplateSpec) -> dict[str, object]:
    """A version's row: the authored spec plus the model pin and parameters resolved now."""
    manifest = manifest_load(spec.model_name, manifests_dir=Path(settings.GREENLIGHT_MODELS_DIR))
    if spec.model_manifest_hash and spec.model_manifest_hash != manifest.manifest_hash:
        raise LibraryFileError(
            path,
            f"field 'model.manifest_hash' pins {spec.model_manifest_hash[:12]}… but model "
            f"'{manifest.name}' has manifest hash {manifest.manifest_hash[:12]}…",
        )
    params = asdict(params_resolve(spec, **asdict(manifest.defaults), size_multiple=manifest.size_multiple))
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
