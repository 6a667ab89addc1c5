"""The management commands `make demo` runs, as an operator would call them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError

from provenance.config import provenance_config_from_settings
from provenance.keys import signing_files_check
from review.models import Asset
from tests.factories import chain_write
from tests.fixture_types import SettingsWrapper
from tests.infra.commands import run


def test_signing_keys_create_makes_a_valid_chain_once(keys_dir: Path, settings: SettingsWrapper) -> None:
    assert "Created a development signing chain" in run("signing_keys_create")
    chain = (keys_dir / "chain.pem").read_bytes()
    assert (keys_dir / "signer.key").stat().st_mode & 0o077 == 0  # the key is private to its owner
    assert "already present" in run("signing_keys_create")
    assert (keys_dir / "chain.pem").read_bytes() == chain


def test_signing_keys_create_refuses_an_expired_chain_and_says_how_to_replace_it(keys_dir: Path) -> None:
    now = datetime.now(UTC)
    chain_write(keys_dir, signer_not_before=now - timedelta(days=400), signer_not_after=now - timedelta(days=35))
    with pytest.raises(CommandError) as err:
        run("signing_keys_create")
    assert str(keys_dir / "chain.pem") in str(err.value) and "expired" in str(err.value)
    assert "--force" in str(err.value)
    assert "Created" in run("signing_keys_create", "--force")
    signing_files_check(provenance_config_from_settings().signing)


@pytest.mark.django_db
def test_library_load_reports_a_bad_file_as_a_command_error(library_dir: Path) -> None:
    path = library_dir / "campaigns" / "demo-spring.yaml"
    path.write_text(path.read_text().replace("template_version: 1", "template_version: 3"))
    with pytest.raises(CommandError, match=r"demo-spring\.yaml: template 'catalog-hero' v3 does not exist"):
        run("library_load")


@pytest.mark.django_db(transaction=True)
def test_demo_sets_everything_up_and_a_second_run_adds_nothing(
    greenlight_settings: SettingsWrapper, keys_dir: Path, library_dir: Path
) -> None:
    first = run("demo", "--address", "http://127.0.0.1:9999")
    assert "Created user 'reviewer'" in first
    assert "campaigns demo-catalog, demo-placement, demo-clips through the Prefect flow" in first
    # 36 stills, the mug photo in 3 scenes, 2 clips and the sample request's 3 stills
    assert "44 new asset(s), 44 in total" in first
    assert "http://127.0.0.1:9999/   login: reviewer / greenlight-demo" in first
    user = get_user_model().objects.get(username="reviewer")
    assert user.check_password("greenlight-demo")
    second = run("demo")
    assert "Kept user 'reviewer'" in second and "0 new asset(s), 44 in total" in second
    assert Asset.objects.count() == 44
    assert Asset.objects.filter(campaign__name="demo-placement", generation_record__mode="inpainting").count() == 3
    assert Asset.objects.filter(campaign__name="demo-clips", mime="video/mp4", state="in_review").count() == 2
