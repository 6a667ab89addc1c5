from __future__ import annotations

import csv
import io

import pytest
from django.test import Client

from review.insight.refresh import insight_refresh
from tests.factories import make_user
from tests.review.insight.production import Production, production_build

pytestmark = pytest.mark.django_db


@pytest.fixture
def production() -> Production:
    built = production_build()
    insight_refresh(concurrently=False)
    return built


@pytest.fixture
def viewer(client: Client) -> Client:
    client.force_login(make_user(roles=("reviewer",), username="rita"))
    return client


def test_the_dashboard_draws_every_panel_as_svg_with_its_table(viewer: Client, production: Production) -> None:
    page = viewer.get("/insight/", {"a": production.v1.pk, "b": production.v2.pk})
    assert page.status_code == 200
    html = page.content.decode()
    for key in (
        "queue_depth",
        "throughput",
        "approval_version",
        "approval_variable",
        "reasons_day",
        "cost_model",
        "ab",
    ):
        assert f'id="panel-{key}"' in html
    assert html.count("<svg") >= 14 and "<script>" not in html  # no inline script: CSP default-src 'self'
    assert "no significant difference" in html
    assert 'id="past-deadline">1<' in html


def test_each_table_downloads_as_csv_with_the_filters(viewer: Client, production: Production) -> None:
    answer = viewer.get("/insight/approval_version.csv", {"campaign": production.summer.pk})
    assert answer.status_code == 200 and answer["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(answer.content.decode())))
    assert rows[0] == ["label", "approved", "rejected", "decided", "rate", "wilson_low", "wilson_high"]
    assert rows[1][:5] == ["hero v2", "3", "1", "4", "0.75"]
    assert viewer.get("/insight/nothing.csv").status_code == 404


@pytest.mark.parametrize(
    "query",
    [
        {"date_from": "yesterday"},
        {"campaign": "²"},
        {"date_from": "2026-03-02", "date_to": "2026-03-01"},
        {"date_to": "1900-01-01"},
    ],
)
def test_a_filter_it_cannot_read_answers_400_naming_it(
    viewer: Client, production: Production, query: dict[str, str]
) -> None:
    answer = viewer.get("/insight/", query)
    assert answer.status_code == 400
    assert next(iter(query)) in answer.content.decode() or "date_to" in answer.content.decode()
    assert viewer.get("/insight/queue_depth.csv", query).status_code == 400


def test_requesters_do_not_see_the_dashboard(client: Client) -> None:
    client.force_login(make_user(roles=("requester",), username="req"))
    assert client.get("/insight/").status_code == 403


def test_operators_refresh_the_figures(client: Client, production: Production) -> None:
    client.force_login(make_user(roles=("operator",), username="olga"))
    production_build()
    assert client.post("/insight/refresh").status_code == 302
    page = client.get("/insight/")
    assert dict(page.context["board"].queue.depth.rows)["approved"] == 10


def test_the_built_dashboard_is_reused_until_the_next_refresh(viewer: Client, production: Production) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as first:
        viewer.get("/insight/", {"campaign": production.spring.pk})
    with CaptureQueriesContext(connection) as second:
        page = viewer.get("/insight/", {"campaign": production.spring.pk})
    # Built: every panel's queries. Reused: the refresh time and the live oldest waiting age.
    assert len(first.captured_queries) - len(second.captured_queries) >= 10
    assert page.context["board"].queue.past_deadline == 1
    production_build()
    insight_refresh()
    again = viewer.get("/insight/", {"campaign": production.spring.pk})
    assert again.context["board"].queue.past_deadline == 2


def test_every_panel_follows_every_filter_and_its_csv_is_its_table(viewer: Client, production: Production) -> None:
    query: dict[str, str | int] = {
        "date_from": "2026-03-02",
        "date_to": "2026-03-02",
        "campaign": production.summer.pk,
        "template": production.v2.template_id,
        "a": production.v1.pk,
        "b": production.v2.pk,
    }
    page = viewer.get("/insight/", query)
    assert page.status_code == 200
    board = page.context["board"]
    # summer on D2: b1-b3 approved, b4 rejected, b5 in review; v1 made nothing in summer.
    assert dict(board.queue.depth.rows) == {"approved": 3, "in_review": 1, "rejected": 1}
    assert [r[:4] for r in board.sections["approval_version"].table.rows] == [("hero v2", 3, 1, 4)]
    assert board.ab.combinations == 0 and board.ab.verdict.p_value is None
    html = page.content.decode()
    for key, section in board.sections.items():
        link = f'href="/insight/{key}.csv?'
        assert link in html, key
        answer = viewer.get(f"/insight/{key}.csv", query)
        assert answer.status_code == 200, key
        rows = list(csv.reader(io.StringIO(answer.content.decode())))
        assert rows[0] == list(section.table.headers), key
        assert [r[0] for r in rows[1:]] == [str(r[0]) for r in section.table.rows], key
