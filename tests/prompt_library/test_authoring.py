from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import pytest
import yaml
from django.contrib.auth.models import User

from prompt_library.authoring import (
    prompt_part_create,
    prompt_version_create,
    prompt_version_diff,
    prompt_version_export,
)
from prompt_library.errors import LibraryFileError, VersionChangedError
from prompt_library.models import PromptVersion
from prompt_library.parsing import template_parse
from prompt_library.services import library_load
from review.audit import AuditAction
from review.models import AuditEvent
from tests.prompt_library.library_data import template_data

pytestmark = pytest.mark.django_db


@pytest.fixture
def author() -> User:
    return User.objects.create_user("author")


def _yaml(**overrides: object) -> str:
    return yaml.safe_dump(template_data(**overrides), sort_keys=False)


def test_a_new_template_starts_at_v1_with_who_made_it_recorded_and_audited(author: User) -> None:
    version = prompt_version_create(template="hero", text=_yaml(), fmt="yaml", created_by=author)
    assert (version.template.name, version.number, version.created_by, version.source_file) == ("hero", 1, author, "")
    assert version.params["steps"] > 0 and len(version.model_manifest_hash) == 64
    event = AuditEvent.objects.get(action=AuditAction.PROMPT_VERSION_CREATED)
    assert event.actor == author
    assert event.detail["template"] == "hero" and event.detail["number"] == 1
    assert event.detail["content_hash"] == version.content_hash


def test_identical_content_returns_the_existing_version_and_a_change_is_the_next_number(author: User) -> None:
    first = prompt_version_create(template="hero", text=_yaml(), fmt="yaml", created_by=author)
    again = prompt_version_create(template="hero", text=json.dumps(template_data()), fmt="json", created_by=author)
    assert again.pk == first.pk
    changed = prompt_version_create(
        template="hero", text=_yaml(prompt="a {product} in {scene}"), fmt="yaml", created_by=author
    )
    assert changed.number == 2
    # Back to the first content: still v1, nothing new.
    assert prompt_version_create(template="hero", text=_yaml(), fmt="yaml", created_by=author).pk == first.pk
    assert PromptVersion.objects.filter(template__name="hero").count() == 2
    assert AuditEvent.objects.filter(action=AuditAction.PROMPT_VERSION_CREATED).count() == 2


@pytest.mark.parametrize(
    ("text", "fmt", "needle"),
    [
        ("", "yaml", "field 'text' is empty"),
        ("name: [", "yaml", "field 'text' is not valid YAML"),
        ("{", "json", "field 'text' is not valid JSON"),
        ("name: hero", "toml", "field 'fmt' must be 'yaml' or 'json' (got 'toml')"),
        (_yaml(prompt=""), "yaml", "field 'prompt' is empty"),
        (_yaml(prompt="a {colour}"), "yaml", "unknown variable(s) 'colour'"),
        (_yaml(params={"steps": 0}), "yaml", "field 'params.steps' must be an integer from 1 to 500 (got 0)"),
        (_yaml(params={"sharpness": 2}), "yaml", "sharpness"),
        (_yaml(name="other"), "yaml", "field 'name' is 'other' but the template is 'hero'"),
        (_yaml(model="no-such-model"), "yaml", "field 'model' is 'no-such-model'"),
        (_yaml(description=["a", "b"]), "yaml", "field 'description' must be text (got ['a', 'b'])"),
        (_yaml(style="house"), "yaml", "field 'style' names style part 'house', which does not exist"),
        ("x" * 70_000, "yaml", "field 'text' has 70000 characters"),
    ],
)
def test_every_refusal_names_the_field_and_value_and_writes_nothing(
    author: User, text: str, fmt: str, needle: str
) -> None:
    with pytest.raises(LibraryFileError) as caught:
        prompt_version_create(template="hero", text=text, fmt=fmt, created_by=author)
    assert needle in str(caught.value)
    assert not PromptVersion.objects.exists()
    assert not AuditEvent.objects.filter(action=AuditAction.PROMPT_VERSION_CREATED).exists()


def test_a_template_name_that_is_not_a_slug_is_refused(author: User) -> None:
    with pytest.raises(LibraryFileError, match="field 'template' must be a lowercase slug"):
        prompt_version_create(template="../etc", text=_yaml(), fmt="yaml", created_by=author)


def test_an_exported_version_loads_back_from_the_files_with_the_same_content(author: User, library_dir: Path) -> None:
    library_load()
    base = PromptVersion.objects.get(template__name="catalog-hero", number=1)
    data = yaml.safe_load(prompt_version_export(version=base))
    data["prompt"] = "a {product} on {scene}, {style}, soft light"
    data["alt_text"] = "Photo of a {product}"
    made = prompt_version_create(template="catalog-hero", text=yaml.safe_dump(data), fmt="yaml", created_by=author)
    assert made.number == 2
    exported = prompt_version_export(version=made)
    assert template_parse(yaml.safe_load(exported), path=Path("x"), number=2).content_hash == made.content_hash
    # Written where the library keeps it, `library_load` finds the very same version.
    (library_dir / "templates" / "catalog-hero" / "v2.yaml").write_text(exported, encoding="utf-8")
    report = library_load()
    assert "catalog-hero v2" in report.versions_unchanged
    # The files and the database never disagree: a different v2 file is refused.
    (library_dir / "templates" / "catalog-hero" / "v2.yaml").write_text(
        exported.replace("soft", "hard"), encoding="utf-8"
    )
    with pytest.raises(VersionChangedError):
        library_load()


def test_the_exported_shipped_versions_match_their_files(library_dir: Path) -> None:
    library_load()
    for version in PromptVersion.objects.select_related("template"):
        data = yaml.safe_load(prompt_version_export(version=version))
        assert template_parse(data, path=Path("x"), number=version.number).content_hash == version.content_hash


def test_the_diff_names_the_changed_fields_and_marks_the_words(author: User) -> None:
    old = prompt_version_create(template="hero", text=_yaml(), fmt="yaml", created_by=author)
    new = prompt_version_create(
        template="hero",
        text=_yaml(
            prompt="a {product} in {scene}",
            negative_prompt="blurry",
            params={"steps": 9},
            output={
                "width": 256,
                "height": 512,
                "renditions": [{"name": "web", "format": "jpeg", "width": 1024, "height": 1024}],
            },
        ),
        fmt="yaml",
        created_by=author,
    )
    diff = prompt_version_diff(old=old, new=new)
    # A narrower output draws at the model's area in the new aspect: the resolved size changes too.
    assert set(diff.changed_fields) == {"prompt", "params.steps", "params.width", "params.height", "output.width"}
    steps = next(f for f in diff.fields if f.field == "params.steps")
    assert steps.new == 9 and steps.old == old.params["steps"]
    prompt = diff.texts[0]
    assert prompt.old == (("same", "a {product}"), ("removed", " on"), ("same", " {scene}"))
    assert prompt.new == (("same", "a {product}"), ("added", " in"), ("same", " {scene}"))
    # Joined, each side is its text exactly.
    assert "".join(t for _, t in prompt.new) == "a {product} in {scene}"
    assert prompt_version_diff(old=old, new=old).changes == ()


def test_styles_and_negative_presets_are_versioned_and_included_by_name(author: User) -> None:
    house = prompt_part_create(kind="style", name="house", text="studio light, pastel", created_by=author)
    assert prompt_part_create(kind="style", name="house", text="studio light, pastel", created_by=author).pk == house.pk
    brand = prompt_part_create(kind="negative", name="brand", text="logos, text", created_by=author)
    version = prompt_version_create(
        template="hero", text=_yaml(style="house", negative_preset="brand"), fmt="yaml", created_by=author
    )
    assert version.prompt == "a {product} on {scene}, studio light, pastel"
    assert version.negative_prompt == "blurry, logos, text"
    assert version.parts == {"style": ["house", 1], "negative_preset": ["brand", 1]}
    assert brand.number == 1
    # A new style version does not change the published template version; pinning the old one
    # gives the same content back.
    house2 = prompt_part_create(kind="style", name="house", text="daylight", created_by=author)
    assert house2.number == 2
    assert (
        prompt_version_create(
            template="hero", text=_yaml(style="house@1", negative_preset="brand"), fmt="yaml", created_by=author
        ).pk
        == version.pk
    )
    newer = prompt_version_create(
        template="hero", text=_yaml(style="house", negative_preset="brand"), fmt="yaml", created_by=author
    )
    assert (newer.number, newer.prompt) == (2, "a {product} on {scene}, daylight")
    assert AuditEvent.objects.filter(action=AuditAction.PROMPT_PART_CREATED).count() == 3


@pytest.mark.parametrize(
    ("kind", "name", "text", "needle"),
    [
        ("mood", "x", "y", "field 'kind' must be 'style' or 'negative' (got 'mood')"),
        ("style", "Bad Name", "y", "field 'name' must be a lowercase slug"),
        ("style", "x", "  ", "field 'text' needs 1 to 2000 characters"),
    ],
)
def test_a_part_refusal_names_the_field(author: User, kind: str, name: str, text: str, needle: str) -> None:
    with pytest.raises(LibraryFileError) as caught:
        prompt_part_create(kind=kind, name=name, text=text, created_by=author)
    assert needle in str(caught.value)


def test_an_export_keeps_adapters_structure_control_safety_and_embeddings() -> None:
    sha = "ab" * 32
    data = template_data(
        source_image=sha,
        controlnet={"name": "sd15-canny", "conditioning": "canny", "scale": 0.8},
        lora=[{"name": "brand-red", "scale": 0.7}],
        embeddings=[{"name": "brand-style", "token": "<brand-style>"}],
        safety={"name": "nsfw-check", "threshold": 0.5},
    )
    spec = template_parse(data, path=Path("x"), number=3)
    version = PromptVersion(number=3, spec=asdict(spec), content_hash=spec.content_hash)
    exported = yaml.safe_load(prompt_version_export(version=version))
    assert exported["controlnet"] == {"name": "sd15-canny", "conditioning": "canny", "scale": 0.8}
    assert exported["lora"] == [{"name": "brand-red", "scale": 0.7}]
    assert exported["embeddings"] == [{"name": "brand-style", "token": "<brand-style>"}]
    assert exported["safety"] == {"name": "nsfw-check", "threshold": 0.5}
    assert exported["source_image"] == sha
    assert template_parse(exported, path=Path("x"), number=3).content_hash == spec.content_hash
