"""Rows written many at a time through one JSON document: every value as its field prepares it,
quotes, backslashes and any script intact, in one statement, and nothing cut short."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from django.db import DataError, connection, transaction
from django.test.utils import CaptureQueriesContext

from review.bulk import rows_insert, rows_update
from review.models import Asset, AuditEvent, ManifestRecord

pytestmark = pytest.mark.django_db

AWKWARD = 'a "quoted" \\ back\\slash, it\'s ü 🎨 \n new line, \t tab'


def _statements(queries: CaptureQueriesContext, verb: str) -> int:
    return sum(1 for query in queries.captured_queries if query["sql"].startswith(verb))


def test_inserted_rows_get_their_keys_in_order_and_every_value_back(reviewable_assets: list[Asset]) -> None:
    asset = reviewable_assets[0]
    stores = [
        {"active_manifest": f"urn:c2pa:{i}", "text": AWKWARD, "nested": {"list": [1, 2.5, None, True]}}
        for i in range(5)
    ]
    rows = [
        ManifestRecord(
            asset=asset, kind=f"rendition:{i}", sha256=f"{i:064x}", mime="image/png", label=AWKWARD, store=store
        )
        for i, store in enumerate(stores)
    ]
    started = datetime.now(UTC)

    with CaptureQueriesContext(connection) as queries:
        rows_insert(rows)

    assert _statements(queries, "INSERT") == 1
    assert [row.pk for row in rows] == sorted(row.pk for row in rows) and all(row.pk for row in rows)
    assert all(not row._state.adding for row in rows)
    for row, store in zip(rows, stores, strict=True):
        stored = ManifestRecord.objects.get(pk=row.pk)
        assert (stored.kind, stored.sha256, stored.label, stored.store) == (row.kind, row.sha256, AWKWARD, store)
        assert stored.created_at == row.created_at and stored.created_at >= started  # auto_now_add filled in


def test_inserted_nulls_and_foreign_keys_stay_what_they_were(reviewable_assets: list[Asset]) -> None:
    events = [
        AuditEvent(asset=reviewable_assets[1], action="generated", from_state="pending", to_state="generated"),
        AuditEvent(asset=None, action="note", detail={"why": AWKWARD}),
    ]

    rows_insert(events)

    first, second = (AuditEvent.objects.get(pk=event.pk) for event in events)
    assert (first.asset_id, first.actor_id, first.detail) == (reviewable_assets[1].pk, None, {})
    assert (second.asset_id, second.detail) == (None, {"why": AWKWARD})


def test_a_row_with_a_key_is_refused_before_anything_is_written(reviewable_assets: list[Asset]) -> None:
    existing = AuditEvent.objects.filter(asset=reviewable_assets[0]).first()
    assert existing is not None
    before = AuditEvent.objects.count()

    with pytest.raises(ValueError, match="none with a primary key"):
        rows_insert([AuditEvent(asset=None, action="note"), existing])

    assert AuditEvent.objects.count() == before


def test_an_update_writes_the_named_fields_of_each_row_and_nothing_else(reviewable_assets: list[Asset]) -> None:
    first, second = reviewable_assets[:2]
    other_before = Asset.objects.get(pk=reviewable_assets[2].pk)
    when = datetime(2026, 3, 4, 5, 6, 7, 891011, tzinfo=timezone(timedelta(hours=-5)))
    first.alt_text, first.generation_record, first.generated_at, first.safety_score = (
        AWKWARD,
        {"k": AWKWARD},
        when,
        None,
    )
    second.alt_text, second.generation_record, second.generated_at, second.safety_score = "plain", {}, None, 0.25
    first.error = second.error = "not written"  # a field not named stays as stored

    with CaptureQueriesContext(connection) as queries:
        rows_update([first, second], ["alt_text", "generation_record", "generated_at", "safety_score"])

    assert _statements(queries, "UPDATE") == 1
    one, two = Asset.objects.get(pk=first.pk), Asset.objects.get(pk=second.pk)
    assert (one.alt_text, one.generation_record, one.generated_at, one.safety_score) == (
        AWKWARD,
        {"k": AWKWARD},
        when,
        None,
    )
    assert (two.alt_text, two.generation_record, two.generated_at, two.safety_score) == ("plain", {}, None, 0.25)
    assert one.error == two.error == ""
    other = Asset.objects.get(pk=reviewable_assets[2].pk)
    assert (other.alt_text, other.updated_at) == (other_before.alt_text, other_before.updated_at)


def test_a_value_too_long_for_its_column_is_refused_not_cut_short(reviewable_assets: list[Asset]) -> None:
    asset = reviewable_assets[0]
    stored = asset.file_path
    asset.file_path = "masters/" + "x" * 400  # the column holds 300

    with pytest.raises(DataError), transaction.atomic():
        rows_update([asset], ["file_path"])

    assert Asset.objects.get(pk=asset.pk).file_path == stored


def test_a_field_that_is_not_a_column_of_the_row_is_refused(reviewable_assets: list[Asset]) -> None:
    with pytest.raises(ValueError, match=r"cannot write Asset\.id"):
        rows_update(reviewable_assets[:1], ["id"])
