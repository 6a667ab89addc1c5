"""`manage.py publications_sweep`: publications a dead process left half written are rolled back
(their files removed), younger ones are left to the process still writing them."""

from __future__ import annotations

import io
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from review.models import Asset, Publication
from review.states import AssetState
from tests.factories import AssetFactory, make_user
from tests.fixture_types import SettingsWrapper

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("publications_sweep", *args, stdout=out)
    return out.getvalue()


def abandoned(root: Path, *, age: timedelta) -> tuple[Asset, Path]:
    """An approved asset with a `writing` publication begun `age` ago, its file already written."""
    asset = AssetFactory.create(state=AssetState.APPROVED)
    path = f"{asset.campaign.name}/{asset.pk:08d}-web.jpg"
    (root / path).parent.mkdir(parents=True, exist_ok=True)
    (root / path).write_bytes(b"\xff\xd8 signed bytes")
    row = Publication.objects.create(
        asset=asset,
        rendition="web",
        path=path,
        mime="image/jpeg",
        width=384,
        height=384,
        sha256="0" * 64,
        size=16,
        published_by=make_user(roles=("publisher",)),
        state=Publication.State.WRITING,
    )
    Publication.objects.filter(pk=row.pk).update(created_at=timezone.now() - age)
    return asset, root / path


def test_the_command_rolls_back_abandoned_publications_and_leaves_live_ones(
    greenlight_settings: SettingsWrapper,
) -> None:
    root = Path(greenlight_settings.GREENLIGHT_PUBLISH_ROOT)
    old, old_file = abandoned(root, age=timedelta(hours=1))
    live, live_file = abandoned(root, age=timedelta(seconds=30))

    out = run()

    assert f"rolled back 1 row(s) of asset(s) {old.pk}; removed 1 file(s)" in out
    assert not old_file.exists() and live_file.exists()
    assert old.publications.get().state == Publication.State.ROLLED_BACK
    assert live.publications.get().state == Publication.State.WRITING
    assert Asset.objects.get(pk=old.pk).state == AssetState.APPROVED
    assert old.events.latest("id").action == "publication_rolled_back"
    assert run("--grace-seconds", "3600") == "Publications: nothing abandoned.\n"
    assert f"asset(s) {live.pk}" in run("--grace-seconds", "0")
    assert not live_file.exists()


@pytest.mark.parametrize("value", ["-5", "٣", "1.5", " 30"])
def test_the_command_refuses_a_grace_that_is_not_ascii_digits(value: str) -> None:
    with pytest.raises(CommandError, match=rf"--grace-seconds must be a whole number of seconds \(got '{value}'\)"):
        run("--grace-seconds", value)
