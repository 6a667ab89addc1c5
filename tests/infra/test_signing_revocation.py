"""`signing_keys_revoke`: one of the installation's own signing certificates onto its revocation
list, with the time and the reason, audited; the current one then signs nothing until a rotation,
and mistakes (an unknown serial, a time in the future or without a zone, twice) are refused."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from django.core.management import CommandError

from provenance.config import provenance_config_from_settings
from provenance.errors import SigningError
from provenance.keys import signer_create, signing_files_check
from review.audit import AuditAction
from review.models import AuditEvent
from tests.infra.commands import run

pytestmark = pytest.mark.django_db


@pytest.fixture
def keys_dir(keys_dir: Path) -> Path:
    """The signing files' folder, with a development chain made in it."""
    run("signing_keys_create")
    return keys_dir


def current_serial(keys: Path) -> str:
    return str(x509.load_pem_x509_certificates((keys / "chain.pem").read_bytes())[0].serial_number)


def test_revoking_the_current_certificate_lists_and_audits_it_and_stops_signing_until_a_rotation(
    keys_dir: Path,
) -> None:
    serial = current_serial(keys_dir)
    assert "No signing certificate is revoked" in run("signing_keys_revoke", "--list")

    said = run("signing_keys_revoke", "--current", "--reason", "keyCompromise")

    assert f"Revoked signing certificate {serial}" in said and "signing_keys_create --rotate" in said
    listed = json.loads((keys_dir / "revoked.json").read_text())["revoked"]
    assert [(entry["serial"], entry["reason"]) for entry in listed] == [(serial, "keyCompromise")]
    event = AuditEvent.objects.get(action=AuditAction.SIGNING_KEY_REVOKED)
    assert event.detail["serial"] == serial and event.detail["reason"] == "keyCompromise"
    assert event.detail["certificate"] == "current" and event.asset is None
    assert serial in run("signing_keys_revoke", "--list")
    files = provenance_config_from_settings().signing
    with pytest.raises(SigningError, match=f"certificate {serial} .*revoked at"):
        signer_create(files)
    with pytest.raises(CommandError, match="revoked at"):  # the plain command does not paper over it
        run("signing_keys_create")

    run("signing_keys_create", "--rotate")

    signing_files_check(provenance_config_from_settings().signing)  # a new certificate signs again
    assert current_serial(keys_dir) != serial


def test_an_earlier_certificate_is_revoked_from_the_time_given(keys_dir: Path) -> None:
    earlier = current_serial(keys_dir)
    run("signing_keys_create", "--rotate")
    leaked = datetime.now(UTC) - timedelta(days=2)

    said = run("signing_keys_revoke", "--serial", earlier, "--at", leaked.isoformat(), "--reason", "superseded")

    assert "earlier, retired" in said and "nothing can be signed" not in said
    (entry,) = json.loads((keys_dir / "revoked.json").read_text())["revoked"]
    assert datetime.fromisoformat(entry["revoked_at"]) == leaked and entry["reason"] == "superseded"
    signing_files_check(provenance_config_from_settings().signing)  # the current certificate still signs


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--serial", "12345"), "--serial 12345 is not one of this installation's signing certificates"),
        (("--current", "--at", "2020-01-01T00:00:00"), "needs a time zone"),
        (("--current", "--at", "last tuesday"), "'last tuesday' is not an ISO 8601 time"),
        (("--current", "--at", "2999-01-01T00:00:00+00:00"), "is in the future"),
    ],
)
def test_mistakes_are_refused_naming_the_value_and_change_nothing(
    keys_dir: Path, args: tuple[str, ...], message: str
) -> None:
    with pytest.raises(CommandError, match=message):
        run("signing_keys_revoke", *args)

    assert not (keys_dir / "revoked.json").exists()
    assert not AuditEvent.objects.filter(action=AuditAction.SIGNING_KEY_REVOKED).exists()


def test_a_certificate_is_revoked_once(keys_dir: Path) -> None:
    run("signing_keys_revoke", "--current")

    with pytest.raises(CommandError, match=r"revoked at .* already"):
        run("signing_keys_revoke", "--current")
    assert AuditEvent.objects.filter(action=AuditAction.SIGNING_KEY_REVOKED).count() == 1


def test_a_damaged_revocation_list_is_named_not_read_as_empty(keys_dir: Path) -> None:
    (keys_dir / "revoked.json").write_text('{"revoked": [{"serial": "1"}]}')

    with pytest.raises(CommandError, match=re.escape(f"Revocation list {keys_dir / 'revoked.json'} is damaged")):
        run("signing_keys_revoke", "--list")
    with pytest.raises(SigningError, match="is damaged"):
        signing_files_check(provenance_config_from_settings().signing)
