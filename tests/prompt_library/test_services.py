from __future__ import annotations

from pathlib import Path

import pytest

from prompt_library.errors import (
    CampaignNotFoundError,
    LibraryFileError,
    TemplateVersionNotFoundError,
    UnknownVariableError,
    VersionChangedError,
)
from prompt_library.models import Campaign, PromptVersion
from prompt_library.selectors import campaign_plan_get
from prompt_library.services import library_load

pytestmark = pytest.mark.django_db


def test_shipped_library_loads_and_the_campaigns_expand(library_dir: Path) -> None:
    report = library_load()
    assert report.versions_created == [
        "catalog-clip v1",
        "catalog-clip v2",
        "catalog-hero v1",
        "catalog-placement v1",
        "catalog-scene v1",
    ]
    assert report.campaigns_saved == ["demo-catalog", "demo-clips", "demo-placement", "demo-spring"]
    version = PromptVersion.objects.get(template__name="catalog-hero", number=1)
    assert len(version.model_manifest_hash) == 64
    assert version.params["steps"] == 4
    plan = campaign_plan_get(name="demo-spring")
    assert len(plan.variants) == 12
    assert all(v.model_manifest_hash == version.model_manifest_hash for v in plan.variants)
    # The demo's campaign: the shipped embedded model, prompts in its own words.
    demo = campaign_plan_get(name="demo-catalog")
    assert len(demo.variants) == 36
    assert {v.model_name for v in demo.variants} == {"embedded"}
    assert demo.variants[0].prompt == "a red mug on a wooden table"
    assert demo.variants[0].alt_text == "Catalog photo: a red mug on a wooden table"
    # The demo's clips: two-second MP4s of the same model, drawn as keyframes, 512 px a side (v2) so
    # that a copy shared at half the size still carries the watermark.
    clips = campaign_plan_get(name="demo-clips")
    assert [v.prompt for v in clips.variants] == ["a red mug on a wooden table", "a blue mug on a wooden table"]
    output = clips.variants[0].output
    assert (output.format, output.width, output.height, output.fps, output.seconds, output.keyframes) == (
        "mp4",
        512,
        512,
        12,
        2.0,
        3,
    )
    assert [(r.name, r.format) for r in output.renditions] == [("web", "mp4"), ("poster", "jpeg")]


def test_loading_twice_creates_nothing_new(library_dir: Path) -> None:
    library_load()
    report = library_load()
    assert report.versions_created == []
    assert report.versions_unchanged == [
        "catalog-clip v1",
        "catalog-clip v2",
        "catalog-hero v1",
        "catalog-placement v1",
        "catalog-scene v1",
    ]
    assert PromptVersion.objects.count() == 5
    assert Campaign.objects.count() == 4


def test_editing_a_published_version_in_place_is_refused(library_dir: Path) -> None:
    library_load()
    path = library_dir / "templates" / "catalog-hero" / "v1.yaml"
    path.write_text(path.read_text().replace("a {product} on {scene}", "a {product} in {scene}"))
    with pytest.raises(VersionChangedError, match=r"v1\.yaml.*add a new version file"):
        library_load()


def test_a_new_version_file_adds_a_version(library_dir: Path) -> None:
    library_load()
    folder = library_dir / "templates" / "catalog-hero"
    (folder / "v2.yaml").write_text((folder / "v1.yaml").read_text().replace("product photo", "studio shot"))
    assert library_load().versions_created == ["catalog-hero v2"]


def test_template_with_unknown_variable_fails_and_writes_nothing(library_dir: Path) -> None:
    path = library_dir / "templates" / "catalog-hero" / "v1.yaml"
    path.write_text(path.read_text().replace("{style}", "{mood}"))
    with pytest.raises(UnknownVariableError) as err:
        library_load()
    assert "v1.yaml" in str(err.value) and "'mood'" in str(err.value)
    assert PromptVersion.objects.count() == 0


def test_campaign_naming_a_missing_template_version_fails_naming_the_file(library_dir: Path) -> None:
    path = library_dir / "campaigns" / "demo-spring.yaml"
    path.write_text(path.read_text().replace("template_version: 1", "template_version: 7"))
    with pytest.raises(TemplateVersionNotFoundError) as err:
        library_load()
    assert "demo-spring.yaml" in str(err.value)
    assert "v7 does not exist (known: v1)" in str(err.value)
    # One transaction: the template version that was valid is not left behind either.
    assert PromptVersion.objects.count() == 0


def test_unknown_campaign_lists_the_loaded_ones(library_dir: Path) -> None:
    library_load()
    with pytest.raises(CampaignNotFoundError, match="loaded: demo-catalog, demo-clips, demo-placement, demo-spring"):
        campaign_plan_get(name="nope")


def test_a_sampler_that_does_not_suit_the_models_schedule_is_refused_naming_the_file(library_dir: Path) -> None:
    path = library_dir / "templates" / "catalog-scene" / "v1.yaml"
    path.write_text(path.read_text().replace("  guidance: 7.0\n", "  guidance: 7.0\n  scheduler: dpm++-karras\n"))
    with pytest.raises(LibraryFileError) as err:
        library_load()
    message = str(err.value)
    assert "v1.yaml" in message and "field 'params.scheduler' is 'dpm++-karras'" in message
    assert "zero-terminal-SNR schedule" in message and "model 'embedded'" in message
    assert "choose one of (empty: the model's own), dpm++, euler" in message
    assert PromptVersion.objects.count() == 0
