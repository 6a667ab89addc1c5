"""A brief's reference image: where its template draws from a photo (image-to-image, inpainting),
the request's variants are drawn from the brief's photo instead of the template's own, which is
stored once as a source image, named in each variant's key and generation record, and credited
as an ingredient in the signed master; the template version stays pinned and unchanged. A bad
upload, or one for a text-to-image template, is refused naming the field before anything is
registered."""

from __future__ import annotations

import hashlib
import io
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.utils import timezone
from PIL import Image, ImageDraw

from pipeline.config import config_from_settings
from prompt_library.models import Campaign, PromptVersion, SourceImage
from prompt_library.selectors import campaign_plan_get
from prompt_library.sources import SOURCE_MAX_BYTES
from provenance.credentials import c2pa_read, reader_context
from review.models import Asset
from review.requests.errors import BriefRefusedError
from review.requests.models import AssetRequest
from review.requests.services import request_create
from tests.fixture_types import SettingsWrapper
from tests.review.requests.conftest import run_made

pytestmark = pytest.mark.django_db


def cutout_png(colour: tuple[int, int, int] = (30, 60, 220), size: int = 96) -> bytes:
    """A cut-out product photo: a coloured disc on a transparent background."""
    image = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    ImageDraw.Draw(image).ellipse((size // 4, size // 4, 3 * size // 4, 3 * size // 4), fill=(*colour, 255))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def placement_brief(**overrides: Any) -> dict[str, Any]:
    return {
        "template": "catalog-placement",
        "values": {"scene": ["on a wooden table"]},
        "variants_per_combination": 1,
        "renditions": ["web"],
        "deadline": timezone.now() + timedelta(days=1),
        "notes": "",
    } | overrides


def test_a_request_with_a_reference_image_is_drawn_from_it_and_credits_it(
    library: Path, requester: User, submitted: list[int], greenlight_settings: SettingsWrapper
) -> None:
    photo = cutout_png()
    sha256 = hashlib.sha256(photo).hexdigest()
    version = PromptVersion.objects.get(template__name="catalog-placement", number=1)
    pinned = (version.content_hash, dict(version.spec))
    template_source = version.spec["source_image"]

    made = request_create(
        requester=requester, **placement_brief(), reference_image=photo, reference_image_name="blue-bowl.png"
    )

    source = SourceImage.objects.get(sha256=sha256)
    assert (source.name, source.mime, source.has_alpha, source.created_by) == (
        "blue-bowl.png",
        "image/png",
        True,
        requester,
    )
    assert (Path(greenlight_settings.GREENLIGHT_STORAGE_ROOT) / source.file_path).read_bytes() == photo
    campaign = Campaign.objects.get(pk=made.campaign_id)
    assert campaign.source_image == sha256
    assert made.briefs.get().content["reference_image_sha256"] == sha256
    version.refresh_from_db()
    assert (version.content_hash, version.spec) == pinned  # the template version is untouched
    (variant,) = campaign_plan_get(name=campaign.name).variants
    assert (variant.mode, variant.source_image, variant.mask) == ("inpainting", sha256, "alpha")
    assert sha256 != template_source

    run_made(submitted[-1])
    asset = Asset.objects.get(campaign=campaign)
    assert asset.key == variant.key and asset.state == "in_review", asset.state
    assert (asset.generation_record["source_image"], asset.generation_record["mode"]) == (sha256, "inpainting")
    data = (Path(greenlight_settings.GREENLIGHT_STORAGE_ROOT) / asset.file_path).read_bytes()
    with reader_context(config_from_settings().signing) as context:
        report = c2pa_read(data, mime="image/png", context=context)
    assert report.state in ("valid", "trusted"), report.validation_codes
    ingredients = (report.manifest or {}).get("ingredients", [])
    assert [(i.get("title"), i.get("relationship")) for i in ingredients] == [("blue-bowl.png", "componentOf")]
    # The disc is the photo's own pixels: blue where the template's own photo has a red mug.
    image = Image.open(io.BytesIO(data)).convert("RGB")
    red, green, blue = image.getpixel((image.width // 2, image.height // 2))  # type: ignore[misc]
    assert blue > 150 and red < 100, (red, green, blue)


def test_the_same_photo_twice_is_stored_once(library: Path, requester: User) -> None:
    photo = cutout_png()
    first = request_create(requester=requester, **placement_brief(), reference_image=photo)
    second = request_create(requester=requester, **placement_brief(), reference_image=photo)
    assert SourceImage.objects.filter(sha256=hashlib.sha256(photo).hexdigest()).count() == 1
    assert first.campaign.source_image == second.campaign.source_image


def _jpeg() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 64), (200, 30, 30)).save(out, format="JPEG")
    return out.getvalue()


def _gif() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 64), (200, 30, 30)).save(out, format="GIF")
    return out.getvalue()


BAD_REFERENCES = [
    ("catalog-placement", b"%PDF-1.4 not an image", "is not a readable image"),
    ("catalog-placement", _gif(), "must be a PNG, JPEG or WebP image"),
    ("catalog-placement", b"\x89PNG\r\n\x1a\n" + b"\0" * SOURCE_MAX_BYTES, "is larger than 25 MiB"),
    ("catalog-placement", cutout_png(size=8), "each side must be from 16 to 4096 px"),
    ("catalog-placement", _jpeg(), "has no transparency"),  # its mask is made from the photo's alpha
    ("catalog-hero", cutout_png(), "its mode is text-to-image"),
]


@pytest.mark.parametrize(
    ("template", "data", "problem"), BAD_REFERENCES, ids=["text", "gif", "too-big", "tiny", "no-alpha", "t2i"]
)
def test_a_bad_reference_image_is_refused_naming_the_field_and_nothing_is_stored(
    library: Path, requester: User, submitted: list[int], template: str, data: bytes, problem: str
) -> None:
    values = (
        {"scene": ["a table"]}
        if template == "catalog-placement"
        else {
            "product": ["mug"],
            "scene": ["a table"],
            "style": ["studio light"],
        }
    )
    sources_before = SourceImage.objects.count()
    with pytest.raises(BriefRefusedError) as refused:
        request_create(requester=requester, **placement_brief(template=template, values=values), reference_image=data)
    (found,) = [p for p in refused.value.problems if p.field == "reference_image"]
    assert problem in found.problem, found
    assert "reference_image" in str(refused.value)
    assert SourceImage.objects.count() == sources_before
    assert not AssetRequest.objects.exists() and not Asset.objects.exists() and submitted == []


def test_the_new_request_form_takes_a_reference_image(library: Path, requester: User, submitted: list[int]) -> None:
    client = Client()
    client.force_login(requester)
    photo = cutout_png(colour=(20, 180, 40))
    page = client.get("/requests/new?template=catalog-placement")
    assert b'enctype="multipart/form-data"' in page.content and b'name="reference_image"' in page.content
    form = {
        "template": "catalog-placement",
        "var_scene": "on a shelf",
        "variants_per_combination": "1",
        "renditions": ["web"],
        "reference_image": SimpleUploadedFile("green-vase.png", photo, content_type="image/png"),
    }
    response = client.post("/requests/new", form)
    assert response.status_code == 302, response.content.decode()[:2000]
    made = AssetRequest.objects.get()
    assert made.campaign.source_image == hashlib.sha256(photo).hexdigest()
    assert SourceImage.objects.get(sha256=made.campaign.source_image).name == "green-vase.png"
    detail = client.get(response["Location"]).content.decode()
    assert 'id="reference-image"' in detail and f"/sources/{made.campaign.source_image}" in detail
    assert client.get(f"/sources/{made.campaign.source_image}").status_code == 200  # the requester sees it

    hero = client.get("/requests/new?template=catalog-hero")
    assert b'name="reference_image"' not in hero.content
    refused = client.post(
        "/requests/new",
        {
            "template": "catalog-hero",
            "var_product": "mug",
            "var_scene": "a table",
            "var_style": "studio",
            "variants_per_combination": "1",
            "renditions": ["web"],
            "reference_image": SimpleUploadedFile("green-vase.png", photo, content_type="image/png"),
        },
    )
    assert refused.status_code == 400
    assert b"reference_image is not taken by template &#x27;catalog-hero&#x27; v1: its mode is text-to-image" in (
        refused.content
    )
    assert AssetRequest.objects.count() == 1
