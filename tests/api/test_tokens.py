"""Personal API tokens: stored hashed, shown once, named, expiring, revocable; made on the API
tokens page, in the admin and with `manage.py token_create`."""

from __future__ import annotations

import hashlib
import io
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone

from api.models import ApiToken
from api.tokens import (
    LAST_USED_EVERY,
    TokenInputError,
    api_token_authenticate,
    api_token_create,
    api_token_revoke,
)
from tests.api.conftest import ApiClient
from tests.factories import make_user

pytestmark = pytest.mark.django_db


def test_a_token_is_stored_only_as_the_hash_of_its_secret() -> None:
    user = make_user(roles=("reviewer",))
    created = api_token_create(user=user, name="dam-sync", days=30)
    prefix, secret = created.plaintext.removeprefix("gl_").split("_", 1)
    row = ApiToken.objects.get(pk=created.token.pk)
    assert row.prefix == prefix
    assert row.secret_sha256 == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in str(ApiToken.objects.filter(pk=row.pk).values().get())
    assert timedelta(days=29, hours=23) < row.expires_at - row.created_at <= timedelta(days=30)  # type: ignore[operator]
    assert api_token_authenticate(created.plaintext) == user


def test_last_use_is_recorded_at_most_once_a_minute() -> None:
    created = api_token_create(user=make_user(roles=("reviewer",)), name="ci")
    now = timezone.now()
    api_token_authenticate(created.plaintext, now=now)
    api_token_authenticate(created.plaintext, now=now + LAST_USED_EVERY / 2)
    assert ApiToken.objects.get(pk=created.token.pk).last_used_at == now
    later = now + LAST_USED_EVERY
    api_token_authenticate(created.plaintext, now=later)
    assert ApiToken.objects.get(pk=created.token.pk).last_used_at == later


def test_an_inactive_user_s_token_stops_working() -> None:
    user = make_user(roles=("reviewer",))
    created = api_token_create(user=user, name="ci")
    user.is_active = False
    user.save()
    assert api_token_authenticate(created.plaintext) is None


def test_a_name_and_lifetime_are_checked() -> None:
    user = make_user(roles=("reviewer",))
    with pytest.raises(TokenInputError, match="name needs 1 to 100"):
        api_token_create(user=user, name="  ")
    with pytest.raises(TokenInputError, match="days must be 1 to 3650"):
        api_token_create(user=user, name="x", days=0)


def test_only_its_owner_or_an_admin_revokes_a_token() -> None:
    owner, other = make_user(username="owner"), make_user(username="other")
    created = api_token_create(user=owner, name="x")
    with pytest.raises(ApiToken.DoesNotExist):
        api_token_revoke(token=created.token, user=other)
    api_token_revoke(token=created.token, user=owner)
    assert api_token_authenticate(created.plaintext) is None


def test_the_tokens_page_makes_shows_once_lists_and_revokes() -> None:
    user = make_user(roles=("reviewer",), username="tina")
    browser = Client(HTTP_HOST="127.0.0.1")
    browser.force_login(user)
    page = browser.get("/tokens/")
    assert page.status_code == 200 and b"You have no tokens yet" in page.content
    assert b'id="nav-tokens"' in page.content  # the nav link
    made = browser.post("/tokens/", {"name": "dam-sync", "days": "7"})
    assert made.status_code == 200
    token = made.context["created"].plaintext
    assert token.encode() in made.content
    assert ApiClient(token).get("/assets").status_code == 200
    listed = browser.get("/tokens/")
    assert token.encode() not in listed.content  # shown once
    assert b"dam-sync" in listed.content and b"active" in listed.content
    refused = browser.post("/tokens/", {"name": "", "days": "²"})
    assert refused.status_code == 400 and b"No token made" in refused.content
    row = ApiToken.objects.get(user=user)
    assert browser.post(f"/tokens/{row.prefix}/revoke").status_code == 302
    assert ApiClient(token).get("/assets").status_code == 401
    stranger = Client(HTTP_HOST="127.0.0.1")
    stranger.force_login(make_user(username="sam"))
    assert stranger.post(f"/tokens/{row.prefix}/revoke").status_code == 404


def test_token_create_command_prints_the_token_once() -> None:
    make_user(roles=("publisher",), username="ci-bot")
    out, err = io.StringIO(), io.StringIO()
    call_command("token_create", "ci-bot", "--name", "nightly", "--days", "90", stdout=out, stderr=err)
    token = out.getvalue().strip()
    assert token.startswith("gl_") and "nightly" in err.getvalue()
    assert ApiClient(token).get("/assets").status_code == 200
    with pytest.raises(CommandError, match="No user 'ghost'"):
        call_command("token_create", "ghost", "--name", "x", stdout=out, stderr=err)
    with pytest.raises(CommandError, match="days must be"):
        call_command("token_create", "ci-bot", "--name", "x", "--days", "0", stdout=out, stderr=err)


def test_an_admin_makes_a_token_and_sees_it_once() -> None:
    admin = make_user(username="root", is_staff=True, is_superuser=True)
    user = make_user(roles=("reviewer",), username="ursula")
    browser = Client(HTTP_HOST="127.0.0.1")
    browser.force_login(admin)
    response = browser.post(
        "/admin/api/apitoken/add/", {"user": user.pk, "name": "from-admin", "expires_at_0": "", "expires_at_1": ""}
    )
    assert response.status_code == 302, response.content[:2000]
    shown = [str(m) for m in response.wsgi_request._messages]  # type: ignore[attr-defined]
    token = next(m.split(": ")[-1] for m in shown if "shown only now" in m)
    row = ApiToken.objects.get(name="from-admin")
    assert row.user == user and token.startswith(f"gl_{row.prefix}_")
    assert ApiClient(token).get("/assets").status_code == 200
