"""Publication survives a process killed in the middle of it.

A real subprocess (Django set up on the test database) publishes an approved asset and is killed
with SIGKILL at each step: once its intent is committed, once its first file is written, once
every file is written, inside the completing transaction before it commits, and after it commits.
The child reaches those points by wrapping what the product already calls (its publish target's
`write`, the rendering, the database connection's `commit`), so the product carries no hook for
the test. After each kill every file on the target is named by a publication row, and after the
sweeper there is either a complete publication (asset published, every row published, every file
present with its sha256, its manifest stored) or no file at all (asset approved, publishable
again). The same for object storage, through a local S3-compatible endpoint; and revoke, a
publish while one is being written, the sweeper's grace, a publication rolled back or revoked
while its files are written.
"""

from __future__ import annotations

import hashlib
import json
import os
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from django.contrib.auth.models import User
from django.db import connection, transaction
from django.utils import timezone

import review.services.publication as publication_module
from provenance.storage import Storage
from review.errors import PublicationRolledBackError, PublishInProgressError
from review.models import Asset, ManifestRecord, Publication
from review.services import PUBLISH_GRACE, asset_approve, asset_publish, asset_revoke, publications_sweep
from review.states import AssetState
from tests.factories import make_user
from tests.fixture_types import SettingsWrapper

ROOT = Path(__file__).resolve().parents[3]
WRITING, PUBLISHED, ROLLED_BACK = (
    Publication.State.WRITING,
    Publication.State.PUBLISHED,
    Publication.State.ROLLED_BACK,
)

# The publishing process. It wraps the publish target, the rendering and the connection's commit
# to print "PAUSED <step>" and sleep at the step named on its command line (the test kills it).
CHILD = """
import sys, time

import django

django.setup()
from django.contrib.auth.models import User
from django.db import connections

import review.services.publication as publication
from review.models import Asset

STEP, SERIAL, USERNAME = sys.argv[1], int(sys.argv[2]), sys.argv[3]
seen = {"writes": 0, "renditions": -1}


def pause(step):
    if step == STEP:
        print("PAUSED", step, flush=True)
        time.sleep(300)
        sys.exit("was not killed")


class Pausing:
    def __init__(self, inner):
        self.inner = inner

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def write(self, relative, data):
        if seen["writes"] == 0:
            pause("intent")
        digest = self.inner.write(relative, data)
        seen["writes"] += 1
        if seen["writes"] == 1:
            pause("first_file")
        if seen["writes"] == seen["renditions"]:
            pause("all_files")
        return digest


real_storage, real_make = publication.publish_storage, publication.renditions_make
publication.publish_storage = lambda *args, **kwargs: Pausing(real_storage(*args, **kwargs))


def make(asset):
    made = real_make(asset)
    seen["renditions"] = len(made)
    return made


publication.renditions_make = make
connection = connections["default"]
real_commit = connection.commit


def commit():
    completing = seen["writes"] == seen["renditions"]
    if completing:
        pause("before_commit")
    real_commit()
    if completing:
        pause("after_commit")


connection.commit = commit
publication.asset_publish(asset=Asset.objects.get(pk=SERIAL), user=User.objects.get(username=USERNAME))
print("DONE", flush=True)
"""


def database_url() -> str:
    """The test database (pytest-django's `test_<name>`), as DATABASE_URL spells it."""
    db = connection.settings_dict
    user = quote(db["USER"] or "", safe="")
    password = f":{quote(db['PASSWORD'], safe='')}" if db["PASSWORD"] else ""
    return f"postgres://{user}{password}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def child_env(settings: SettingsWrapper) -> dict[str, str]:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "infra.settings",
        "DATABASE_URL": database_url(),
        "GREENLIGHT_STORAGE_ROOT": str(settings.GREENLIGHT_STORAGE_ROOT),
        "GREENLIGHT_PUBLISH_ROOT": str(settings.GREENLIGHT_PUBLISH_ROOT),
        "GREENLIGHT_PUBLISH_URL": settings.GREENLIGHT_PUBLISH_URL,
        "GREENLIGHT_PUBLISH_STORAGE_OPTIONS": json.dumps(settings.GREENLIGHT_PUBLISH_STORAGE_OPTIONS),
        "GREENLIGHT_SIGNING_CHAIN": str(settings.GREENLIGHT_SIGNING_CHAIN),
        "GREENLIGHT_SIGNING_KEY": str(settings.GREENLIGHT_SIGNING_KEY),
        "GREENLIGHT_TRUST_ANCHORS": str(settings.GREENLIGHT_TRUST_ANCHORS),
        "GREENLIGHT_WATERMARK_KEYS_DIR": str(settings.GREENLIGHT_WATERMARK_KEYS_DIR),
        "GREENLIGHT_PUBLISH_WEBHOOK_URL": "",
    }


def publish_and_kill(step: str, asset: Asset, user: User, settings: SettingsWrapper) -> None:
    """Publish in a child process, SIGKILL it when it reports `step`, wait until its database
    session is gone (its row locks released)."""
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, step, str(asset.pk), user.get_username()],
        cwd=ROOT,
        env=child_env(settings),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    lines: list[str] = []
    try:
        with selectors.DefaultSelector() as selector:
            selector.register(child.stdout, selectors.EVENT_READ)
            deadline = time.monotonic() + 120
            while f"PAUSED {step}" not in lines:
                remaining = deadline - time.monotonic()
                assert remaining > 0 and selector.select(remaining), f"the child never reached {step}: {lines}"
                line = child.stdout.readline()
                assert line, f"the child ended before {step}: {lines} {child.stderr.read() if child.stderr else ''}"
                lines.append(line.strip())
        os.kill(child.pid, signal.SIGKILL)
    finally:
        if child.poll() is None:
            child.kill()
        child.wait(timeout=30)
        child.stdout.close()
        if child.stderr is not None:
            child.stderr.close()
    assert child.returncode == -signal.SIGKILL
    with transaction.atomic():  # blocks until the dead session's transaction is aborted
        Asset.objects.select_for_update().get(pk=asset.pk)


def local_files(settings: SettingsWrapper) -> dict[str, bytes]:
    """Every file under the publish folder (temporary ones too), by relative path."""
    root = Path(settings.GREENLIGHT_PUBLISH_ROOT)
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def assert_recorded(files: dict[str, bytes], asset: Asset) -> None:
    """Every file on the target is named by a publication row of the asset that is not rolled back."""
    named = set(Publication.objects.filter(asset=asset).exclude(state=ROLLED_BACK).values_list("path", flat=True))
    assert set(files) <= named, f"files nobody knows of: {sorted(set(files) - named)}"


def assert_complete_or_nothing(files: dict[str, bytes], asset: Asset) -> str:
    """Either a complete publication or no file at all; returns which."""
    asset.refresh_from_db()
    rows = list(Publication.objects.filter(asset=asset).order_by("pk"))
    if asset.state == AssetState.PUBLISHED:
        rows = [r for r in rows if r.state != ROLLED_BACK]  # earlier attempts, their files gone
        assert rows and {r.state for r in rows} == {PUBLISHED}
        assert set(files) == {r.path for r in rows}
        for row in rows:
            assert hashlib.sha256(files[row.path]).hexdigest() == row.sha256 and len(files[row.path]) == row.size
            assert ManifestRecord.objects.filter(asset=asset, kind=f"rendition:{row.rendition}", sha256=row.sha256)
        return "published"
    assert asset.state == AssetState.APPROVED
    assert files == {}, f"files left behind: {sorted(files)}"
    assert not any(r.state == WRITING for r in rows)
    return "nothing"


@pytest.fixture
def approved(reviewable_assets: list[Asset]) -> Asset:
    return asset_approve(asset=reviewable_assets[0], reviewer=make_user(username="vera", roles=("reviewer",)))


@pytest.fixture
def paul() -> User:
    return make_user(username="paul", roles=("publisher",))


STEPS = [
    # step, what the sweeper leaves, files on the target when the process died
    ("intent", "nothing", 0),
    ("first_file", "nothing", 1),
    ("all_files", "nothing", 2),
    ("before_commit", "nothing", 2),
    ("after_commit", "published", 2),
]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("step", "outcome", "written"), STEPS, ids=[s[0] for s in STEPS])
def test_a_publish_killed_at_any_step_ends_complete_or_with_no_files_after_the_sweep(
    step: str, outcome: str, written: int, approved: Asset, paul: User, greenlight_settings: SettingsWrapper
) -> None:
    publish_and_kill(step, approved, paul, greenlight_settings)

    left = local_files(greenlight_settings)
    assert len(left) == written
    assert_recorded(left, approved)
    sweep = publications_sweep(grace=timedelta(0))

    assert assert_complete_or_nothing(local_files(greenlight_settings), approved) == outcome
    assert sorted(sweep.removed) == sorted(left if outcome == "nothing" else [])
    if outcome == "nothing":
        rows = Publication.objects.filter(asset=approved)
        assert sorted(sweep.rolled_back) == sorted(rows.values_list("pk", flat=True))
        assert set(rows.values_list("state", flat=True)) == {ROLLED_BACK}
        event = approved.events.latest("id")
        assert (event.action, event.actor, sorted(event.detail["removed"])) == (
            "publication_rolled_back",
            None,
            sorted(left),
        )
        # The asset stays approved: publishing it again works.
        asset_publish(asset=approved, user=paul)
        assert assert_complete_or_nothing(local_files(greenlight_settings), approved) == "published"
    else:
        assert sweep.rolled_back == ()


@pytest.mark.django_db(transaction=True)
def test_a_publish_to_object_storage_killed_after_its_writes_is_rolled_back_by_the_sweep(
    approved: Asset, paul: User, greenlight_settings: SettingsWrapper, s3_bucket: dict[str, Any]
) -> None:
    bucket, fs = s3_bucket["bucket"], s3_bucket["fs"]
    greenlight_settings.GREENLIGHT_PUBLISH_URL = f"s3://{bucket}/catalog"
    greenlight_settings.GREENLIGHT_PUBLISH_STORAGE_OPTIONS = s3_bucket["options"]

    publish_and_kill("before_commit", approved, paul, greenlight_settings)
    fs.invalidate_cache()
    keys = sorted(fs.find(bucket))
    rows = Publication.objects.filter(asset=approved)
    assert keys == sorted(f"{bucket}/catalog/{p}" for p in rows.values_list("path", flat=True))
    assert set(rows.values_list("state", flat=True)) == {WRITING}

    sweep = publications_sweep(grace=timedelta(0))

    fs.invalidate_cache()
    assert fs.find(bucket) == []
    assert sorted(sweep.removed) == sorted(k.removeprefix(f"{bucket}/catalog/") for k in keys)
    assert set(rows.values_list("state", flat=True)) == {ROLLED_BACK}
    assert Asset.objects.get(pk=approved.pk).state == AssetState.APPROVED


@pytest.mark.django_db(transaction=True)
def test_revoke_removes_the_files_of_a_publication_still_being_written(
    approved: Asset, paul: User, greenlight_settings: SettingsWrapper
) -> None:
    publish_and_kill("all_files", approved, paul, greenlight_settings)
    paths = sorted(local_files(greenlight_settings))
    assert len(paths) == 2

    revoked = asset_revoke(asset=approved, user=paul, reason="wrong price on the label")

    assert revoked.state == AssetState.REVOKED
    assert local_files(greenlight_settings) == {}
    rows = Publication.objects.filter(asset=approved)
    assert {(r.state, r.revoked_at is not None) for r in rows} == {(ROLLED_BACK, True)}
    event = approved.events.latest("id")
    assert (event.action, sorted(event.detail["removed"])) == ("revoked", paths)
    assert publications_sweep(grace=timedelta(0)).rolled_back == ()


# --- Without a subprocess: the rows as a dead process leaves them ---------------------------


def writing_rows(asset: Asset, user: User, *, age: timedelta) -> list[Publication]:
    """`writing` rows of `asset` (web and thumb), their intent committed `age` ago."""
    rows = Publication.objects.bulk_create(
        [
            Publication(
                asset=asset,
                rendition=name,
                path=f"{asset.campaign.name}/{asset.pk:08d}-{name}.{ext}",
                mime=mime,
                width=width,
                height=width,
                sha256="0" * 64,
                size=1,
                published_by=user,
                state=WRITING,
            )
            for name, ext, mime, width in (("web", "jpg", "image/jpeg", 1024), ("thumb", "webp", "image/webp", 256))
        ]
    )
    Publication.objects.filter(pk__in=[r.pk for r in rows]).update(created_at=timezone.now() - age)
    return rows


@pytest.mark.django_db
def test_publishing_is_refused_while_a_publication_is_being_written_and_rolls_back_an_abandoned_one(
    approved: Asset, paul: User, greenlight_settings: SettingsWrapper
) -> None:
    rows = writing_rows(approved, paul, age=timedelta(seconds=5))
    with pytest.raises(PublishInProgressError, match=f"Asset {approved.pk} is being published"):
        asset_publish(asset=approved, user=paul)
    assert publications_sweep().rolled_back == ()  # a live publish is never swept
    assert Publication.objects.filter(pk__in=[r.pk for r in rows], state=WRITING).count() == 2

    Publication.objects.filter(pk__in=[r.pk for r in rows]).update(created_at=timezone.now() - PUBLISH_GRACE * 2)
    publications = asset_publish(asset=approved, user=paul)

    assert [p.state for p in publications] == [PUBLISHED, PUBLISHED]
    assert Publication.objects.filter(pk__in=[r.pk for r in rows], state=ROLLED_BACK).count() == 2
    actions = list(approved.events.order_by("id").values_list("action", flat=True))
    assert actions[-2:] == ["publication_rolled_back", "published"]
    assert assert_complete_or_nothing(local_files(greenlight_settings), approved) == "published"


@pytest.fixture
def after_the_first_write(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Callable[[], object]]]:
    """Run the callables appended to the list once the publication's first file is written."""
    then: list[Callable[[], object]] = []
    real = publication_module.publish_storage

    class Interrupted:
        def __init__(self, inner: Storage) -> None:
            self.inner = inner
            self.writes = 0

        def __getattr__(self, name: str) -> Any:
            return getattr(self.inner, name)

        def write(self, relative: str, data: bytes) -> str:
            digest = self.inner.write(relative, data)
            self.writes += 1
            if self.writes == 1:
                for call in then:
                    call()
            return digest

    monkeypatch.setattr(publication_module, "publish_storage", lambda *a, **k: Interrupted(real(*a, **k)))
    yield then


@pytest.mark.django_db
@pytest.mark.parametrize("interruption", ["sweep", "revoke"])
def test_a_publication_rolled_back_or_revoked_while_its_files_are_written_removes_what_it_wrote(
    interruption: str,
    approved: Asset,
    paul: User,
    greenlight_settings: SettingsWrapper,
    after_the_first_write: list[Callable[[], object]],
) -> None:
    # The sweeper (as if the publish had stalled past the grace) or a revoke removes the first
    # file; the publisher writes the second, then finds its rows rolled back and removes it.
    if interruption == "sweep":
        after_the_first_write.append(lambda: publications_sweep(grace=timedelta(0)))
    else:
        after_the_first_write.append(lambda: asset_revoke(asset=approved, user=paul, reason="recalled"))

    with pytest.raises(PublicationRolledBackError, match=f"Asset {approved.pk}'s publication was rolled back") as err:
        asset_publish(asset=approved, user=paul)

    assert [p.rsplit("-", 1)[1] for p in err.value.removed] == ["thumb.webp"]

    assert local_files(greenlight_settings) == {}
    assert set(Publication.objects.filter(asset=approved).values_list("state", flat=True)) == {ROLLED_BACK}
    expected = AssetState.APPROVED if interruption == "sweep" else AssetState.REVOKED
    assert Asset.objects.get(pk=approved.pk).state == expected
    assert not ManifestRecord.objects.filter(asset=approved, kind__startswith="rendition:").exists()
