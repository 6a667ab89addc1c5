"""Security-relevant events copied into the audit log: logins, logouts, failed logins (never the
password), and every action taken in Django's admin."""

from __future__ import annotations

import pytest

from review.audit import AuditAction
from review.models import AuditEvent

pytestmark = pytest.mark.django_db


def test_a_login_and_a_failed_login_are_recorded_without_the_password() -> None:
    from django.test import Client

    from tests.factories import make_user

    user = make_user(roles=("reviewer",), username="lena")
    client = Client(REMOTE_ADDR="10.1.2.3")
    client.post("/login/", {"username": "lena", "password": "wrong-guess-123"})
    client.post("/login/", {"username": "lena", "password": "pw-for-tests"})
    client.post("/logout/")
    events = list(AuditEvent.objects.filter(asset=None).order_by("id"))
    assert [e.action for e in events] == ["login_failed", "logged_in", "logged_out"]
    assert events[0].detail == {"username": "lena", "ip": "10.1.2.3", "user_agent": ""}
    assert events[0].actor is None and events[1].actor == user and events[2].actor == user
    assert not AuditEvent.objects.filter(detail__icontains="wrong-guess").exists()
    assert "wrong-guess" not in str([e.detail for e in events])


def test_an_admin_action_is_copied_into_the_audit_log_with_who_did_it() -> None:
    from django.contrib.auth.models import Group, User
    from django.test import Client

    from tests.factories import make_user

    admin_user = User.objects.create_superuser("root", password="pw-for-tests")
    target = make_user(roles=("reviewer",), username="sam")
    client = Client()
    client.force_login(admin_user)
    publisher = Group.objects.get(name="publisher")
    response = client.post(
        f"/admin/auth/user/{target.pk}/change/",
        {
            "username": "sam",
            "is_active": "on",
            "groups": [g.pk for g in target.groups.all()] + [publisher.pk],
            "date_joined_0": "2026-01-01",
            "date_joined_1": "00:00:00",
            "initial-date_joined_0": "2026-01-01",
            "initial-date_joined_1": "00:00:00",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    event = AuditEvent.objects.get(action=AuditAction.ADMIN_CHANGED)
    assert event.actor == admin_user
    assert event.detail["model"] == "auth.user" and event.detail["object"] == "sam"
    assert "Groups" in event.detail["change"] or "groups" in event.detail["change"].lower()
