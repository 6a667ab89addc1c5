"""Personal API tokens: made, listed, revoked and checked here, and nowhere else.

A token reads `gl_<prefix>_<secret>`: the prefix (8 hex digits) is stored as it is and finds the
row; only the sha256 of the secret (32 random bytes, URL-safe base64) is stored, so a database
copy holds no usable token. The whole token is returned once, by `api_token_create`.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from api.models import ApiToken

TOKEN_PREFIX = "gl_"
NAME_MAX = 100
DAYS_MAX = 3650
# last_used_at is written at most this often per token: a busy client costs no write per request.
LAST_USED_EVERY = timedelta(minutes=1)


class TokenInputError(ValueError):
    """A token's name or lifetime refused, naming the field and the value."""

    def __init__(self, field: str, value: object, problem: str) -> None:
        self.field = field
        self.value = value
        super().__init__(f"{field} {problem} (got {value!r})")


@dataclass(frozen=True)
class NewToken:
    """A token just made: its row and the whole token, which is never shown again."""

    token: ApiToken
    plaintext: str


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@transaction.atomic
def api_token_create(*, user: User, name: str, days: int | None = None, now: datetime | None = None) -> NewToken:
    """A new token for `user`, named `name`, expiring after `days` (None: never)."""
    name = name.strip()
    if not name or len(name) > NAME_MAX:
        raise TokenInputError("name", name, f"needs 1 to {NAME_MAX} characters")
    if days is not None and (isinstance(days, bool) or not 1 <= days <= DAYS_MAX):
        raise TokenInputError("days", days, f"must be 1 to {DAYS_MAX} days, or none for no expiry")
    now = now or timezone.now()
    while True:
        prefix = secrets.token_hex(4)
        if not ApiToken.objects.filter(prefix=prefix).exists():
            break
    secret = secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        user=user,
        name=name,
        prefix=prefix,
        secret_sha256=_digest(secret),
        expires_at=now + timedelta(days=days) if days else None,
    )
    return NewToken(token=token, plaintext=f"{TOKEN_PREFIX}{prefix}_{secret}")


def api_token_revoke(*, token: ApiToken, user: User) -> ApiToken:
    """Revoke one of `user`'s tokens (an admin may revoke anyone's); revoking twice keeps the
    first time."""
    if token.user_id != user.pk and not user.is_superuser:
        raise ApiToken.DoesNotExist(f"No token {token.prefix} of {user.get_username()}")
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
    return token


def api_token_list(*, user: User) -> list[ApiToken]:
    """The user's tokens, newest first."""
    return list(ApiToken.objects.filter(user=user).order_by("-created_at", "-id"))


def api_token_authenticate(plaintext: str, *, now: datetime | None = None) -> User | None:
    """The user a token belongs to, or None when it is malformed, unknown, revoked or expired
    (or its user is inactive). The secret is compared in constant time."""
    if not plaintext.startswith(TOKEN_PREFIX) or len(plaintext) > 200:
        return None
    prefix, sep, secret = plaintext[len(TOKEN_PREFIX) :].partition("_")
    if not sep or not prefix or not secret:
        return None
    token = ApiToken.objects.select_related("user").filter(prefix=prefix).first()
    if token is None or not hmac.compare_digest(token.secret_sha256, _digest(secret)):
        return None
    now = now or timezone.now()
    if not token.usable(now) or not token.user.is_active:
        return None
    if token.last_used_at is None or now - token.last_used_at >= LAST_USED_EVERY:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token.user
