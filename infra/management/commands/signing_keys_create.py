"""Create the signing chain (root CA -> intermediate -> signer) and the watermark key outside the
repository, or rotate both (`--rotate`) keeping everything signed and marked before readable."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from infra.dev_certs import ALGORITHMS, DEFAULT_ALGORITHM, dev_chain_create, dev_chain_rotate
from provenance.config import provenance_config_from_settings
from provenance.errors import SigningError
from provenance.keys import SigningFiles, signing_files_check
from provenance.watermark_keys import watermark_key_create, watermark_keys_ensure, watermark_keys_load


class Command(BaseCommand):
    help = (
        "Create a development C2PA certificate chain and a secret watermark key where the settings point "
        "(if missing); --rotate replaces both, keeping earlier roots trusted and earlier watermark keys readable."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--force", action="store_true", help="replace an existing chain")
        parser.add_argument(
            "--rotate",
            action="store_true",
            help="new chain and new watermark key; earlier roots stay trust anchors, earlier watermark keys stay read",
        )
        parser.add_argument("--days", type=int, default=365, help="validity of the certificates")
        parser.add_argument(
            "--algorithm",
            choices=sorted(ALGORITHMS),
            default=DEFAULT_ALGORITHM,
            help=f"the keys of a new chain (default {DEFAULT_ALGORITHM}: the fastest to sign and to check)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        config = provenance_config_from_settings()
        files = config.signing
        if options["rotate"] and options["force"]:
            raise CommandError(
                "--rotate and --force do not go together: --rotate keeps the earlier roots, --force does not"
            )
        if options["rotate"]:
            self._rotate(files, days=options["days"], algorithm=options["algorithm"])
        else:
            self._chain(files, days=options["days"], force=options["force"], algorithm=options["algorithm"])
        try:
            ring, created = watermark_keys_ensure(config.watermark_keys)
        except SigningError as exc:
            raise CommandError(str(exc)) from exc
        if options["rotate"] and not config.watermark_keys.callback:
            new_id = watermark_key_create(config.watermark_keys.directory)
            ring = watermark_keys_load(config.watermark_keys)
            self.stdout.write(
                self.style.SUCCESS(
                    f"New watermark key {new_id} is current; earlier keys still read: {', '.join(ring.key_ids[1:])}"
                )
            )
        elif created:
            self.stdout.write(
                self.style.SUCCESS(f"Created watermark key {ring.current.key_id} in {config.watermark_keys.directory}")
            )
        else:
            where = config.watermark_keys.callback or config.watermark_keys.directory
            self.stdout.write(f"Watermark key {ring.current.key_id} already present ({where})")

    def _chain(self, files: SigningFiles, *, days: int, force: bool, algorithm: str) -> None:
        if files.chain.exists() and files.key.exists() and files.trust_anchors.exists() and not force:
            try:
                signing_files_check(files)
            except SigningError as exc:
                raise CommandError(
                    f"{exc} (run with --rotate to replace the chain keeping its root trusted for the files it "
                    "signed, or --force to replace it outright)"
                ) from exc
            self.stdout.write(f"Signing chain already present in {files.chain.parent}")
            return
        self._one_folder(files)
        created = dev_chain_create(files.chain.parent, days=days, overwrite=force, algorithm=algorithm)
        if (created.chain, created.key, created.trust_anchors) != (files.chain, files.key, files.trust_anchors):
            raise CommandError(f"the development chain was written as {created}, but the settings expect {files}")
        self.stdout.write(
            self.style.SUCCESS(f"Created a development signing chain ({algorithm}) in {files.chain.parent}")
        )

    def _rotate(self, files: SigningFiles, *, days: int, algorithm: str) -> None:
        if files.callback:
            raise CommandError(
                "GREENLIGHT_SIGNING_CALLBACK is set: the key is in a KMS/HSM; rotate it there and append the old "
                f"root to {files.trust_anchors}"
            )
        self._one_folder(files)
        try:
            created = dev_chain_rotate(files.chain.parent, days=days, algorithm=algorithm)
        except SigningError as exc:
            raise CommandError(str(exc)) from exc
        roots = len(created.trust_anchors.read_bytes().split(b"-----BEGIN CERTIFICATE-----")) - 1
        self.stdout.write(
            self.style.SUCCESS(
                f"Rotated the signing chain in {files.chain.parent}: a new root and signer; {roots} roots trusted"
            )
        )

    @staticmethod
    def _one_folder(files: SigningFiles) -> None:
        if len({files.chain.parent, files.key.parent, files.trust_anchors.parent}) != 1:
            raise CommandError(
                "GREENLIGHT_SIGNING_CHAIN, GREENLIGHT_SIGNING_KEY and GREENLIGHT_TRUST_ANCHORS must share "
                "one folder to create a development chain"
            )
