"""Templates that draw from a product photo: the photo is a stored source image of its own, its
sha256 enters the asset's key and generation record, inpainting keeps its pixels, and the signed
master credits it as an ingredient."""

from __future__ import annotations

import hashlib
import io
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from models import ModelManifest
from pipeline.config import config_from_settings
from pipeline.generate import images_generate
from pipeline.run import campaign_run
from prompt_library.models import SourceImage
from prompt_library.selectors import campaign_plan_get
from prompt_library.services import library_load
from prompt_library.sources import mask_from_alpha
from provenance.credentials import c2pa_read, reader_context
from review.models import Asset
from tests.fixture_types import SettingsWrapper

pytestmark = pytest.mark.django_db
PHOTO = "sources/red-mug-cutout.png"


def test_an_inpainting_template_places_the_photo_in_each_scene_and_credits_it(
    greenlight_settings: SettingsWrapper, library_dir: Path
) -> None:
    photo_bytes = (library_dir / PHOTO).read_bytes()
    sha256 = hashlib.sha256(photo_bytes).hexdigest()
    library_load()
    source = SourceImage.objects.get(sha256=sha256)
    assert (source.name, source.mime, source.has_alpha) == ("red-mug-cutout.png", "image/png", True)
    stored = Path(greenlight_settings.GREENLIGHT_STORAGE_ROOT) / source.file_path
    assert stored.read_bytes() == photo_bytes

    plan = campaign_plan_get(name="demo-placement")
    assert [v.prompt for v in plan.variants] == [
        "a red mug on a wooden table",
        "a red mug on a white studio background",
        "a red mug outdoor on grass",
    ]
    assert {(v.mode, v.source_image, v.mask, v.strength) for v in plan.variants} == {
        ("inpainting", sha256, "alpha", 1.0)
    }
    config = config_from_settings()
    summary = campaign_run(campaign="demo-placement", batch_size=3, config=config)
    assert (summary.generated, summary.failed) == (3, 0), summary.failures

    photo = Image.open(io.BytesIO(photo_bytes)).convert("RGBA")
    product = np.asarray(mask_from_alpha(photo)) == 0  # where the mug is: kept
    inner = np.zeros_like(product)
    inner[8:-8, 8:-8] = product[8:-8, 8:-8]
    keep = np.asarray(photo.convert("RGB"), dtype=np.int16)
    assets = list(Asset.objects.filter(campaign__name="demo-placement").order_by("id"))
    backgrounds = []
    with reader_context(config.signing) as context:
        for asset in assets:
            record = asset.generation_record
            assert (record["mode"], record["source_image"], record["mask"]) == ("inpainting", sha256, "alpha")
            data = (Path(greenlight_settings.GREENLIGHT_STORAGE_ROOT) / asset.file_path).read_bytes()
            image = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), dtype=np.int16)
            # The mug is the photo's own pixels (the watermark moves them by a few levels only) ...
            assert np.abs(image[inner] - keep[inner]).mean() < 4
            backgrounds.append(image[~product])
            # ... and the signed master credits the photo it was made from.
            report = c2pa_read(data, mime="image/png", context=context)
            assert report.state in ("valid", "trusted"), report.validation_codes
            ingredients = (report.manifest or {}).get("ingredients", [])
            assert [(i.get("title"), i.get("relationship")) for i in ingredients] == [
                ("red-mug-cutout.png", "componentOf")
            ]
            # The model drew 64x64; the resize to 512x512 is recorded with its method.
            resized = [
                a for a in (report.assertion("c2pa.actions.v2") or {})["actions"] if a["action"] == "c2pa.resized"
            ]
            assert [a["parameters"]["method"] for a in resized] == ["lanczos"]
            assert record["resized"] == {
                "method": "lanczos",
                "from_width": 64,
                "from_height": 64,
                "to_width": 512,
                "to_height": 512,
            }
    # ... while each scene repaints the background differently.
    assert np.abs(backgrounds[0] - backgrounds[2]).mean() > 10


def test_the_source_photo_enters_the_key_so_another_photo_makes_other_assets(library_dir: Path) -> None:
    library_load()
    before = [v.key for v in campaign_plan_get(name="demo-placement").variants]
    photo = Image.open(library_dir / PHOTO).convert("RGBA")
    photo.putpixel((256, 300), (0, 0, 255, 255))
    photo.save(library_dir / "sources" / "other-mug.png")
    folder = library_dir / "templates" / "catalog-placement"
    (folder / "v2.yaml").write_text((folder / "v1.yaml").read_text().replace("red-mug-cutout", "other-mug"))
    campaign = library_dir / "campaigns" / "demo-placement.yaml"
    campaign.write_text(campaign.read_text().replace("template_version: 1", "template_version: 2"))
    library_load()
    after = campaign_plan_get(name="demo-placement").variants
    assert not set(before) & {v.key for v in after}
    assert after[0].generation_record()["source_image"] == SourceImage.objects.get(name="other-mug.png").sha256


def test_an_image_to_image_template_redraws_the_photo(
    greenlight_settings: SettingsWrapper, library_dir: Path, embedded: tuple[Any, ModelManifest]
) -> None:
    pipe, manifest = embedded
    folder = library_dir / "templates" / "catalog-placement"
    text = (folder / "v1.yaml").read_text().replace("mode: inpainting", "mode: image-to-image")
    (folder / "v2.yaml").write_text(text.replace("mask: alpha\n", "").replace("strength: 1.0", "strength: 0.5"))
    campaign = library_dir / "campaigns" / "demo-placement.yaml"
    campaign.write_text(campaign.read_text().replace("template_version: 1", "template_version: 2"))
    library_load()
    variant = campaign_plan_get(name="demo-placement").variants[0]
    assert (variant.mode, variant.strength, variant.mask) == ("image-to-image", 0.5, "")
    record = variant.generation_record()
    assert (record["mode"], record["strength"], record["source_image"]) == ("image-to-image", 0.5, variant.source_image)
    redrawn = np.asarray(images_generate(pipe, manifest, [variant])[0], np.int16)
    drawn = np.asarray(
        images_generate(pipe, manifest, [replace(variant, mode="text-to-image", source_image="")])[0], np.int16
    )
    photo = Image.open(library_dir / PHOTO).convert("RGBA")
    on_white = np.asarray(Image.alpha_composite(Image.new("RGBA", photo.size, "white"), photo).convert("RGB"), np.int16)
    # Half the noise: the redrawn image keeps the photo's layout, the plain drawing does not.
    assert np.abs(redrawn - on_white).mean() < np.abs(drawn - on_white).mean()
