"""A template's mode: text-to-image, image-to-image or inpainting from a source image, each
checked at load with refusals that name the field and value."""

from __future__ import annotations

import hashlib
from dataclasses import asdict
from pathlib import Path

import pytest
from PIL import Image

from prompt_library.errors import LibraryFileError
from prompt_library.models import PromptVersion, SourceImage
from prompt_library.parsing import template_from_dict, template_parse
from prompt_library.services import library_load
from tests.prompt_library.library_data import PATH, clip_output, template_data

SHA = "ab" * 32


def test_each_mode_parses_with_its_defaults() -> None:
    plain = template_parse(template_data(), path=PATH, number=1)
    assert (plain.mode, plain.strength, plain.source_image, plain.mask) == ("text-to-image", None, "", "")
    i2i = template_parse(template_data(mode="image-to-image", source_image="photos/mug.png"), path=PATH, number=1)
    assert (i2i.mode, i2i.strength, i2i.source_image, i2i.mask) == ("image-to-image", 0.75, "photos/mug.png", "")
    paint = template_parse(template_data(mode="inpainting", source_image=SHA, strength=0.9), path=PATH, number=1)
    assert (paint.mode, paint.strength, paint.source_image, paint.mask) == ("inpainting", 0.9, SHA, "alpha")
    masked = template_parse(template_data(mode="inpainting", source_image=SHA, mask="m.png"), path=PATH, number=1)
    assert (masked.strength, masked.mask) == (1.0, "m.png")
    for spec in (plain, i2i, paint, masked):  # as stored with a version and read back
        assert template_from_dict(asdict(spec)) == spec
        assert template_from_dict(asdict(spec)).content_hash == spec.content_hash
    assert len({plain.content_hash, i2i.content_hash, paint.content_hash, masked.content_hash}) == 4


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"mode": "outpainting"}, "field 'mode' must be one of text-to-image, image-to-image, inpainting"),
        ({"strength": 0.5}, "field 'strength' is only for image-to-image and inpainting"),
        ({"source_image": "a.png"}, "field 'source_image' is only for image-to-image and inpainting"),
        ({"mode": "image-to-image"}, "field 'source_image' must name an image"),
        ({"mode": "image-to-image", "source_image": "a.png", "strength": 0}, "field 'strength' must be a number"),
        ({"mode": "image-to-image", "source_image": "a.png", "strength": True}, "field 'strength' must be a number"),
        ({"mode": "image-to-image", "source_image": "a.png", "mask": "alpha"}, "field 'mask' is only for inpainting"),
        ({"mode": "inpainting", "source_image": "../../etc/passwd"}, "must be a path inside the library folder"),
        ({"mode": "inpainting", "source_image": "/etc/passwd"}, "must be a path inside the library folder"),
        ({"mode": "inpainting", "source_image": "a.png", "output": clip_output()}, "with mode: image-to-video"),
    ],
)
def test_a_bad_mode_or_source_is_refused_naming_the_field(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(LibraryFileError) as err:
        template_parse(template_data(**overrides), path=PATH, number=1)
    assert message in str(err.value) and str(PATH) in str(err.value)


def _placement(library_dir: Path, text: str) -> None:
    folder = library_dir / "templates" / "catalog-placement"
    (folder / "v1.yaml").write_text(text)


@pytest.mark.django_db
def test_a_source_photo_without_transparency_cannot_make_an_alpha_mask(library_dir: Path) -> None:
    Image.new("RGB", (64, 64), (200, 30, 30)).save(library_dir / "sources" / "flat.jpg")
    path = library_dir / "templates" / "catalog-placement" / "v1.yaml"
    _placement(library_dir, path.read_text().replace("red-mug-cutout.png", "flat.jpg"))
    with pytest.raises(LibraryFileError, match=r"v1\.yaml: field 'mask' is 'alpha' but source image 'flat.jpg'"):
        library_load()
    assert not PromptVersion.objects.exists()


@pytest.mark.django_db
def test_a_missing_or_unreadable_source_file_is_refused_naming_it(library_dir: Path) -> None:
    path = library_dir / "templates" / "catalog-placement" / "v1.yaml"
    text = path.read_text()
    _placement(library_dir, text.replace("red-mug-cutout.png", "nowhere.png"))
    with pytest.raises(LibraryFileError, match=r"field 'source_image' names 'sources/nowhere.png', which cannot"):
        library_load()
    (library_dir / "sources" / "notes.png").write_text("not an image")
    _placement(library_dir, text.replace("red-mug-cutout.png", "notes.png"))
    with pytest.raises(LibraryFileError, match=r"field 'source_image' names 'sources/notes.png': is not a readable"):
        library_load()


@pytest.mark.django_db
def test_a_mask_file_must_have_its_photos_size(library_dir: Path) -> None:
    Image.new("L", (64, 32), 255).save(library_dir / "sources" / "mask.png")
    path = library_dir / "templates" / "catalog-placement" / "v1.yaml"
    _placement(library_dir, path.read_text().replace("mask: alpha", "mask: sources/mask.png"))
    with pytest.raises(LibraryFileError, match=r"field 'mask' is 64x32 but the source image is 512x512"):
        library_load()


@pytest.mark.django_db
def test_a_source_is_stored_once_and_named_by_its_sha256(library_dir: Path) -> None:
    library_load()
    library_load()
    photo = (library_dir / "sources" / "red-mug-cutout.png").read_bytes()
    assert list(SourceImage.objects.values_list("sha256", flat=True)) == [hashlib.sha256(photo).hexdigest()]
    version = PromptVersion.objects.get(template__name="catalog-placement")
    assert version.spec["source_image"] == hashlib.sha256(photo).hexdigest()
