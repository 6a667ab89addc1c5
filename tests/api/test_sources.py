"""Source images through the API: uploaded once per content (multipart), described by sha256,
named by a campaign (`source_image`) or a brief (`reference_image`, or the image in base64);
refused at the boundary by size (413), type (415) and dimensions or mode (422), each naming the
field."""

from __future__ import annotations

import base64
import hashlib
import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from prompt_library.models import Campaign, SourceImage
from prompt_library.sources import SOURCE_MAX_BYTES
from review.requests.models import AssetRequest
from tests.api.conftest import API, ApiClient, problem_of, token_for
from tests.api.test_requests import brief
from tests.factories import make_user
from tests.review.requests.conftest import library, submitted  # noqa: F401 (fixtures)
from tests.review.requests.test_reference_image import cutout_png

pytestmark = pytest.mark.django_db


def upload(client: ApiClient, data: bytes, name: str = "photo.png", **extra: Any) -> Any:
    file = SimpleUploadedFile(name, data, content_type="application/octet-stream")
    return client.client.post(f"{API}/sources", {"file": file}, headers=client.headers, **extra)


@pytest.fixture
def maria(library: Path) -> ApiClient:  # noqa: F811 (the imported fixture)
    return ApiClient(token_for(make_user(username="maria", roles=("requester",))))


def test_a_source_image_is_uploaded_once_per_content_and_described(maria: ApiClient) -> None:
    photo = cutout_png()
    sha256 = hashlib.sha256(photo).hexdigest()
    first = upload(maria, photo, "bowl.png")
    assert first.status_code == 201, first.content.decode()
    body = first.json()
    assert (body["sha256"], body["name"], body["mime"], body["width"], body["has_alpha"]) == (
        sha256,
        "bowl.png",
        "image/png",
        96,
        True,
    )
    again = upload(maria, photo, "renamed.png")
    assert again.status_code == 200 and again.json()["sha256"] == sha256 and again.json()["name"] == "bowl.png"
    assert SourceImage.objects.filter(sha256=sha256).count() == 1
    described = maria.get(f"/sources/{sha256}")
    assert described.status_code == 200 and described.json()["size"] == len(photo)
    assert problem_of(maria.get(f"/sources/{'0' * 64}"), 404)["field"] == "path.sha256"
    assert problem_of(maria.get("/sources/not-a-hash"), 422)["errors"][0]["field"] == "path.sha256"


def _gif() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (32, 32)).save(out, format="GIF")
    return out.getvalue()


def test_a_bad_upload_is_refused_at_the_boundary_naming_the_field(
    maria: ApiClient, api_as: Callable[..., ApiClient]
) -> None:
    before = SourceImage.objects.count()
    assert problem_of(upload(maria, _gif(), "anim.gif"), 415)["field"] == "body.file"
    assert problem_of(upload(maria, b"%PDF-1.7"), 415)["field"] == "body.file"
    big = problem_of(upload(maria, b"\x89PNG\r\n\x1a\n" + b"\0" * SOURCE_MAX_BYTES), 413)
    assert big["field"] == "body.file" and "25 MiB" in big["detail"]
    tiny = problem_of(upload(maria, cutout_png(size=8)), 422)
    assert tiny["field"] == "body.file" and tiny["value"] == "8x8" and "16 to 4096 px" in tiny["detail"]
    broken = problem_of(upload(maria, b"\x89PNG\r\n\x1a\n" + b"garbage"), 422)
    assert "is not a readable image" in broken["detail"]
    missing = maria.client.post(f"{API}/sources", {"other": "x"}, headers=maria.headers)
    assert problem_of(missing, 422)["field"] == "body.file"
    as_json = maria.post("/sources", {"file": "x"})
    assert problem_of(as_json, 415)["field"] == "header.Content-Type"
    assert problem_of(upload(api_as("reviewer"), cutout_png()), 403)
    assert SourceImage.objects.count() == before


def test_a_brief_names_an_uploaded_reference_image_or_sends_it_in_base64(maria: ApiClient) -> None:
    photo = cutout_png()
    sha256 = upload(maria, photo).json()["sha256"]
    placement = {"template": "catalog-placement", "values": {"scene": ["on a desk"]}}
    made = maria.post("/requests", brief(**placement, reference_image=sha256))
    assert made.status_code == 201, made.content.decode()
    assert AssetRequest.objects.get(pk=made.json()["id"]).campaign.source_image == sha256

    other = cutout_png(colour=(250, 200, 0))
    inline = maria.post("/requests", brief(**placement, reference_image_base64=base64.b64encode(other).decode()))
    assert inline.status_code == 201, inline.content.decode()
    other_sha = hashlib.sha256(other).hexdigest()
    assert AssetRequest.objects.get(pk=inline.json()["id"]).campaign.source_image == other_sha
    assert SourceImage.objects.filter(sha256=other_sha).exists()


def test_a_bad_reference_image_in_a_brief_is_refused_naming_the_field(maria: ApiClient) -> None:
    placement = {"template": "catalog-placement", "values": {"scene": ["on a desk"]}}
    unknown = problem_of(maria.post("/requests", brief(**placement, reference_image="0" * 64)), 422)
    assert unknown["field"] == "body.reference_image" and "POST /sources" in unknown["detail"]
    gif = base64.b64encode(_gif()).decode()
    assert problem_of(maria.post("/requests", brief(**placement, reference_image_base64=gif)), 415)["field"] == (
        "body.reference_image_base64"
    )
    assert problem_of(maria.post("/requests", brief(**placement, reference_image_base64="@@@")), 422)["field"] == (
        "body.reference_image_base64"
    )
    sha256 = upload(maria, cutout_png()).json()["sha256"]
    both = brief(**placement, reference_image=sha256, reference_image_base64=base64.b64encode(cutout_png()).decode())
    assert problem_of(maria.post("/requests", both), 422)["field"] == "body.reference_image_base64"
    text_only = problem_of(maria.post("/requests", brief(reference_image=sha256)), 422)  # catalog-hero
    assert text_only["field"] == "body.reference_image"
    (named,) = [e for e in text_only["errors"] if e["field"] == "body.reference_image"]
    assert "its mode is text-to-image" in named["detail"]
    assert not AssetRequest.objects.exists()


def test_a_campaign_names_a_stored_source_image_by_sha256(
    library: Path,  # noqa: F811 (the imported fixture)
    api_as: Callable[..., ApiClient],
) -> None:
    operator = api_as("operator", "requester")
    sha256 = upload(operator, cutout_png()).json()["sha256"]
    body = {
        "name": "bowls-placed",
        "template": "catalog-placement",
        "template_version": 1,
        "variables": {"scene": ["on a desk", "on grass"]},
        "seeds": [7],
        "source_image": sha256,
    }
    made = operator.post("/campaigns", body)
    assert made.status_code == 201, made.content.decode()
    assert made.json()["source_image"] == sha256 and Campaign.objects.get(name="bowls-placed").source_image == sha256

    unknown = problem_of(operator.post("/campaigns", body | {"name": "nowhere", "source_image": "1" * 64}), 422)
    assert "field 'source_image'" in unknown["detail"] and "no source image with that sha256" in unknown["detail"]
    hero = body | {
        "name": "hero-with-photo",
        "template": "catalog-hero",
        "variables": {"product": ["mug"], "scene": ["a table"], "style": ["studio light"]},
    }
    refused = problem_of(operator.post("/campaigns", hero), 422)
    assert "field 'source_image'" in refused["detail"] and "its mode is text-to-image" in refused["detail"]
    assert problem_of(operator.post("/campaigns", body | {"name": "bad", "source_image": "xyz"}), 422)
    assert list(Campaign.objects.filter(kind="scheduled", name__in=["nowhere", "hero-with-photo", "bad"])) == []
