"""A campaign file's `rows:`: linked values, one row per product with its attributes."""

from __future__ import annotations

from pathlib import Path

import pytest

from prompt_library.errors import LibraryFileError
from prompt_library.expansion import campaign_expand
from prompt_library.parsing import campaign_parse, template_parse
from tests.prompt_library.library_data import PARAMS, template_data

PATH = Path("library/campaigns/spring.yaml")


def _campaign(**overrides: object) -> dict[str, object]:
    data: dict[str, object] = {
        "name": "spring",
        "template": "hero",
        "template_version": 1,
        "variables": {"scene": ["a table", "a studio"]},
        "rows": [{"product": "red mug"}, {"product": "blue lamp"}, {"product": "green bottle"}],
        "seeds": [1],
    }
    data.update(overrides)
    return data


def test_rows_make_only_those_rows_times_the_other_variables() -> None:
    spec = campaign_parse(_campaign(), path=PATH)
    assert spec.variant_count == 3 * 2
    template = template_parse(template_data(), path=Path("hero/v1.yaml"), number=1)
    variants = campaign_expand(spec, template, params=PARAMS, model_manifest_hash="m" * 64)
    made = sorted((dict(v.variables)["product"], dict(v.variables)["scene"]) for v in variants)
    assert made == sorted((p, s) for p in ("red mug", "blue lamp", "green bottle") for s in ("a table", "a studio"))


def test_rows_linking_two_variables_never_cross_them() -> None:
    rows = [{"product": "mug", "scene": "a table"}, {"product": "lamp", "scene": "a studio"}]
    spec = campaign_parse(_campaign(variables={}, rows=rows), path=PATH)
    template = template_parse(template_data(), path=Path("hero/v1.yaml"), number=1)
    variants = campaign_expand(spec, template, params=PARAMS, model_manifest_hash="m" * 64)
    assert sorted((dict(v.variables)["product"], dict(v.variables)["scene"]) for v in variants) == [
        ("lamp", "a studio"),
        ("mug", "a table"),
    ]


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ("mug", "field 'rows' must be a list of mappings"),
        ([{"product": ""}], "field 'rows' row 1 must map variables to non-empty texts"),
        ([{"product": 3}], "field 'rows' row 1 must map variables to non-empty texts"),
        ([{"product": "mug"}, {"product": "mug"}], "field 'rows' row 2 repeats row 1"),
    ],
)
def test_bad_rows_are_named(rows: object, message: str) -> None:
    with pytest.raises(LibraryFileError, match=message):
        campaign_parse(_campaign(rows=rows), path=PATH)


def test_rows_naming_different_variables_are_refused_when_expanded() -> None:
    rows = [{"product": "mug"}, {"scene": "a studio"}]
    spec = campaign_parse(_campaign(variables={"product": ["mug"], "scene": ["a table"]}, rows=rows), path=PATH)
    template = template_parse(template_data(), path=Path("hero/v1.yaml"), number=1)
    with pytest.raises(LibraryFileError, match="field 'rows' row 2 names scene; every row must name the same"):
        campaign_expand(spec, template, params=PARAMS, model_manifest_hash="m" * 64)
