"""Authoring template versions outside the library's files: from YAML or JSON text (a browser form,
the API), diffs of two versions, export of a version back to its YAML file, and the reusable
styles and negative presets a template includes by name.

A version made here passes the very checks a file passes in `library_load` (`template_parse`,
then the model pin and parameters of `services`), and versions stay immutable: text whose content
equals an existing version of the template returns that version, any change becomes the next
number. Who made each version is recorded on it, and `prompt_version_created` is sent inside the
same transaction so the review room writes the audit event with it.

A template includes parts with the optional keys ``style: <name>`` and ``negative_preset: <name>``
(``<name>@<N>`` pins a part's version; the newest otherwise). The part's text is appended to the
prompt (or negative prompt) when the version is made, so a version holds its resolved text (it is
what its content hash covers and what its exported file says) and a later part version never
changes a published template version; which part versions it included is kept in ``parts``.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

import yaml
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, User
from django.db import transaction
from django.dispatch import Signal

from models.errors import ModelError
from prompt_library.errors import LibraryFileError
from prompt_library.models import PromptPart, PromptTemplate, PromptVersion
from prompt_library.parsing import template_from_dict, template_parse
from prompt_library.services import _version_fields
from prompt_library.specs import TEXT_TO_IMAGE, TemplateSpec

TEXT_MAX = 64 * 1024  # characters of pasted YAML or JSON
PART_MAX = 2000  # characters in one style or negative preset
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,99}$")
PART_REF = re.compile(r"^(?P<name>[a-z0-9][a-z0-9-]{0,99})(?:@(?P<number>[1-9][0-9]{0,5}))?$")
PART_KEYS = {"style": PromptPart.Kind.STYLE, "negative_preset": PromptPart.Kind.NEGATIVE}

Fmt = Literal["yaml", "json"]
Actor = AbstractBaseUser | AnonymousUser | None

# Sent inside the creating transaction: (sender=PromptVersion, version=..., actor=...) and
# (sender=PromptPart, part=..., actor=...). The review room records the audit event.
prompt_version_created = Signal()
prompt_part_created = Signal()


def _user(actor: Actor) -> User | None:
    return actor if isinstance(actor, User) else None


def text_parse(text: str, *, fmt: str, where: str) -> object:
    """Pasted YAML or JSON text as data; a refusal names the field and the problem."""
    if fmt not in ("yaml", "json"):
        raise LibraryFileError(where, f"field 'fmt' must be 'yaml' or 'json' (got {fmt!r})")
    if not isinstance(text, str) or not text.strip():
        raise LibraryFileError(where, "field 'text' is empty")
    if len(text) > TEXT_MAX:
        raise LibraryFileError(where, f"field 'text' has {len(text)} characters; at most {TEXT_MAX}")
    try:
        return json.loads(text) if fmt == "json" else yaml.safe_load(text)
    except json.JSONDecodeError as exc:
        raise LibraryFileError(where, f"field 'text' is not valid JSON: {exc}") from exc
    except yaml.YAMLError as exc:
        raise LibraryFileError(where, f"field 'text' is not valid YAML: {exc}") from exc


def _part_resolve(kind: str, ref: object, *, field: str, where: str) -> PromptPart:
    match = PART_REF.match(ref) if isinstance(ref, str) else None
    if match is None:
        raise LibraryFileError(where, f"field '{field}' must name a {kind} part as <name> or <name>@<N> (got {ref!r})")
    parts = PromptPart.objects.filter(kind=kind, name=match["name"])
    part = parts.filter(number=int(match["number"])).first() if match["number"] else parts.order_by("-number").first()
    if part is None:
        known = sorted({f"{p.name}@{p.number}" for p in PromptPart.objects.filter(kind=kind)})
        raise LibraryFileError(
            where,
            f"field '{field}' names {kind} part {ref!r}, which does not exist (known: {', '.join(known) or 'none'})",
        )
    return part


def parts_resolve(data: object, *, where: str) -> tuple[object, dict[str, list[object]]]:
    """The template data with its included parts appended to the prompt and negative prompt, and
    the part versions it included, as stored in `PromptVersion.parts`."""
    if not isinstance(data, Mapping) or not any(key in data for key in PART_KEYS):
        return data, {}
    resolved = dict(data)
    pins: dict[str, list[object]] = {}
    for key, kind in PART_KEYS.items():
        if key not in resolved:
            continue
        part = _part_resolve(kind, resolved.pop(key), field=key, where=where)
        target = "prompt" if kind == PromptPart.Kind.STYLE else "negative_prompt"
        base = resolved.get(target, "") or ""
        if not isinstance(base, str):
            raise LibraryFileError(where, f"field '{target}' must be text (got {base!r})")
        resolved[target] = f"{base.rstrip().rstrip(',')}, {part.text}" if base.strip() else part.text
        pins[key] = [part.name, part.number]
    return resolved, pins


def spec_check(data: object, *, template: str, number: int, where: str) -> TemplateSpec:
    """`template_parse`'s checks, and the template name the text gives must be `template`."""
    if isinstance(data, Mapping) and not isinstance(data.get("description", ""), str):
        raise LibraryFileError(where, f"field 'description' must be text (got {data.get('description')!r})")
    spec = template_parse(data, path=Path(where), number=number)
    if spec.name != template:
        raise LibraryFileError(where, f"field 'name' is {spec.name!r} but the template is {template!r}")
    return spec


def prompt_version_create(*, template: str, text: str, fmt: Fmt | str, created_by: Actor) -> PromptVersion:
    """A template version from YAML or JSON text, checked as `library_load` checks a file.

    Identical content returns the existing version; anything else becomes the next number (a
    new template starts at 1). Raises LibraryFileError naming the field and value.
    """
    if not isinstance(template, str) or not NAME_RE.match(template):
        raise LibraryFileError(
            "new version", f"field 'template' must be a lowercase slug of letters, digits and '-' (got {template!r})"
        )
    where = f"template '{template}'"
    data, pins = parts_resolve(text_parse(text, fmt=fmt, where=where), where=where)
    with transaction.atomic():
        row, _ = PromptTemplate.objects.get_or_create(name=template)
        row = PromptTemplate.objects.select_for_update().get(pk=row.pk)  # one new number at a time
        existing = list(PromptVersion.objects.filter(template=row).order_by("number"))
        number = (existing[-1].number if existing else 0) + 1
        spec = spec_check(data, template=template, number=number, where=f"{where} v{number}")
        for version in existing:
            if replace(spec, number=version.number).content_hash == version.content_hash:
                return version
        try:
            fields = _version_fields(Path(f"{where} v{number}"), spec)
        except ModelError as exc:
            raise LibraryFileError(f"{where} v{number}", f"field 'model' is {spec.model_name!r}: {exc}") from exc
        fields["source_file"] = ""
        if not row.description and spec.description:
            row.description = spec.description
            row.save(update_fields=["description"])
        version = PromptVersion.objects.create(**fields, template=row, created_by=_user(created_by), parts=pins)
        prompt_version_created.send(sender=PromptVersion, version=version, actor=_user(created_by))
    return version


def prompt_part_create(*, kind: str, name: str, text: str, created_by: Actor) -> PromptPart:
    """A style or negative preset version: identical text returns the newest version if it says
    the same, else the next number."""
    where = f"{kind} part {name!r}"
    if kind not in PromptPart.Kind.values:
        raise LibraryFileError("new part", f"field 'kind' must be 'style' or 'negative' (got {kind!r})")
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise LibraryFileError(
            where, f"field 'name' must be a lowercase slug of letters, digits and '-' (got {name!r})"
        )
    if not isinstance(text, str) or not text.strip() or len(text) > PART_MAX:
        raise LibraryFileError(where, f"field 'text' needs 1 to {PART_MAX} characters (got {str(text)[:60]!r})")
    text = text.strip()
    with transaction.atomic():
        newest = PromptPart.objects.select_for_update().filter(kind=kind, name=name).order_by("-number").first()
        if newest is not None and newest.text == text:
            return newest
        part = PromptPart.objects.create(
            kind=kind, name=name, text=text, number=(newest.number if newest else 0) + 1, created_by=_user(created_by)
        )
        prompt_part_created.send(sender=PromptPart, part=part, actor=_user(created_by))
    return part


def prompt_version_export(*, version: PromptVersion) -> str:
    """The version as its library file `templates/<name>/v<N>.yaml`: loading it back gives the
    same content hash (the file `library_load` expects for a version made outside the files)."""
    spec = template_from_dict(version.spec)
    data: dict[str, Any] = {"name": spec.name, "description": spec.description, "prompt": spec.prompt}
    data["negative_prompt"] = spec.negative_prompt
    if spec.alt_text:
        data["alt_text"] = spec.alt_text
    data["variables"] = list(spec.variables)
    data["model"] = (
        {"name": spec.model_name, "manifest_hash": spec.model_manifest_hash}
        if spec.model_manifest_hash
        else spec.model_name
    )
    if spec.params:
        data["params"] = dict(spec.params)
    if spec.mode != TEXT_TO_IMAGE:  # the source photo and mask by sha256: the stored source images
        data["mode"] = spec.mode
        if spec.strength is not None:
            data["strength"] = spec.strength
    if spec.source_image:  # also a text-to-image template's ControlNet source
        data["source_image"] = spec.source_image
    if spec.mask:
        data["mask"] = spec.mask
    if spec.controlnet:
        name, conditioning, scale = spec.controlnet
        data["controlnet"] = {"name": name, "conditioning": conditioning, "scale": scale}
    if spec.lora:
        data["lora"] = [{"name": name, "scale": scale} for name, scale in spec.lora]
    if spec.embeddings:
        data["embeddings"] = [{"name": name, "token": token} for name, token in spec.embeddings]
    if spec.safety:
        data["safety"] = {"name": spec.safety[0], "threshold": spec.safety[1]}
    output = spec.output.identity()
    output["renditions"] = [dict(r) for r in output["renditions"]]
    if not output["renditions"]:
        del output["renditions"]
    data["output"] = output
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, default_flow_style=False, width=10_000)


@dataclass(frozen=True)
class FieldChange:
    """One field of two versions: dotted name, both values (None when absent), and whether it changed."""

    field: str
    old: object
    new: object

    @property
    def changed(self) -> bool:
        return self.old != self.new


@dataclass(frozen=True)
class WordDiff:
    """A text field word by word: each side a list of (kind, text), kind "same", "removed" or "added"."""

    field: str
    old: tuple[tuple[str, str], ...]
    new: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class VersionDiff:
    """What differs between two versions: every compared field, and the texts word by word."""

    old: PromptVersion
    new: PromptVersion
    fields: tuple[FieldChange, ...]
    texts: tuple[WordDiff, ...]

    @property
    def changes(self) -> tuple[FieldChange, ...]:
        return tuple(f for f in self.fields if f.changed)

    @property
    def changed_fields(self) -> tuple[str, ...]:
        return tuple(f.field for f in self.changes)


def _flatten(prefix: str, value: object, into: dict[str, object]) -> None:
    if isinstance(value, Mapping):
        for key in value:
            _flatten(f"{prefix}.{key}", value[key], into)
    elif isinstance(value, list | tuple) and value and all(isinstance(v, Mapping) for v in value):
        for item in value:
            name = item.get("name", "?") if isinstance(item, Mapping) else "?"
            _flatten(f"{prefix}[{name}]", item, into)
    else:
        into[prefix] = list(value) if isinstance(value, tuple) else value


def _comparable(version: PromptVersion) -> dict[str, object]:
    spec = template_from_dict(version.spec)
    values: dict[str, object] = {
        "description": spec.description,
        "prompt": spec.prompt,
        "negative_prompt": spec.negative_prompt,
        "alt_text": spec.alt_text,
        "variables": list(spec.variables),
        "model.name": version.model_name,
        "model.manifest_hash": version.model_manifest_hash,
    }
    _flatten("params", version.params, values)
    output = spec.output.identity()
    output["renditions"] = [dict(r) for r in output["renditions"]]
    _flatten("output", output, values)
    return values


TOKEN = re.compile(r"\s*(?:\{[^{}]*\}|\w+|[^\w\s])|\s+$")  # a word, placeholder or mark, with its leading space


def _words(field: str, old: str, new: str) -> WordDiff:
    a, b = TOKEN.findall(old), TOKEN.findall(new)
    left: list[tuple[str, str]] = []
    right: list[tuple[str, str]] = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        if tag == "equal":
            left.append(("same", "".join(a[i1:i2])))
            right.append(("same", "".join(b[j1:j2])))
            continue
        if i2 > i1:
            left.append(("removed", "".join(a[i1:i2])))
        if j2 > j1:
            right.append(("added", "".join(b[j1:j2])))
    return WordDiff(field=field, old=tuple(left), new=tuple(right))


def prompt_version_diff(*, old: PromptVersion, new: PromptVersion) -> VersionDiff:
    """Every field of two versions side by side: prompt, negative prompt, alt text, variables,
    model pin (name and resolved manifest hash), resolved parameters and output spec."""
    a, b = _comparable(old), _comparable(new)
    names = list(a) + [n for n in b if n not in a]
    fields = tuple(FieldChange(field=n, old=a.get(n), new=b.get(n)) for n in names)
    texts = tuple(_words(n, str(a[n]), str(b[n])) for n in ("prompt", "negative_prompt", "alt_text"))
    return VersionDiff(old=old, new=new, fields=fields, texts=texts)
