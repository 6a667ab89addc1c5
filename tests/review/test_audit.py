"""The audit log: its vocabulary (one past-tense name per action, older spellings read under
today's name) and its table, which the database keeps append-only."""

from __future__ import annotations

import pytest
from django.db import DatabaseError, transaction

from review.audit import LEGACY_ACTIONS, AuditAction, audit_action_current, audit_action_spellings
from review.models import Asset, AuditEvent
from tests.factories import AssetFactory

pytestmark = pytest.mark.django_db


def test_the_database_refuses_to_change_an_audit_event(reviewable_assets: list[Asset]) -> None:
    event = AuditEvent.objects.filter(asset=reviewable_assets[0]).first()
    assert event is not None
    with pytest.raises(DatabaseError, match="append-only: UPDATE refused"), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).update(action=AuditAction.APPROVED)
    assert AuditEvent.objects.get(pk=event.pk).action == event.action


def test_the_database_refuses_to_delete_an_audit_event(reviewable_assets: list[Asset]) -> None:
    count = AuditEvent.objects.count()
    with pytest.raises(DatabaseError, match="append-only: DELETE refused"), transaction.atomic():
        AuditEvent.objects.filter(asset=reviewable_assets[0]).delete()
    assert AuditEvent.objects.count() == count


def test_new_events_can_still_be_written(reviewable_assets: list[Asset]) -> None:
    AuditEvent.objects.create(asset=reviewable_assets[0], action=AuditAction.COMMENTED, detail={"comment": "ok"})
    assert AuditEvent.objects.filter(action=AuditAction.COMMENTED).count() == 1


# --- The vocabulary -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("old", "today"),
    [("approve", "approved"), ("reject", "rejected"), ("login", "logged_in"), ("logout", "logged_out")],
)
def test_an_older_spelling_reads_as_todays_name(old: str, today: str) -> None:
    assert audit_action_current(old) == today
    assert audit_action_current(today) == today
    assert audit_action_spellings(old) == audit_action_spellings(today) == (today, old)


def test_other_actions_have_one_spelling_and_unknown_ones_are_kept() -> None:
    assert audit_action_spellings(AuditAction.PUBLISHED) == ("published",)
    assert audit_action_current("something_else") == "something_else"
    assert audit_action_spellings("something_else") == ("something_else",)


def test_older_spellings_are_not_todays_names_and_each_means_one_of_them() -> None:
    assert not set(LEGACY_ACTIONS) & set(AuditAction.values)
    assert set(LEGACY_ACTIONS.values()) <= set(AuditAction)


def test_an_old_row_keeps_its_spelling_and_reads_under_todays_name() -> None:
    old = AuditEvent.objects.create(asset=AssetFactory.create(), action="reject", to_state="rejected")
    assert (old.action, old.action_name) == ("reject", "rejected")
    assert str(old).startswith("rejected asset ")
    with pytest.raises(DatabaseError, match="append-only: UPDATE refused"), transaction.atomic():
        AuditEvent.objects.filter(pk=old.pk).update(action=AuditAction.REJECTED)
    assert AuditEvent.objects.get(pk=old.pk).action == "reject"
