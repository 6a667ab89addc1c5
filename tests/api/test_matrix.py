"""The matrix import through the API: the page's checks and preview, in either layout, saved only
when asked, refused line by line as problem details."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from prompt_library.models import Campaign
from prompt_library.selectors import campaign_plan_get
from prompt_library.services import library_load
from review.audit import AuditAction
from review.models import AuditEvent
from tests.api.conftest import ApiClient, problem_of
from tests.fixture_types import SettingsWrapper

pytestmark = pytest.mark.django_db

# demo-catalog: template catalog-scene (colour, product, scene), seeds [1, 2], 3 x 3 x 2 values.
ROWS = "product,colour\nmug,red\nlamp,blue\nbottle,red\n"


@pytest.fixture
def library(library_dir: Path, greenlight_settings: SettingsWrapper) -> Path:
    library_load()
    return library_dir


def test_a_rows_file_is_previewed_then_saved_and_a_run_makes_those_rows(
    library: Path, api_as: Callable[..., ApiClient]
) -> None:
    operator = api_as("operator", username="olga")
    before = Campaign.objects.get(name="demo-catalog").variables
    answer = operator.post("/campaigns/demo-catalog/matrix", {"csv": ROWS})
    assert answer.status_code == 200, answer.content
    preview = json.loads(answer.content)
    # The header leaves out scene: rows, detected; 3 rows x 2 scenes x 2 seeds.
    assert (preview["layout"], preview["kept"], preview["saved"]) == ("rows", ["scene"], False)
    assert "names some of the template's variables" in preview["reason"]
    assert preview["rows"] == [
        {"colour": "red", "product": "mug"},
        {"colour": "blue", "product": "lamp"},
        {"colour": "red", "product": "bottle"},
    ]
    assert (preview["combinations"], preview["seeds"], preview["variants"]) == (6, 2, 12)
    assert Campaign.objects.get(name="demo-catalog").variables == before  # a preview saves nothing

    saved = json.loads(operator.post("/campaigns/demo-catalog/matrix", {"csv": ROWS, "save": True}).content)
    assert saved["saved"] is True and saved["variants"] == 12
    plan = campaign_plan_get(name="demo-catalog")
    assert len(plan.variants) == 12
    assert {(dict(v.variables)["product"], dict(v.variables)["colour"]) for v in plan.variants} == {
        ("mug", "red"),
        ("lamp", "blue"),
        ("bottle", "red"),
    }
    event = AuditEvent.objects.get(action=AuditAction.CAMPAIGN_VARIABLES_IMPORTED)
    assert event.actor is not None and event.actor.username == "olga"


def test_the_columns_layout_is_every_combination(library: Path, api_as: Callable[..., ApiClient]) -> None:
    text = "colour,product,scene\nred,mug,on a table\nblue,,\n"
    preview = json.loads(
        api_as("operator").post("/campaigns/demo-catalog/matrix", {"csv": text, "layout": "columns"}).content
    )
    assert (preview["layout"], preview["rows"], preview["variants"]) == ("columns", [], 2 * 1 * 1 * 2)


def test_a_bad_file_is_a_problem_naming_line_column_and_value(library: Path, api_as: Callable[..., ApiClient]) -> None:
    operator = api_as("operator")
    problem = problem_of(
        operator.post(
            "/campaigns/demo-catalog/matrix", {"csv": "product,colour\nmug,\nlamp,blue,extra\n", "save": True}
        ),
        422,
    )
    assert "line 2, column 'colour' (''): empty" in problem["detail"]
    assert "line 3, column '#3' ('extra'): the header has 2 columns" in problem["detail"]
    assert not AuditEvent.objects.filter(action=AuditAction.CAMPAIGN_VARIABLES_IMPORTED).exists()
    assert problem_of(operator.post("/campaigns/demo-catalog/matrix", {"csv": ROWS, "layout": "diagonal"}), 422)
    assert problem_of(operator.post("/campaigns/nope/matrix", {"csv": ROWS}), 404)["field"] == "path.name"
    assert problem_of(api_as("reviewer").post("/campaigns/demo-catalog/matrix", {"csv": ROWS}), 403)
