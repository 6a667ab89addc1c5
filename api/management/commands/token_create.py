"""`manage.py token_create USER --name N [--days D]`: a personal API token, printed once."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from api.tokens import TokenInputError, api_token_create


class Command(BaseCommand):
    help = "Make a personal API token for USER and print it (only its hash is kept)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--name", required=True, help="what the token is for, e.g. dam-sync")
        parser.add_argument("--days", type=int, default=None, help="expire after this many days (default: never)")

    def handle(self, *args: Any, username: str, name: str, days: int | None, **options: Any) -> None:
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"No user {username!r}")
        try:
            created = api_token_create(user=user, name=name, days=days)
        except TokenInputError as exc:
            raise CommandError(str(exc)) from exc
        expiry = created.token.expires_at.isoformat() if created.token.expires_at else "never"
        self.stderr.write(f"Token {created.token.name!r} ({created.token.prefix}) for {username}, expires {expiry}:")
        self.stdout.write(created.plaintext)
