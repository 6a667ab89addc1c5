"""Revoke one of this installation's own signing certificates (a leaked key, a retired
organisation): it is added to the revocation list beside the chain, with its time and reason, and
the revocation is recorded in the audit log. From then on it signs nothing, and `verify` reports
a file it signed as "revoked" unless a trusted timestamp proves the file was signed before."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from provenance.config import provenance_config_from_settings
from provenance.errors import SigningError
from provenance.keys import certificate_subject, signing_certificates_listed
from provenance.revocation import REVOCATION_REASONS, Revocation, revocation_add, revocations_load
from review.audit import AuditAction
from review.events import audit_event_build


class Command(BaseCommand):
    help = (
        "Revoke one of this installation's signing certificates (by serial, or the current one): it signs "
        "nothing more, and verify reports the files it signed as revoked unless a trusted timestamp dates them "
        "before the revocation. --list shows the revocation list."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        which = parser.add_mutually_exclusive_group(required=True)
        which.add_argument("--serial", help="the certificate's serial number, in decimal (as verify names it)")
        which.add_argument("--current", action="store_true", help="the certificate that signs now")
        which.add_argument("--list", action="store_true", help="show the revoked certificates and change nothing")
        parser.add_argument(
            "--reason", choices=REVOCATION_REASONS, default="keyCompromise", help="why (default: keyCompromise)"
        )
        parser.add_argument(
            "--at",
            help="revoked from this time (ISO 8601 with a time zone, e.g. when the key leaked; default: now)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        files = provenance_config_from_settings().signing
        try:
            revoked = revocations_load(files.revocation_list)
        except SigningError as error:
            raise CommandError(str(error)) from error
        if options["list"]:
            for revocation in revoked.values():
                self.stdout.write(revocation.describe())
            if not revoked:
                self.stdout.write(f"No signing certificate is revoked ({files.revocation_list} holds none)")
            return

        known = signing_certificates_listed(files)
        if options["current"]:
            current = [serial for serial, (label, _) in known.items() if label == "current"]
            if not current:
                raise CommandError(f"No current signing certificate to revoke: {files.chain} cannot be read")
            serial = current[0]
        else:
            serial = str(options["serial"]).strip()
            if serial not in known:
                listed = ", ".join(f"{s} ({label})" for s, (label, _) in known.items()) or "none"
                raise CommandError(
                    f"--serial {serial} is not one of this installation's signing certificates (known: {listed})"
                )
        label, certificate = known[serial]
        revocation = Revocation(
            serial=serial,
            revoked_at=self._time(options["at"]),
            reason=options["reason"],
            subject=certificate_subject(certificate),
        )
        try:
            # The audit row and the list go together: a list that cannot be written rolls the row back.
            with transaction.atomic():
                audit_event_build(
                    None,
                    AuditAction.SIGNING_KEY_REVOKED,
                    serial=serial,
                    subject=revocation.subject,
                    certificate=label,
                    revoked_at=revocation.revoked_at.isoformat(),
                    reason=revocation.reason,
                ).save()
                revocation_add(files.revocation_list, revocation)
        except SigningError as error:
            raise CommandError(str(error)) from error
        self.stdout.write(self.style.SUCCESS(f"Revoked signing {revocation.describe()}, the {label} one."))
        self.stdout.write(
            "Files it signed now verify as revoked, unless a trusted timestamp dates them before the revocation."
        )
        if label == "current":
            self.stdout.write(
                self.style.WARNING(
                    "It was the current signing certificate: nothing can be signed until a new one is installed "
                    "(`manage.py signing_keys_create --rotate` makes a new development chain)."
                )
            )

    @staticmethod
    def _time(value: str | None) -> datetime:
        if not value:
            return datetime.now(UTC)
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise CommandError(f"--at {value!r} is not an ISO 8601 time (e.g. 2026-03-01T09:30:00+00:00)") from None
        if moment.tzinfo is None:
            raise CommandError(f"--at {value!r} needs a time zone (e.g. +00:00 or Z)")
        return moment
