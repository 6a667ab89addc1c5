"""`manage.py verify`: the verdict and the record as text or JSON, and bad files refused with
the reason (one over the limit before it is read)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from review.models import Asset
from tests.fixture_types import SettingsWrapper
from tests.review.helpers import master_bytes, reencode
from tests.review.verify.transplant import png_manifest_transplant

pytestmark = pytest.mark.django_db


def test_cli_prints_the_verdict_and_the_record(reviewable_assets: list[Asset], tmp_path: Path) -> None:
    asset = reviewable_assets[0]
    path = tmp_path / "master.png"
    path.write_bytes(master_bytes(asset))
    out = io.StringIO()

    call_command("verify", str(path), stdout=out)

    lines = out.getvalue().splitlines()
    assert lines[0] == f"Content Credentials trusted; asset #{asset.pk} found"
    assert any(line.startswith(f"  watermark    mark id {asset.mark_id}") for line in lines)
    assert any("this installation's current key" in line for line in lines)
    assert any(f"#{asset.pk} (in_review), found by its sha256" in line for line in lines)


def test_cli_json(reviewable_assets: list[Asset], tmp_path: Path) -> None:
    path = tmp_path / "copy.jpg"
    path.write_bytes(reencode(master_bytes(reviewable_assets[1]), "JPEG", quality=80))
    out = io.StringIO()

    call_command("verify", str(path), "--json", stdout=out)

    data = json.loads(out.getvalue())
    assert data["outcome"] == "recovered" and data["asset"]["serial"] == reviewable_assets[1].pk


def test_cli_names_a_copied_manifests_asset_apart_from_the_files(
    reviewable_assets: list[Asset], tmp_path: Path
) -> None:
    donor, owner = reviewable_assets[0], reviewable_assets[1]
    path = tmp_path / "master.png"
    path.write_bytes(png_manifest_transplant(donor=master_bytes(donor), target=master_bytes(owner)))
    out = io.StringIO()

    call_command("verify", str(path), stdout=out)

    lines = out.getvalue().splitlines()
    assert lines[0].endswith(
        f"this file carries asset #{owner.pk}'s watermark but asset #{donor.pk}'s manifest "
        "(a manifest copied from another file)"
    )
    assert f"  manifest of  asset #{donor.pk}, not this file's (the content does not match it)" in lines
    assert any(f"#{owner.pk} (in_review), found by its watermark" in line for line in lines)


@pytest.mark.parametrize(
    ("content", "reason"),
    [(b"", "empty"), (b"just some text\n", "not_supported"), (b"\x89PNG\r\n\x1a\n" + b"\x00" * 30, "unreadable")],
)
def test_cli_refuses_bad_files_with_the_reason(
    content: bytes, reason: str, tmp_path: Path, greenlight_settings: SettingsWrapper
) -> None:
    path = tmp_path / "bad.png"
    path.write_bytes(content)

    with pytest.raises(CommandError, match=rf"Not verified \({reason}\)"):
        call_command("verify", str(path))


def test_cli_refuses_a_file_over_the_limit_before_reading_it(
    tmp_path: Path, greenlight_settings: SettingsWrapper
) -> None:
    greenlight_settings.GREENLIGHT_VERIFY_MAX_BYTES = 1000
    path = tmp_path / "big.png"
    with path.open("wb") as handle:  # sparse: no 200 MB written
        handle.truncate(200 * 1024 * 1024)

    with pytest.raises(CommandError, match=r"too_large.*200\.0 MB"):
        call_command("verify", str(path))
