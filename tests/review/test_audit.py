from __future__ import annotations

import pytest
from django.db import DatabaseError, transaction

from review.models import Asset, AuditEvent

pytestmark = pytest.mark.django_db


def test_the_database_refuses_to_change_an_audit_event(reviewable_assets: list[Asset]) -> None:
    event = AuditEvent.objects.filter(asset=reviewable_assets[0]).first()
    assert event is not None
    with pytest.raises(DatabaseError, match="append-only: UPDATE refused"), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).update(action="approve")
    assert AuditEvent.objects.get(pk=event.pk).action == event.action


def test_the_database_refuses_to_delete_an_audit_event(reviewable_assets: list[Asset]) -> None:
    count = AuditEvent.objects.count()
    with pytest.raises(DatabaseError, match="append-only: DELETE refused"), transaction.atomic():
        AuditEvent.objects.filter(asset=reviewable_assets[0]).delete()
    assert AuditEvent.objects.count() == count


def test_new_events_can_still_be_written(reviewable_assets: list[Asset]) -> None:
    AuditEvent.objects.create(asset=reviewable_assets[0], action="comment", detail={"comment": "ok"})
    assert AuditEvent.objects.filter(action="comment").count() == 1
