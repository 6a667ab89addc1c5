"""Login throttling (django-axes): after GREENLIGHT_LOGIN_FAILURE_LIMIT failed logins (5) for one
username from one address, that pair is refused with HTTP 429, the right password included, until
the cool-off passes or an admin unlocks it; lockouts and unlocks go to the audit log."""

from __future__ import annotations

from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.contrib.auth.models import User
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from review.audit import AuditAction
from review.models import AuditEvent
from review.signals import client_address
from tests.factories import make_user
from tests.fixture_types import SettingsWrapper

pytestmark = pytest.mark.django_db

PASSWORD = "pw-for-tests"  # tests.factories.make_user's


def _attempt(client: Client, username: str, password: str, *, url: str = "/login/") -> int:
    return client.post(url, {"username": username, "password": password}).status_code


def _lock_out(client: Client, username: str, *, url: str = "/login/") -> list[int]:
    return [_attempt(client, username, f"wrong-{i}", url=url) for i in range(5)]


def _logged_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


def _events(action: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action).order_by("id"))


def test_five_wrong_passwords_lock_out_the_right_one_with_429_and_the_lockout_is_audited() -> None:
    make_user(username="lena")
    client = Client(REMOTE_ADDR="10.0.0.5")

    # Four failures get the form back; the fifth is answered with the lockout page.
    assert _lock_out(client, "lena") == [200, 200, 200, 200, 429]
    response = client.post("/login/", {"username": "lena", "password": PASSWORD})
    assert response.status_code == 429
    assert "Too many failed sign-ins" in response.content.decode()
    assert "Try again in 15 minutes" in response.content.decode()
    assert response["Retry-After"] == str(15 * 60)
    assert not _logged_in(client)
    assert client.get("/").status_code == 302  # still anonymous: the queue sends to the login page

    (lockout,) = _events(AuditAction.LOCKED_OUT)  # one lockout, however many refused attempts follow
    assert lockout.actor is None
    assert lockout.detail["username"] == "lena" and lockout.detail["ip"] == "10.0.0.5"
    assert lockout.detail["failures"] == 5 and lockout.detail["cooloff_minutes"] == 15
    # Every attempt, the refused right password too, is a failed login; none logged in.
    assert len(_events(AuditAction.LOGIN_FAILED)) == 6
    assert _events(AuditAction.LOGGED_IN) == []
    assert PASSWORD not in str([e.detail for e in AuditEvent.objects.all()])


def test_the_admin_login_is_throttled_too() -> None:
    User.objects.create_superuser("root", password=PASSWORD)
    client = Client(REMOTE_ADDR="10.0.0.7")
    assert _lock_out(client, "root", url="/admin/login/")[-1] == 429
    assert _attempt(client, "root", PASSWORD, url="/admin/login/") == 429
    assert not _logged_in(client)
    assert _events(AuditAction.LOCKED_OUT)[0].detail["username"] == "root"


def test_axes_reset_unlocks_the_right_password_and_the_unlock_is_audited() -> None:
    make_user(username="lena")
    client = Client(REMOTE_ADDR="10.0.0.5")
    _lock_out(client, "lena")
    assert _attempt(client, "lena", PASSWORD) == 429

    call_command("axes_reset")

    assert _attempt(client, "lena", PASSWORD) == 302
    assert _logged_in(client)
    (unlock,) = _events(AuditAction.UNLOCKED)
    assert unlock.detail["username"] == "lena" and unlock.detail["ip"] == "10.0.0.5"
    assert unlock.detail["reason"] == "reset"
    actions = list(AuditEvent.objects.filter(asset=None).order_by("id").values_list("action", flat=True))
    assert actions[-2:] == [AuditAction.UNLOCKED, AuditAction.LOGGED_IN]


def test_the_right_password_works_once_the_cooloff_has_passed_and_the_unlock_is_audited() -> None:
    make_user(username="lena")
    client = Client(REMOTE_ADDR="10.0.0.5")
    _lock_out(client, "lena")
    assert _attempt(client, "lena", PASSWORD) == 429

    # Sixteen minutes pass since the last failure (the counter's clock moved back).
    AccessAttempt.objects.update(attempt_time=timezone.now() - timedelta(minutes=16))

    assert _attempt(client, "lena", PASSWORD) == 302
    (unlock,) = _events(AuditAction.UNLOCKED)
    assert unlock.detail["reason"] == "cooloff_expired"
    assert _events(AuditAction.LOGGED_IN)[-1].id > unlock.id


def test_a_new_failure_after_an_unlock_starts_a_new_count_and_a_new_lockout_is_recorded() -> None:
    make_user(username="lena")
    client = Client(REMOTE_ADDR="10.0.0.5")
    _lock_out(client, "lena")
    call_command("axes_reset")
    assert _lock_out(client, "lena") == [200, 200, 200, 200, 429]
    assert len(_events(AuditAction.LOCKED_OUT)) == 2
    assert len(_events(AuditAction.UNLOCKED)) == 1


def test_other_users_and_other_addresses_are_not_locked_out() -> None:
    make_user(username="lena")
    make_user(username="sam")
    _lock_out(Client(REMOTE_ADDR="10.0.0.5"), "lena")

    # Another user failing from another address gets the form back, then logs in.
    other = Client(REMOTE_ADDR="10.0.0.6")
    assert _attempt(other, "sam", "wrong") == 200
    assert _attempt(other, "sam", PASSWORD) == 302
    # The lockout is by username and address together: lena elsewhere, and sam from lena's
    # address, are not locked out.
    assert _attempt(Client(REMOTE_ADDR="10.0.0.9"), "lena", PASSWORD) == 302
    assert _attempt(Client(REMOTE_ADDR="10.0.0.5"), "sam", PASSWORD) == 302
    assert len(_events(AuditAction.LOCKED_OUT)) == 1


def test_an_unlock_in_the_admin_is_audited_with_who_did_it() -> None:
    make_user(username="lena")
    _lock_out(Client(REMOTE_ADDR="10.0.0.5"), "lena")
    admin_user = User.objects.create_superuser("root", password=PASSWORD)
    admin = Client()
    admin.force_login(admin_user)
    attempt = AccessAttempt.objects.get(username="lena")

    response = admin.post(f"/admin/axes/accessattempt/{attempt.pk}/delete/", {"post": "yes"})

    assert response.status_code == 302
    (unlock,) = _events(AuditAction.UNLOCKED)
    assert unlock.detail["username"] == "lena" and unlock.detail["reason"] == "reset"
    deleted = _events(AuditAction.ADMIN_DELETED)[-1]
    assert deleted.actor == admin_user and deleted.detail["model"] == "axes.accessattempt"
    assert _attempt(Client(REMOTE_ADDR="10.0.0.5"), "lena", PASSWORD) == 302


def test_the_limit_and_cooloff_follow_the_settings(settings: SettingsWrapper) -> None:
    settings.AXES_FAILURE_LIMIT = 2
    settings.AXES_COOLOFF_TIME = timedelta(minutes=1)
    make_user(username="lena")
    client = Client(REMOTE_ADDR="10.0.0.5")
    assert [_attempt(client, "lena", "wrong") for _ in range(2)] == [200, 429]
    response = client.post("/login/", {"username": "lena", "password": PASSWORD})
    assert response.status_code == 429 and response["Retry-After"] == "60"
    assert "Try again in 1 minute." in response.content.decode()


def test_behind_proxies_the_address_is_the_one_the_outermost_proxy_saw(settings: SettingsWrapper) -> None:
    """GREENLIGHT_PROXY_COUNT=1: the proxy appends the address it was reached from; what the
    client wrote further left in X-Forwarded-For is ignored, so it cannot dodge the lockout."""
    settings.GREENLIGHT_PROXY_COUNT = 1
    make_user(username="lena")
    proxy = "10.9.9.9"
    for i in range(5):
        client = Client(REMOTE_ADDR=proxy, HTTP_X_FORWARDED_FOR=f"198.51.100.{i}, 203.0.113.7")
        _attempt(client, "lena", "wrong")
    locked = Client(REMOTE_ADDR=proxy, HTTP_X_FORWARDED_FOR="192.0.2.200, 203.0.113.7")
    assert _attempt(locked, "lena", PASSWORD) == 429
    assert _events(AuditAction.LOCKED_OUT)[0].detail["ip"] == "203.0.113.7"
    # Another client behind the same proxy is another address.
    assert _attempt(Client(REMOTE_ADDR=proxy, HTTP_X_FORWARDED_FOR="203.0.113.8"), "lena", PASSWORD) == 302


def test_the_client_address_ignores_forwarded_headers_unless_proxies_are_configured(
    settings: SettingsWrapper,
) -> None:
    from django.test import RequestFactory

    request = RequestFactory().get("/", REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="1.2.3.4, 5.6.7.8")
    settings.GREENLIGHT_PROXY_COUNT = 0
    assert client_address(request) == "10.0.0.1"
    settings.GREENLIGHT_PROXY_COUNT = 2
    assert client_address(request) == "1.2.3.4"
    settings.GREENLIGHT_PROXY_COUNT = 3  # fewer entries than proxies: the header cannot be trusted
    assert client_address(request) == "10.0.0.1"
    settings.GREENLIGHT_PROXY_COUNT = 1
    for forwarded in ("not-an-address", "1.2.3.4, ", "1.2.3.4, 5.6.7.8:443"):
        request.META["HTTP_X_FORWARDED_FOR"] = forwarded
        assert client_address(request) == "10.0.0.1"


def test_a_malformed_forwarded_address_is_answered_not_a_server_error(settings: SettingsWrapper) -> None:
    settings.GREENLIGHT_PROXY_COUNT = 1
    make_user(username="lena")
    client = Client(REMOTE_ADDR="10.9.9.9", HTTP_X_FORWARDED_FOR="<script>")
    assert _attempt(client, "lena", "wrong") == 200
    assert _attempt(client, "lena", PASSWORD) == 302
