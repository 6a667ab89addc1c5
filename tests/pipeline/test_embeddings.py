"""Textual inversions: a tiny random embedding made here for a tiny Stable Diffusion model,
pinned by its manifest, named in a template with the token its prompt uses. The token changes
the image; the embedding's hash is in the key and the record; changed weights are refused."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from models import MANIFESTS_DIR, ModelIntegrityError, manifest_load, template_load
from models.adapters import adapter_manifest_load, adapter_pin
from models.errors import ManifestError
from models.loading import embeddings_apply, pipeline_load
from models.pin import manifest_pin
from pipeline.config import config_from_settings
from pipeline.errors import GenerationError
from pipeline.generate import images_generate
from pipeline.run import campaign_run
from pipeline.sources import tokens_substitute, variant_embeddings
from prompt_library.errors import LibraryFileError
from prompt_library.expansion import embeddings_resolve
from prompt_library.parsing import template_parse
from prompt_library.selectors import campaign_plan_get
from prompt_library.services import library_load
from prompt_library.specs import GenerationParams, OutputSpec, Variant
from provenance.credentials import c2pa_read, reader_context
from review.models import Asset
from review.states import AssetState
from tests.factories import library_empty
from tests.fixture_types import SettingsWrapper
from tests.models import tiny_pipelines

TEMPLATE = """name: catalog-style
description: The catalog scene in the brand's learned style.
prompt: "a {colour} mug, <brand-style>"
negative_prompt: "blurry"
variables: [colour]
model: tiny-sd
params: {steps: 2, guidance: 3.0, width: 64, height: 64}
output: {width: 384, height: 384, format: png}  # at 256 px a busy picture cannot carry every mark id
"""
EMBEDDING = 'embeddings:\n  - {name: brand-style, token: "<brand-style>"}\n'
CAMPAIGN = """name: style
template: catalog-style
template_version: VERSION
variables: {colour: [red]}
seeds: [5]
"""


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random SD model with its own pipeline in this process (the tokens loaded here reach
    no other test), a two-vector random embedding for it, and a LoRA (to be refused as one)."""
    root = tmp_path_factory.mktemp("embedding-models")
    folder = tiny_pipelines.pipeline_save(tiny_pipelines.stable_diffusion_build(), root / "tiny-sd")
    manifest_pin(MANIFESTS_DIR / "templates" / "sd-turbo.yaml", folder, name="tiny-sd", manifests_dir=root)
    embedding = tiny_pipelines.tiny_embedding_save(root / "weights" / "brand-style", seed=1)
    adapter_pin(
        "brand-style",
        embedding,
        family="stable-diffusion",
        kind="textual-inversion",
        license_name="x",
        manifests_dir=root,
    )
    lora = tiny_pipelines.tiny_lora_save(folder / "unet", root / "weights" / "brand-red", seed=1)
    adapter_pin("brand-red", lora, family="stable-diffusion", license_name="x", manifests_dir=root)
    return root


@pytest.fixture
def style_library(greenlight_settings: SettingsWrapper, models_dir: Path, library_dir: Path) -> Path:
    greenlight_settings.GREENLIGHT_MODELS_DIR = models_dir
    library_empty(library_dir)
    folder = library_dir / "templates" / "catalog-style"
    folder.mkdir()
    (folder / "v1.yaml").write_text(TEMPLATE)
    (folder / "v2.yaml").write_text(TEMPLATE + EMBEDDING)
    weighted = TEMPLATE.replace("<brand-style>", "(<brand-style>:1.4)")
    (folder / "v3.yaml").write_text(weighted + EMBEDDING)
    return library_dir


def _variant(library: Path, version: int) -> Variant:
    (library / "campaigns" / "style.yaml").write_text(CAMPAIGN.replace("VERSION", str(version)))
    library_load()
    return campaign_plan_get(name="style").variants[0]


@pytest.mark.django_db
def test_the_token_changes_the_image_and_the_embedding_is_in_the_key_and_record(
    style_library: Path, models_dir: Path
) -> None:
    manifest = manifest_load("tiny-sd", manifests_dir=models_dir)
    pipe = pipeline_load(manifest, device="cpu")
    plain, styled, weighted = (_variant(style_library, n) for n in (1, 2, 3))
    pinned = adapter_manifest_load("brand-style", manifests_dir=models_dir).manifest_hash
    assert styled.params.embeddings == (("brand-style", pinned, "<brand-style>"),)
    assert styled.generation_record()["embeddings"] == [
        {"name": "brand-style", "manifest_hash": pinned, "token": "<brand-style>"}
    ]
    assert "embeddings" not in plain.generation_record()
    assert plain.key != styled.key

    before = images_generate(pipe, manifest, [plain])[0]  # "<brand-style>" read as plain characters
    with_embedding = images_generate(pipe, manifest, [styled])[0]
    again = images_generate(pipe, manifest, [styled])[0]  # loaded once, drawn the same
    after = images_generate(pipe, manifest, [plain])[0]  # a template without it never reaches it
    assert with_embedding.tobytes() != before.tobytes()
    assert again.tobytes() == with_embedding.tobytes()
    assert after.tobytes() == before.tobytes()
    # Weighted (compel builds the embeddings, both vectors of the token spelled out): another image.
    assert images_generate(pipe, manifest, [weighted])[0].tobytes() != with_embedding.tobytes()


@pytest.mark.django_db
def test_an_embedding_template_runs_into_review_signed_with_its_embedding(
    style_library: Path, models_dir: Path
) -> None:
    (style_library / "campaigns" / "style.yaml").write_text(CAMPAIGN.replace("VERSION", "2"))
    library_load()
    config = config_from_settings()
    summary = campaign_run(campaign="style", batch_size=1, config=config)
    assert (summary.generated, summary.failed) == (1, 0), summary.failures
    asset = Asset.objects.get()
    assert asset.state == AssetState.IN_REVIEW
    pinned = adapter_manifest_load("brand-style", manifests_dir=models_dir).manifest_hash
    assert asset.generation_record["embeddings"] == [
        {"name": "brand-style", "manifest_hash": pinned, "token": "<brand-style>"}
    ]
    assert asset.generation_record["prompt"] == "a red mug, <brand-style>"  # the template's own token
    with reader_context(config.signing) as context:
        report = c2pa_read((config.storage_root / asset.file_path).read_bytes(), mime="image/png", context=context)
    assert report.state == "trusted", report.validation_codes


@pytest.mark.django_db
def test_new_embedding_weights_change_the_key_and_the_old_version_is_refused(
    style_library: Path, models_dir: Path, tmp_path: Path
) -> None:
    manifest = manifest_load("tiny-sd", manifests_dir=models_dir)
    old = _variant(style_library, 2)
    original = (models_dir / "adapters" / "brand-style.yaml").read_text()
    retrained = tiny_pipelines.tiny_embedding_save(tmp_path / "brand-style-2", seed=2)
    try:
        adapter_pin(
            "brand-style",
            retrained,
            family="stable-diffusion",
            kind="textual-inversion",
            license_name="x",
            manifests_dir=models_dir,
        )
        with pytest.raises(GenerationError, match=r"embedding 'brand-style' has manifest hash .* was loaded with"):
            images_generate(pipeline_load(manifest, device="cpu"), manifest, [old])
        folder = style_library / "templates" / "catalog-style"
        (folder / "v4.yaml").write_text((folder / "v2.yaml").read_text())
        new = _variant(style_library, 4)
        assert new.params.embeddings[0][1] != old.params.embeddings[0][1]
        assert new.key != old.key
    finally:
        (models_dir / "adapters" / "brand-style.yaml").write_text(original)


def test_an_embedding_whose_file_changed_is_refused_before_it_is_read(models_dir: Path, tmp_path: Path) -> None:
    shutil.copytree(models_dir / "weights" / "brand-style", tmp_path / "w")
    embedding = adapter_pin(
        "tampered",
        tmp_path / "w",
        family="stable-diffusion",
        kind="textual-inversion",
        license_name="x",
        manifests_dir=tmp_path,
    )
    other = tiny_pipelines.tiny_embedding_save(tmp_path / "other", seed=9)
    shutil.copyfile(other / "learned_embeds.safetensors", tmp_path / "w" / "learned_embeds.safetensors")
    pipe = pipeline_load(manifest_load("tiny-sd", manifests_dir=models_dir), device="cpu")
    with pytest.raises(ModelIntegrityError, match=r"learned_embeds\.safetensors"):
        embeddings_apply(pipe, [embedding])


def test_an_embedding_that_does_not_fit_the_text_encoder_is_refused_naming_it(models_dir: Path, tmp_path: Path) -> None:
    narrow = tiny_pipelines.tiny_embedding_save(tmp_path / "narrow", seed=3, width=16)
    embedding = adapter_pin(
        "narrow", narrow, family="stable-diffusion", kind="textual-inversion", license_name="x", manifests_dir=tmp_path
    )
    pipe = pipeline_load(manifest_load("tiny-sd", manifests_dir=models_dir), device="cpu")
    with pytest.raises(ManifestError, match=r"narrow.yaml: .* shape \(2, 16\); the model's text_encoder takes 32-wide"):
        embeddings_apply(pipe, [embedding])


def test_a_family_whose_text_encoder_takes_no_embedding_is_refused(models_dir: Path, tmp_path: Path) -> None:
    weights = models_dir / "weights" / "brand-style"
    with pytest.raises(ManifestError, match="field 'family' is 'flux'; textual inversions load for the families"):
        adapter_pin(
            "flux-style", weights, family="flux", kind="textual-inversion", license_name="x", manifests_dir=tmp_path
        )
    flux = template_load("flux-schnell")
    spec = template_parse(
        {
            "name": "t",
            "prompt": "a mug <s>",
            "variables": [],
            "model": "flux-schnell",
            "output": {"width": 256, "height": 256},
        }
        | {"embeddings": [{"name": "brand-style", "token": "<s>"}]},
        path=Path("t/v1.yaml"),
        number=1,
    )
    with pytest.raises(LibraryFileError, match=r"model 'flux-schnell' \(flux\) has no text encoder that takes textual"):
        embeddings_resolve(Path("t/v1.yaml"), spec, flux, manifests_dir=models_dir)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ('{name: nobody, token: "<s>"}', r"field 'embeddings\[0\].name' is 'nobody': No adapter named 'nobody'"),
        ('{name: brand-red, token: "<s>"}', r"field 'embeddings\[0\].name' is 'brand-red', a lora, not a textual"),
        ("{name: brand-style, token: two words}", r"field 'embeddings\[0\].token' must be one word"),
    ],
)
def test_a_bad_embedding_entry_is_refused_at_load(style_library: Path, entry: str, message: str) -> None:
    (style_library / "templates" / "catalog-style" / "v2.yaml").write_text(TEMPLATE + f"embeddings:\n  - {entry}\n")
    with pytest.raises(LibraryFileError, match=message):
        library_load()


def test_only_the_token_as_a_word_of_its_own_is_rewritten() -> None:
    tokens = {"<s>": "<gl-ti-1>", "sks": "<gl-ti-2>"}
    assert tokens_substitute("a <s> mug, (<s>:1.2), <s>s", tokens) == "a <gl-ti-1> mug, (<gl-ti-1>:1.2), <s>s"
    assert tokens_substitute("sks dog, asks, sks-style", tokens) == "<gl-ti-2> dog, asks, sks-style"


def test_a_variant_s_embeddings_must_still_be_pinned_as_its_version_was_loaded(models_dir: Path) -> None:
    manifest = manifest_load("tiny-sd", manifests_dir=models_dir)
    assert variant_embeddings(manifest, _plain_variant(())) == []
    with pytest.raises(GenerationError, match="embedding 'brand-style' has manifest hash"):
        variant_embeddings(manifest, _plain_variant((("brand-style", "0" * 64, "<s>"),)))


def _plain_variant(embeddings: tuple[tuple[str, str, str], ...]) -> Variant:
    return Variant(
        campaign="c",
        template="t",
        template_version=1,
        template_hash="0" * 64,
        variables=(),
        prompt="a mug <s>",
        negative_prompt="",
        seed=0,
        params=GenerationParams(steps=2, guidance=1.0, width=64, height=64, embeddings=embeddings),
        output=OutputSpec(width=256, height=256),
        model_name="tiny-sd",
        model_manifest_hash="1" * 64,
    )
