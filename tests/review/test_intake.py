"""The pipeline's door into review: registering, handing over (with the manifest store), and
recording a failed generation; each idempotent."""

from __future__ import annotations

import hashlib
import threading
import time

import pytest
from django.db import connection, transaction

from prompt_library.selectors import campaign_plan_get
from provenance.config import provenance_config_from_settings
from provenance.credentials import c2pa_read, reader_context
from provenance.storage import LocalStorage
from review.intake import (
    GeneratedFile,
    RunChanges,
    asset_generation_fail,
    assets_hand_over,
    assets_register,
    run_changed_notify,
)
from review.models import Asset, AuditEvent, ManifestRecord
from review.states import AssetState

pytestmark = pytest.mark.django_db


def actions_of(asset: Asset) -> list[str]:
    return list(asset.events.order_by("id").values_list("action", flat=True))


def test_hand_over_queues_assets_with_an_audit_trail(reviewable_assets: list[Asset]) -> None:
    asset = reviewable_assets[0]
    assert actions_of(asset) == ["registered", "generated", "submitted"]
    assert asset.file_sha256 and asset.file_size and asset.generation_record["seed"] == asset.seed


def test_handing_the_same_files_over_again_changes_nothing(reviewable_assets: list[Asset]) -> None:
    asset = reviewable_assets[0]
    again = GeneratedFile(
        key=asset.key,
        file_path=asset.file_path,
        thumb_path=asset.thumb_path,
        mime=asset.mime,
        sha256=asset.file_sha256,
        size=asset.file_size or 0,
    )
    assert assets_hand_over(files=[again]) == []
    assert AuditEvent.objects.filter(asset=asset).count() == 3


def test_a_hand_over_records_the_fresh_mark_id_a_file_was_marked_with(reviewable_assets: list[Asset]) -> None:
    variant = campaign_plan_get(name="demo-spring").variants[6]
    ref = assets_register(variants=[variant])[variant.key]
    fresh = ref.mark_id + 1  # finalising drew it: the picture could not carry the asset's own
    made = GeneratedFile(
        key=variant.key,
        file_path="masters/aa/a.png",
        thumb_path="thumbnails/aa/a.jpg",
        mime="image/png",
        sha256="0" * 64,
        size=1,
        mark_id=fresh,
    )
    assert assets_hand_over(files=[made]) == [ref.serial]
    assert Asset.objects.get(pk=ref.serial).mark_id == fresh
    # Without one, the asset keeps the mark id it was registered with.
    untouched = reviewable_assets[1]
    assert Asset.objects.get(pk=untouched.pk).mark_id == untouched.mark_id


def test_a_failed_generation_is_recorded_and_can_be_handed_over_on_retry(reviewable_assets: list[Asset]) -> None:
    variant = campaign_plan_get(name="demo-spring").variants[5]
    assets_register(variants=[variant])
    asset_generation_fail(key=variant.key, error="RuntimeError: out of memory")
    failed = Asset.objects.get(key=variant.key)
    assert (failed.state, failed.error) == (AssetState.FAILED, "RuntimeError: out of memory")
    assert actions_of(failed) == ["registered", "generation_failed"]


# --- The manifest store -----------------------------------------------------------------


def test_hand_over_stores_the_master_and_thumbnail_manifests_as_read_back(reviewable_assets: list[Asset]) -> None:
    storage = LocalStorage(provenance_config_from_settings().storage_root)
    with reader_context(provenance_config_from_settings().signing) as context:
        for asset in reviewable_assets:
            records = {r.kind: r for r in ManifestRecord.objects.filter(asset=asset)}
            assert sorted(records) == ["master", "thumbnail"]
            for kind, path, mime in (
                ("master", asset.file_path, "image/png"),
                ("thumbnail", asset.thumb_path, "image/jpeg"),
            ):
                data = storage.read(path)
                report = c2pa_read(data, mime=mime, context=context)
                record = records[kind]
                assert record.mime == mime
                assert record.label == report.active_label == record.store["active_manifest"]
                assert record.store["validation_state"] == "Trusted"
                assert record.sha256 == hashlib.sha256(data).hexdigest()
            assert records["master"].sha256 == asset.file_sha256


def test_handing_the_same_files_over_again_stores_nothing_more(reviewable_assets: list[Asset]) -> None:
    asset = reviewable_assets[0]
    record = ManifestRecord.objects.get(asset=asset, kind="master")
    again = GeneratedFile(
        key=asset.key,
        file_path=asset.file_path,
        thumb_path=asset.thumb_path,
        mime=asset.mime,
        sha256=asset.file_sha256,
        size=asset.file_size or 0,
        manifests=(),
    )

    assert assets_hand_over(files=[again]) == []
    assert ManifestRecord.objects.filter(asset=asset).count() == 2
    assert ManifestRecord.objects.get(asset=asset, kind="master") == record


def _announce_later(*run_ids: int, after: float = 0.3) -> threading.Thread:
    """Announce a change of each of ``run_ids``, each in its own committed transaction, from
    another thread (another database connection) ``after`` seconds from now."""

    def announce() -> None:
        try:
            time.sleep(after)
            for run_id in run_ids:
                with transaction.atomic():
                    run_changed_notify(run_id=run_id)
        finally:
            connection.close()

    thread = threading.Thread(target=announce)
    thread.start()
    return thread


@pytest.mark.django_db(transaction=True)
def test_a_change_announced_for_the_run_ends_its_wait_at_once() -> None:
    with RunChanges(41) as changes:
        announcer = _announce_later(7, 41)  # another run's change first: it does not end the wait
        started = time.monotonic()
        assert changes.wait(30.0)
        waited = time.monotonic() - started
        announcer.join()
    assert 0.25 <= waited < 10.0


@pytest.mark.django_db(transaction=True)
def test_a_wait_with_no_change_of_its_run_lasts_its_time() -> None:
    with RunChanges(41) as changes:
        announcer = _announce_later(7, after=0.1)
        started = time.monotonic()
        assert not changes.wait(0.8)
        waited = time.monotonic() - started
        announcer.join()
    assert waited >= 0.75


@pytest.mark.django_db(transaction=True)
def test_a_change_rolled_back_is_never_announced() -> None:
    with RunChanges(41) as changes:
        with pytest.raises(RuntimeError), transaction.atomic():
            run_changed_notify(run_id=41)
            raise RuntimeError("the hand-over failed")
        assert not changes.wait(0.5)
