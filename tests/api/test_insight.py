"""The dashboard's numbers through the API, against the hand-built production of
`tests/review/insight/production.py` (its answers worked out by hand there and here)."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from review.insight.refresh import insight_refresh
from tests.api.conftest import ApiClient, problem_of
from tests.review.insight.production import Production, production_build

pytestmark = pytest.mark.django_db


@pytest.fixture
def production() -> Production:
    built = production_build()
    insight_refresh(concurrently=False)
    return built


def test_the_whole_dashboard_with_an_ab_verdict(production: Production, api_as: Callable[..., ApiClient]) -> None:
    body = json.loads(api_as("reviewer").get("/insight", template="hero", a=1, b=2).content)
    tables = {t["key"]: t for t in body["tables"]}
    # v1: a1 a2 approved of a1-a4; v2: b1-b3 of b1-b4.
    assert [r[:4] for r in tables["approval_version"]["rows"]] == [["hero v1", 2, 2, 4], ["hero v2", 3, 1, 4]]
    assert tables["throughput"]["rows"] == [["2026-03-01", 3, 6], ["2026-03-02", 7, 5]]
    # Reviewed twice: a1 a2 a3; alike a1 a2. Rejected compute: a3 a4 (10 s) + b4 (4 s) of 70 s.
    assert (body["agreement"]["approved"], body["agreement"]["decided"]) == (2, 3)
    assert body["rejected_share"] == pytest.approx(24 / 70)
    assert body["past_deadline"] == 1
    # A 2 of 4, B 3 of 4 on the same two scenes: Fisher, p = 1.
    ab = body["ab"]
    assert (ab["a"]["approved"], ab["a"]["decided"], ab["b"]["approved"], ab["b"]["decided"]) == (2, 4, 3, 4)
    assert ab["test"] == "Fisher exact test" and ab["p_value"] == pytest.approx(1.0) and not ab["significant"]


def test_one_table_with_filters(production: Production, api_as: Callable[..., ApiClient]) -> None:
    client = api_as("reviewer")
    later = json.loads(client.get("/insight/tables/approval_version", date_from="2026-03-02").content)
    # From D2 only a4 (rejected) of v1; v2 unchanged.
    assert [r[:4] for r in later["rows"]] == [["hero v1", 0, 1, 1], ["hero v2", 3, 1, 4]]
    summer = json.loads(client.get("/insight/tables/queue_depth", campaign="summer").content)
    assert summer["rows"] == [["approved", 3], ["in_review", 1], ["rejected", 1]]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"campaign": "nope"}, "query.campaign"),
        ({"template": "nope"}, "query.template"),
        ({"a": 1, "b": 2}, "query.template"),
        ({"template": "hero", "a": 1, "b": 9}, "query.b"),
        ({"date_from": "2026-03-02", "date_to": "2026-03-01"}, "query.date_to"),
        ({"date_from": "1900-01-01"}, "query.date_from"),
    ],
)
def test_a_filter_that_names_nothing_is_refused(
    production: Production, api_as: Callable[..., ApiClient], query: dict[str, object], field: str
) -> None:
    assert problem_of(api_as("reviewer").get("/insight", **query), 422)["field"] == field


def test_unknown_tables_and_requesters_are_refused(production: Production, api_as: Callable[..., ApiClient]) -> None:
    assert problem_of(api_as("reviewer").get("/insight/tables/nothing"), 404)["field"] == "path.key"
    assert problem_of(api_as("requester").get("/insight"), 403)
