"""A campaign file may name its own source image by sha256: its variants draw from it instead of
their template's photo (the template version unchanged), and a value that is not a stored image,
or a template that does not draw from a photo, is refused naming the field and the file."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from prompt_library.errors import LibraryFileError
from prompt_library.models import Campaign, PromptVersion
from prompt_library.selectors import campaign_plan_get
from prompt_library.services import library_load
from prompt_library.sources import source_image_store
from tests.review.requests.test_reference_image import cutout_png

pytestmark = pytest.mark.django_db


def _campaign(library_dir: Path, extra: str, name: str = "demo-placement") -> Path:
    path = library_dir / "campaigns" / f"{name}.yaml"
    path.write_text(path.read_text() + extra)
    return path


def test_a_campaign_draws_from_its_own_source_image(library_dir: Path) -> None:
    library_load()
    template_source = PromptVersion.objects.get(template__name="catalog-placement").spec["source_image"]
    before = {v.key for v in campaign_plan_get(name="demo-placement").variants}
    photo = cutout_png()
    sha256 = source_image_store(data=photo, name="bowl.png").sha256
    assert sha256 == hashlib.sha256(photo).hexdigest()
    _campaign(library_dir, f"source_image: {sha256}\n")
    library_load()
    assert Campaign.objects.get(name="demo-placement").source_image == sha256
    variants = campaign_plan_get(name="demo-placement").variants
    assert {v.source_image for v in variants} == {sha256} and sha256 != template_source
    assert not before & {v.key for v in variants}  # another photo, other assets
    assert PromptVersion.objects.get(template__name="catalog-placement").spec["source_image"] == template_source


@pytest.mark.parametrize(
    ("campaign", "value", "message"),
    [
        ("demo-placement", "sources/red-mug-cutout.png", "must be the sha256 of an uploaded source image"),
        ("demo-placement", '"' + "1" * 64 + '"', "no source image with that sha256 has been uploaded"),
        ("demo-placement", "0" * 64, "quoted (got 0)"),  # YAML reads an unquoted run of digits as a number
        ("demo-spring", "STORED", "its mode is text-to-image"),
    ],
)
def test_a_bad_campaign_source_image_is_refused_naming_the_field_and_file(
    library_dir: Path, campaign: str, value: str, message: str
) -> None:
    if value == "STORED":
        value = source_image_store(data=cutout_png(), name="bowl.png").sha256
    path = _campaign(library_dir, f"source_image: {value}\n", name=campaign)
    with pytest.raises(LibraryFileError) as refused:
        library_load()
    assert "field 'source_image'" in str(refused.value) and message in str(refused.value)
    assert str(path) in str(refused.value) or path.name in str(refused.value)
