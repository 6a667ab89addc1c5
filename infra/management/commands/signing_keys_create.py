"""Create the development signing chain (root CA -> intermediate -> signer) outside the repo."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from infra.dev_certs import dev_chain_create
from provenance.config import provenance_config_from_settings
from provenance.errors import SigningError
from provenance.keys import signing_files_check


class Command(BaseCommand):
    help = "Create a development C2PA certificate chain where the signing settings point (if missing)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--force", action="store_true", help="replace an existing chain")
        parser.add_argument("--days", type=int, default=365, help="validity of the certificates")

    def handle(self, *args: Any, **options: Any) -> None:
        files = provenance_config_from_settings().signing
        if files.chain.exists() and files.key.exists() and files.trust_anchors.exists() and not options["force"]:
            try:
                signing_files_check(files)
            except SigningError as exc:
                raise CommandError(f"{exc} (run with --force to create a new development chain)") from exc
            self.stdout.write(f"Signing chain already present in {files.chain.parent}")
            return
        if len({files.chain.parent, files.key.parent, files.trust_anchors.parent}) != 1:
            raise CommandError(
                "GREENLIGHT_SIGNING_CHAIN, GREENLIGHT_SIGNING_KEY and GREENLIGHT_TRUST_ANCHORS must share "
                "one folder to create a development chain"
            )
        created = dev_chain_create(files.chain.parent, days=options["days"], overwrite=options["force"])
        if (created.chain, created.key, created.trust_anchors) != (files.chain, files.key, files.trust_anchors):
            raise CommandError(f"the development chain was written as {created}, but the settings expect {files}")
        self.stdout.write(self.style.SUCCESS(f"Created a development signing chain in {files.chain.parent}"))
