"""Structure control: a ControlNet (canny edges of the template's source photo) on a tiny random
Stable Diffusion model, pinned by manifest, from a template through library load to the image."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from models import MANIFESTS_DIR, manifest_load
from models.adapters import adapter_manifest_load, adapter_pin
from models.loading import pipeline_load
from models.pin import manifest_pin
from pipeline.generate import images_generate
from pipeline.sources import canny_edges
from prompt_library.errors import LibraryFileError
from prompt_library.selectors import campaign_plan_get
from prompt_library.services import library_load
from tests.fixture_types import SettingsWrapper
from tests.models import tiny_pipelines

TEMPLATE = """name: catalog-outline
description: A product drawn along the outline of the source photo.
prompt: "a {colour} mug"
variables: [colour]
source_image: sources/outline.png
controlnet: {name: tiny-canny, conditioning: canny, scale: 1.0}
model: tiny-sd
params: {steps: 2, guidance: 0.0, width: 64, height: 64}
output: {width: 256, height: 256, format: png}
"""


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("controlnet-models")
    pipe = tiny_pipelines.stable_diffusion_build()
    folder = tiny_pipelines.pipeline_save(pipe, root / "tiny-sd")
    manifest_pin(MANIFESTS_DIR / "templates" / "sd-turbo.yaml", folder, name="tiny-sd", manifests_dir=root)
    control = tiny_pipelines.tiny_controlnet_save(pipe, root / "weights" / "tiny-canny", seed=5)
    adapter_pin(
        "tiny-canny",
        control,
        family="stable-diffusion",
        license_name="apache-2.0",
        kind="controlnet",
        weight_name="diffusion_pytorch_model.safetensors",
        manifests_dir=root,
    )
    return root


def outline(path: Path, box: tuple[int, int, int, int]) -> None:
    image = Image.new("RGB", (256, 256), "white")
    ImageDraw.Draw(image).rectangle(box, outline="black", width=6)
    image.save(path)


@pytest.fixture
def outline_library(greenlight_settings: SettingsWrapper, models_dir: Path, library_dir: Path) -> Path:
    greenlight_settings.GREENLIGHT_MODELS_DIR = models_dir
    for name in ("catalog-clip", "catalog-hero", "catalog-scene", "catalog-placement"):
        shutil.rmtree(library_dir / "templates" / name)
    for campaign in (library_dir / "campaigns").iterdir():
        campaign.unlink()
    outline(library_dir / "sources" / "outline.png", (60, 60, 196, 196))
    outline(library_dir / "sources" / "narrow.png", (110, 20, 146, 236))
    (library_dir / "templates" / "catalog-outline").mkdir()
    (library_dir / "templates" / "catalog-outline" / "v1.yaml").write_text(TEMPLATE)
    (library_dir / "campaigns" / "outline.yaml").write_text(
        "name: outline\ntemplate: catalog-outline\ntemplate_version: 1\nvariables: {colour: [red]}\nseeds: [4]\n"
    )
    return library_dir


@pytest.mark.django_db
def test_a_controlnet_template_draws_along_its_source_photo_end_to_end(outline_library: Path, models_dir: Path) -> None:
    library_load()
    variant = campaign_plan_get(name="outline").variants[0]
    control = adapter_manifest_load("tiny-canny", manifests_dir=models_dir)
    assert variant.params.controlnet == ("tiny-canny", control.manifest_hash, "canny", 1.0)
    record = variant.generation_record()
    assert record["controlnet"] == {
        "name": "tiny-canny",
        "manifest_hash": control.manifest_hash,
        "conditioning": "canny",
        "scale": 1.0,
    }
    assert record["source_image"] == variant.source_image and "mode" not in record
    manifest = manifest_load("tiny-sd", manifests_dir=models_dir)
    pipe = pipeline_load(manifest, device="cpu")
    controlled = images_generate(pipe, manifest, [variant])[0]
    plain = images_generate(pipe, manifest, [replace(variant, params=replace(variant.params, controlnet=()))])[0]
    assert controlled.size == (256, 256)
    assert np.abs(np.asarray(controlled, np.int16) - np.asarray(plain, np.int16)).mean() > 1
    assert images_generate(pipe, manifest, [variant])[0].tobytes() == controlled.tobytes()
    # Another photo gives other edges, so another image, and another key.
    folder = outline_library / "templates" / "catalog-outline"
    (folder / "v2.yaml").write_text(TEMPLATE.replace("outline.png", "narrow.png"))
    campaign = outline_library / "campaigns" / "outline.yaml"
    campaign.write_text(campaign.read_text().replace("template_version: 1", "template_version: 2"))
    library_load()
    narrow = campaign_plan_get(name="outline").variants[0]
    assert narrow.key != variant.key
    assert images_generate(pipe, manifest, [narrow])[0].tobytes() != controlled.tobytes()


def test_canny_edges_are_the_outline_of_the_photo(tmp_path: Path) -> None:
    outline(tmp_path / "o.png", (60, 60, 196, 196))
    edges = np.asarray(canny_edges(Image.open(tmp_path / "o.png")).convert("L"))
    assert edges[128, 55:70].max() == 255 and edges[128, 100:150].max() == 0


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("tiny-canny", "nobody"), r"field 'controlnet.name' is 'nobody': No adapter named 'nobody'"),
        (("conditioning: canny", "conditioning: depth"), r"field 'controlnet.conditioning' must be one of canny"),
        (("source_image: sources/outline.png\n", ""), r"field 'controlnet' needs a 'source_image'"),
    ],
)
def test_a_bad_controlnet_is_refused_at_load(outline_library: Path, change: tuple[str, str], message: str) -> None:
    path = outline_library / "templates" / "catalog-outline" / "v1.yaml"
    path.write_text(TEMPLATE.replace(*change))
    with pytest.raises(LibraryFileError, match=message):
        library_load()
