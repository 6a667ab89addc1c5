"""Captioning models for alt text: pinned by manifest, verified, loaded offline, captions in batches.

The model is a tiny random VisionEncoderDecoderModel (ViT encoder, GPT-2 decoder) saved to a temp
folder, the way the generator families are tested: its captions are random words, but the
loading, hashing, batching and decoding are the real ones.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import yaml
from PIL import Image

from models.captioner import (
    Captioner,
    alt_text_compose,
    captioner_load,
    captioner_manifest_load,
    captioner_pin,
    main,
)
from models.errors import ManifestError, ModelIntegrityError, ModelNotFoundError
from models.training.catalog_domain import Combo, catalog_draw
from tests.models.tiny_pipelines import tiny_captioner_save


@pytest.fixture(scope="module")
def pinned(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(manifests dir, model folder) with the tiny captioner pinned as ``tiny-captioner``."""
    root = tmp_path_factory.mktemp("captioner")
    folder = tiny_captioner_save(root / "tiny-captioner")
    manifests = root / "manifests"
    captioner_pin(
        "tiny-captioner",
        folder,
        model_class="VisionEncoderDecoderModel",
        license_name="apache-2.0",
        manifests_dir=manifests,
        defaults={"max_new_tokens": 8, "num_beams": 1},
    )
    return manifests, folder


def photos(count: int) -> list[Image.Image]:
    rng = random.Random(1)
    return [catalog_draw(Combo("mug", "red", "studio"), rng=rng) for _ in range(count)]


def test_a_pinned_captioner_captions_a_batch_like_each_image_alone(pinned: tuple[Path, Path]) -> None:
    manifests, _ = pinned
    captioner = captioner_load("tiny-captioner", manifests_dir=manifests)
    assert captioner is captioner_load("tiny-captioner", manifests_dir=manifests)  # loaded once per process
    images = photos(3)
    captions = captioner.captions(images)
    assert len(captions) == 3 and all(isinstance(c, str) and c == c.strip() for c in captions)
    assert captions[0] == captioner.captions(images[:1])[0]  # greedy: deterministic
    assert captioner.captions([]) == []


def test_the_manifest_pins_every_file_and_loading_refuses_a_changed_one(
    pinned: tuple[Path, Path], tmp_path: Path
) -> None:
    manifests, folder = pinned
    manifest = captioner_manifest_load("tiny-captioner", manifests_dir=manifests)
    assert "model.safetensors" in manifest.files and "preprocessor_config.json" in manifest.files
    assert manifest.max_new_tokens == 8 and manifest.folder == folder.resolve()
    # A copy of the folder with one weight byte changed is refused, naming the file.
    import shutil

    copy = Path(shutil.copytree(folder, tmp_path / "copy"))
    weights = copy / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    other = tmp_path / "manifests"
    captioner_pin("changed", copy, model_class="VisionEncoderDecoderModel", license_name="x", manifests_dir=other)
    weights.write_bytes(bytes(data[:-1]) + bytes([data[-1] ^ 0xFF]))  # restored after pinning: no longer matches
    with pytest.raises(ModelIntegrityError, match=r"model\.safetensors"):
        Captioner(captioner_manifest_load("changed", manifests_dir=other))


def test_an_unknown_captioner_lists_the_known_ones(pinned: tuple[Path, Path]) -> None:
    manifests, _ = pinned
    with pytest.raises(ModelNotFoundError, match=r"No captioner named 'blip' \(known captioners: tiny-captioner\)"):
        captioner_manifest_load("blip", manifests_dir=manifests)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"model_class": "ResNetModel"}, "field 'model_class' is 'ResNetModel'"),
        ({"defaults": {"max_new_tokens": 0}}, "field 'defaults.max_new_tokens' must be an integer from 1 to 200"),
        ({"defaults": {"temperature": 1}}, "field 'defaults.temperature' is not a captioner default"),
        ({"colour": "red"}, "field 'colour' is not a captioner field"),
        ({"files": {"../x": "0" * 64}}, "field 'files' has '../x'"),
    ],
)
def test_a_bad_manifest_is_refused_naming_the_field(
    pinned: tuple[Path, Path], tmp_path: Path, change: dict[str, object], message: str
) -> None:
    manifests, _ = pinned
    data = yaml.safe_load((manifests / "captioners" / "tiny-captioner.yaml").read_text())
    data.update(change)
    folder = tmp_path / "captioners"
    folder.mkdir()
    (folder / "tiny-captioner.yaml").write_text(yaml.safe_dump(data))
    with pytest.raises(ManifestError, match=message.replace("(", r"\(").replace(")", r"\)")):
        captioner_manifest_load("tiny-captioner", manifests_dir=tmp_path)


def test_the_pin_command_writes_the_manifest(
    pinned: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _, folder = pinned
    monkeypatch.setattr("models.pinned.MANIFESTS_DIR", tmp_path)  # where pinned manifests go by default
    assert main(["pin", "cli-captioner", str(folder), "--class", "VisionEncoderDecoderModel", "--license", "mit"]) == 0
    assert captioner_manifest_load("cli-captioner", manifests_dir=tmp_path).license == "mit"


@pytest.mark.parametrize(
    ("description", "caption", "alt"),
    [
        (
            "Catalog photo: a red mug on a wooden table",
            "a red cup on a table",
            "Catalog photo: a red mug on a wooden table. A red cup on a table.",
        ),
        ("A red mug.", "a mug", "A red mug. A mug."),
        ("A red mug", "  ", "A red mug"),
    ],
)
def test_alt_text_is_the_description_then_the_caption(description: str, caption: str, alt: str) -> None:
    assert alt_text_compose(description, caption) == alt
