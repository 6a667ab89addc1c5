"""Delivery: the approved assets of a request as a zip streamed as it is written, each file
signed and verifying trusted once unzipped, with manifest.csv and a README."""

from __future__ import annotations

import csv
import io
import zipfile

import pytest
from django.contrib.auth.models import User

from review.delivery import CHUNK, delivery_stream
from review.models import Asset, Run
from review.requests.models import AssetRequest
from review.services import asset_approve, asset_publish, asset_reject
from review.states import AssetState
from review.verify import file_verify
from tests.factories import make_user

pytestmark = pytest.mark.django_db


def test_the_zip_holds_each_approved_assets_signed_renditions_which_verify_trusted(
    made_request: AssetRequest, reviewer: User
) -> None:
    assert Run.objects.get(campaign=made_request.campaign).state == Run.State.SUCCEEDED
    first, second, third = Asset.objects.filter(campaign=made_request.campaign).order_by("id")
    assert {first.state, second.state, third.state} == {AssetState.IN_REVIEW}
    asset_approve(asset=first, reviewer=reviewer)
    asset_approve(asset=second, reviewer=reviewer, comment="good")
    asset_reject(asset=third, reviewer=reviewer, reason="visual_artifact", comment="smudge")
    # One approved asset is published too: its published files are what the zip delivers.
    asset_publish(asset=Asset.objects.get(pk=second.pk), user=make_user(username="paul", roles=("publisher",)))

    chunks = list(delivery_stream(request=made_request))
    assert len(chunks) > 4 and max(len(c) for c in chunks) <= CHUNK + 8192  # streamed, never whole
    archive = zipfile.ZipFile(io.BytesIO(b"".join(chunks)))
    assert archive.testzip() is None
    names = sorted(archive.namelist())
    expected = sorted(
        f"{a.pk:08d}-{r}.{ext}" for a in (first, second) for r, ext in (("web", "jpg"), ("thumb", "webp"))
    )
    assert names == sorted([*expected, "manifest.csv", "README.txt"])
    for name in expected:
        report = file_verify(data=archive.read(name), filename=name)
        assert report.c2pa.state == "trusted", (name, report.verdict)
        assert report.asset is not None and report.asset.serial == int(name[:8])
    rows = list(csv.DictReader(io.StringIO(archive.read("manifest.csv").decode())))
    assert sorted(r["file"] for r in rows) == expected
    row = next(r for r in rows if r["file"] == f"{first.pk:08d}-web.jpg")
    assert row["serial"] == str(first.pk) and row["prompt"] == first.prompt and row["seed"] == str(first.seed)
    assert row["model"] == "embedded-tiny" and row["c2pa_state"] == "trusted"
    assert row["approvers"].startswith("vera ") and row["template"] == "catalog-hero v1"
    assert '"product": "mug"' in row["variables"]
    readme = archive.read("README.txt").decode()
    assert "Three mugs" in readme and "2 approved asset(s), 4 file(s)" in readme and "verify" in readme


def test_a_request_with_nothing_approved_gives_a_zip_of_its_readme_and_an_empty_manifest(
    made_request: AssetRequest,
) -> None:
    archive = zipfile.ZipFile(io.BytesIO(b"".join(delivery_stream(request=made_request))))
    assert sorted(archive.namelist()) == ["README.txt", "manifest.csv"]
    assert archive.read("manifest.csv").decode().count("\n") == 1  # the header alone
