"""An image safety classifier named by a template: a tiny random ViT classifier pinned by
manifest, scoring each image of a real run; flagged images go to review marked, their score
signed in the file and kept on the asset, and none is published without a person's approval."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from django.test import Client
from PIL import Image

from models.adapters import adapter_manifest_load, adapter_pin
from models.errors import ManifestError
from models.registry import MANIFESTS_DIR
from models.safety import safety_classifier_load
from pipeline.config import config_from_settings
from pipeline.errors import PipelineError
from pipeline.preflight import version_preflight
from pipeline.run import campaign_run
from prompt_library.errors import LibraryFileError
from prompt_library.selectors import campaign_plan_get, prompt_version_get
from prompt_library.services import library_load
from provenance.credentials import c2pa_read, reader_context
from review.errors import PublishRefusedError
from review.models import Asset, AuditEvent, ReviewDecision
from review.services import asset_approve, asset_publish
from review.services.decisions import assets_decide_bulk
from review.states import AssetState
from tests.factories import library_empty, make_user
from tests.fixture_types import SettingsWrapper
from tests.pipeline.tiny_guards import tiny_classifier_save

TEMPLATE = """name: catalog-guarded
description: A product shot scored by a safety classifier.
prompt: "a {colour} mug on a table"
variables: [colour]
safety: {name: tiny-unsafe, threshold: 0.5}
model: embedded
params: {steps: 4}
output: {width: 384, height: 384, format: png}  # at 256 px a busy picture cannot carry every mark id
"""


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The embedded model and three pinned classifiers: one that scores every image
    near 1 (unsafe), one near 0 (safe), one left to its random weights."""
    root = tmp_path_factory.mktemp("safety-models")
    # The shipped embedded model (its images carry the watermark), its manifest beside the classifiers.
    embedded = (MANIFESTS_DIR / "embedded.yaml").read_text()
    (root / "embedded.yaml").write_text(
        embedded.replace("folder: ../embedded", f"folder: {MANIFESTS_DIR.parent / 'embedded'}")
    )
    for name, bias in (("tiny-unsafe", 8.0), ("tiny-safe", -8.0), ("tiny-random", 0.0)):
        adapter_pin(
            name,
            tiny_classifier_save(root / "weights" / name, unsafe_bias=bias),
            family="image-classification",
            license_name="apache-2.0",
            kind="safety",
            weight_name="model.safetensors",
            manifests_dir=root,
        )
    return root


@pytest.fixture
def guarded_library(greenlight_settings: SettingsWrapper, models_dir: Path, library_dir: Path) -> Path:
    greenlight_settings.GREENLIGHT_MODELS_DIR = models_dir
    library_empty(library_dir)
    (library_dir / "templates" / "catalog-guarded").mkdir()
    (library_dir / "templates" / "catalog-guarded" / "v1.yaml").write_text(TEMPLATE)
    (library_dir / "campaigns" / "guarded.yaml").write_text(
        "name: guarded\ntemplate: catalog-guarded\ntemplate_version: 1\nvariables: {colour: [red, blue]}\nseeds: [3]\n"
    )
    return library_dir


def test_the_classifier_scores_each_image_by_its_pixels(models_dir: Path) -> None:
    classifier = safety_classifier_load("tiny-random", manifests_dir=models_dir)
    red, noise = Image.new("RGB", (256, 256), "red"), Image.effect_noise((256, 256), 60).convert("RGB")
    scores = classifier.scores([red, noise])
    assert all(0 < s < 1 for s in scores) and scores[0] != scores[1]
    assert classifier.scores([noise]) == scores[1:]  # alone or in a batch
    assert safety_classifier_load("tiny-unsafe", manifests_dir=models_dir).scores([red])[0] > 0.99
    assert safety_classifier_load("tiny-safe", manifests_dir=models_dir).scores([red])[0] < 0.01


def test_a_changed_classifier_file_is_refused(models_dir: Path, tmp_path: Path) -> None:
    shutil.copytree(models_dir / "weights" / "tiny-random", tmp_path / "weights" / "moved")
    adapter_pin(
        "moved",
        tmp_path / "weights" / "moved",
        family="image-classification",
        license_name="apache-2.0",
        kind="safety",
        weight_name="model.safetensors",
        manifests_dir=tmp_path,
    )
    pinned = adapter_manifest_load("moved", manifests_dir=tmp_path).manifest_hash
    with pytest.raises(ManifestError, match="the template version was loaded with"):
        safety_classifier_load("moved", manifests_dir=tmp_path, pinned="0" * 64)
    weights = tmp_path / "weights" / "moved" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-8] + b"\0" * 8)
    with pytest.raises(Exception, match=r"model\.safetensors"):
        safety_classifier_load("moved", manifests_dir=tmp_path, pinned=pinned)


@pytest.mark.django_db
def test_a_flagged_image_goes_to_review_marked_and_is_published_only_after_a_person_approves_it(
    guarded_library: Path, greenlight_settings: SettingsWrapper, models_dir: Path
) -> None:
    library_load()
    variant = campaign_plan_get(name="guarded").variants[0]
    pinned = adapter_manifest_load("tiny-unsafe", manifests_dir=models_dir).manifest_hash
    assert variant.params.safety == ("tiny-unsafe", pinned, 0.5)
    config = config_from_settings()
    summary = campaign_run(campaign="guarded", batch_size=2, config=config)
    assert (summary.generated, summary.failed) == (2, 0)
    assets = list(Asset.objects.order_by("id"))
    assert {a.state for a in assets} == {AssetState.IN_REVIEW}
    assert all(a.safety_flagged and a.safety_score is not None and a.safety_score > 0.99 for a in assets)
    with reader_context(config.signing) as context:
        for asset in assets:
            report = c2pa_read((config.storage_root / asset.file_path).read_bytes(), mime="image/png", context=context)
            assert report.state == "trusted", report.validation_codes
            signed = (report.assertion("org.greenlight.generation") or {})["safety"]
            assert signed == asset.generation_record["safety"]
            assert signed["score"] == asset.safety_score and signed["flagged"] is True
            assert (signed["name"], signed["manifest_hash"], signed["threshold"]) == ("tiny-unsafe", pinned, 0.5)
    submitted = AuditEvent.objects.get(asset=assets[0], to_state=AssetState.IN_REVIEW)
    assert submitted.detail["safety_flagged"] is True

    # Not approved, not published; a bulk approval passes it by, naming why.
    publisher = make_user(username="paula", roles=("publisher",))
    with pytest.raises(PublishRefusedError):
        asset_publish(asset=assets[0], user=publisher)
    reviewer = make_user(username="rita", roles=("reviewer",))
    bulk = assets_decide_bulk(serials=[a.pk for a in assets], reviewer=reviewer, decision="approve")
    assert bulk.decided == [] and [s for s, _ in bulk.refused] == [a.pk for a in assets]
    assert "flagged unsafe by the safety classifier" in bulk.refused[0][1]
    assert set(Asset.objects.values_list("state", flat=True)) == {AssetState.IN_REVIEW}
    # A person rejects one as unsafe (flagged) and approves the other on its own page.
    client = Client()
    client.force_login(reviewer)
    page = client.get(f"/assets/{assets[0].pk}/")
    assert page.status_code == 200
    text = page.content.decode()
    assert 'id="safety-flagged"' in text and f"{assets[0].safety_score:.3f}" in text
    assert 'value="unsafe_flagged"' in text
    response = client.post(f"/assets/{assets[0].pk}/reject", {"reason": "unsafe_flagged", "comment": ""})
    assert response.status_code in (200, 302)
    decision = ReviewDecision.objects.get(asset=assets[0])
    assert decision.reason == ReviewDecision.Reason.UNSAFE_FLAGGED
    approved = asset_approve(asset=assets[1], reviewer=reviewer)
    assert approved.state == AssetState.APPROVED
    assert asset_publish(asset=approved, user=publisher)


@pytest.mark.django_db
def test_the_queue_shows_scores_and_filters_flagged_assets(
    guarded_library: Path, greenlight_settings: SettingsWrapper
) -> None:
    folder = guarded_library / "templates" / "catalog-guarded"
    (folder / "v2.yaml").write_text(TEMPLATE.replace("tiny-unsafe", "tiny-safe"))
    (guarded_library / "campaigns" / "calm.yaml").write_text(
        "name: calm\ntemplate: catalog-guarded\ntemplate_version: 2\nvariables: {colour: [green]}\nseeds: [3]\n"
    )
    library_load()
    config = config_from_settings()
    campaign_run(campaign="guarded", batch_size=2, config=config)
    campaign_run(campaign="calm", batch_size=2, config=config)
    calm = Asset.objects.get(campaign__name="calm")
    assert not calm.safety_flagged and calm.safety_score is not None and calm.safety_score < 0.01
    assert calm.generation_record["safety"]["flagged"] is False
    flagged = sorted(Asset.objects.filter(campaign__name="guarded").values_list("pk", flat=True))
    client = Client()
    client.force_login(make_user(username="rhea", roles=("reviewer",)))
    every = client.get("/?state=in_review").content.decode()
    assert every.count('data-serial="') == 3 and "unsafe (flagged)" in every and "safety score 0.00" in every
    only = client.get("/?state=in_review&flagged=1").content.decode()
    assert sorted(int(s) for s in _serials(only)) == flagged and 'id="flagged-filter"' in only


def _serials(html: str) -> list[str]:
    return [part.split('"', 1)[0] for part in html.split('data-serial="')[1:]]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("threshold: 0.5", "treshold: 0.5"), r"unknown key 'safety.treshold'"),
        (("threshold: 0.5", "threshold: 1.5"), r"field 'safety.threshold' must be a number above 0 and at most 1"),
        (("tiny-unsafe", "nobody"), r"field 'safety.name' is 'nobody'"),
        (("safety: {name: tiny-unsafe, threshold: 0.5}", "safety: tiny-unsafe"), r"field 'safety' must be a mapping"),
    ],
)
def test_a_bad_safety_key_is_refused_at_load(guarded_library: Path, change: tuple[str, str], message: str) -> None:
    (guarded_library / "templates" / "catalog-guarded" / "v1.yaml").write_text(TEMPLATE.replace(*change))
    with pytest.raises(LibraryFileError, match=message):
        library_load()


@pytest.mark.django_db
def test_a_classifier_changed_since_its_version_was_loaded_stops_the_run_before_any_image(
    guarded_library: Path, greenlight_settings: SettingsWrapper, models_dir: Path, tmp_path: Path
) -> None:
    copied = tmp_path / "models"
    shutil.copytree(models_dir, copied)
    greenlight_settings.GREENLIGHT_MODELS_DIR = copied
    library_load()
    weights = copied / "weights" / "tiny-unsafe" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-8] + b"\0" * 8)
    with pytest.raises(PipelineError, match=r"template 'catalog-guarded' v1: .*model\.safetensors"):
        version_preflight(prompt_version_get(template="catalog-guarded", number=1), config_from_settings())
    assert not Asset.objects.exists()
