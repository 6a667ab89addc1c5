"""The matrix import: a campaign's values from a CSV in either layout, previewed with the number
of variants it makes, refused line by line, and saved so that a run makes exactly what the
preview said (checked through the campaign's plan, which is what a run expands)."""

from __future__ import annotations

import pytest
import yaml
from django.contrib.auth.models import User

from prompt_library.authoring import prompt_version_create
from prompt_library.errors import LibraryFileError
from prompt_library.matrix import (
    PROBLEMS_SHOWN,
    VARIANTS_MAX,
    campaign_variables_set,
    matrix_parse,
)
from prompt_library.models import Campaign
from prompt_library.selectors import campaign_plan_get
from review.audit import AuditAction
from review.models import AuditEvent
from tests.prompt_library.library_data import template_data

pytestmark = pytest.mark.django_db

CATALOGUE = "product,colour,material\nmug,red,ceramic\nlamp,black,metal\nvase,red,glass\n"


@pytest.fixture
def campaign() -> Campaign:
    """A template of product, colour, material and scene; a campaign with two seeds and values."""
    author = User.objects.create_user("author")
    data = template_data(
        prompt="a {colour} {material} {product} on {scene}", variables=["product", "colour", "material", "scene"]
    )
    version = prompt_version_create(template="hero", text=yaml.safe_dump(data), fmt="yaml", created_by=author)
    return Campaign.objects.create(
        name="spring",
        prompt_version=version,
        variables={"product": ["cup"], "colour": ["white"], "material": ["paper"], "scene": ["a table", "a shelf"]},
        seeds=[1, 2],
    )


def _planned(name: str) -> list[dict[str, str]]:
    """The variable values a run of the campaign would make, one entry per variant."""
    return [dict(v.variables) for v in campaign_plan_get(name=name).variants]


def test_one_column_per_variable_makes_every_combination(campaign: Campaign) -> None:
    text = "product,colour,material,scene\nmug,red,ceramic,a table\nlamp,blue,,a shelf\n,green,,\n"
    preview = matrix_parse(campaign=campaign, text=text, layout="columns")
    assert preview.layout == "columns" and preview.rows == ()
    assert dict(preview.variables) == {
        "product": ("mug", "lamp"),
        "colour": ("red", "blue", "green"),
        "material": ("ceramic",),
        "scene": ("a table", "a shelf"),
    }
    # 2 products x 3 colours x 1 material x 2 scenes = 12 combinations, x 2 seeds.
    assert (preview.combinations, preview.variant_count) == (12, 24)
    campaign_variables_set(campaign=campaign, preview=preview, actor=None)
    assert len(_planned("spring")) == 24


def test_one_row_per_product_makes_those_rows_only_times_the_kept_variables(campaign: Campaign) -> None:
    preview = matrix_parse(campaign=campaign, text=CATALOGUE, layout="rows")
    assert preview.layout == "rows" and preview.lines == 3
    assert preview.row_dicts() == [
        {"product": "mug", "colour": "red", "material": "ceramic"},
        {"product": "lamp", "colour": "black", "material": "metal"},
        {"product": "vase", "colour": "red", "material": "glass"},
    ]
    # scene is not in the file: it keeps the campaign's two values and is crossed with the rows.
    assert preview.kept == ("scene",)
    assert dict(preview.variables)["colour"] == ("red", "black")  # distinct values, in order
    # 3 rows x 2 scenes = 6 combinations (the cross product of the values would be 3x2x3x2 = 36), x 2 seeds.
    assert (preview.combinations, preview.variant_count) == (6, 12)
    assert Campaign.objects.get(pk=campaign.pk).variable_rows == []  # a preview saves nothing

    campaign_variables_set(campaign=campaign, preview=preview, actor=None)
    planned = _planned("spring")
    assert len(planned) == 12
    made = {(v["product"], v["colour"], v["material"], v["scene"]) for v in planned}
    assert made == {
        (product, colour, material, scene)
        for product, colour, material in [
            ("mug", "red", "ceramic"),
            ("lamp", "black", "metal"),
            ("vase", "red", "glass"),
        ]
        for scene in ("a table", "a shelf")
    }
    assert campaign_plan_get(name="spring").campaign.variant_count == 12
    first = campaign_plan_get(name="spring").variants[0]
    assert first.prompt == "a red ceramic mug on a table"


def test_columns_after_rows_crosses_every_variable_again(campaign: Campaign) -> None:
    campaign_variables_set(campaign=campaign, preview=matrix_parse(campaign=campaign, text=CATALOGUE), actor=None)
    text = "product,colour,material,scene\nmug,red,ceramic,a table\nlamp,black,metal,\n"
    campaign_variables_set(campaign=campaign, preview=matrix_parse(campaign=campaign, text=text), actor=None)
    saved = Campaign.objects.get(pk=campaign.pk)
    assert saved.variable_rows == []
    assert len(_planned("spring")) == 2 * 2 * 2 * 1 * 2  # products x colours x materials x scenes x seeds


def test_saving_is_audited_with_the_rows_before_and_after(campaign: Campaign) -> None:
    user = User.objects.create_user("olga")
    campaign_variables_set(campaign=campaign, preview=matrix_parse(campaign=campaign, text=CATALOGUE), actor=user)
    event = AuditEvent.objects.get(action=AuditAction.CAMPAIGN_VARIABLES_IMPORTED)
    assert event.actor == user
    assert event.detail["before"]["product"] == ["cup"] and event.detail["rows_before"] == []
    assert event.detail["after"]["product"] == ["mug", "lamp", "vase"]
    assert event.detail["rows_after"][1] == {"product": "lamp", "colour": "black", "material": "metal"}


@pytest.mark.parametrize(
    ("text", "layout", "reason"),
    [
        # Only some variables named: only rows can leave the rest to the campaign.
        (CATALOGUE, "rows", "names some of the template's variables"),
        # A blank cell: only columns have shorter lists.
        ("product,colour,material,scene\nmug,red,ceramic,a table\nlamp,,,a shelf\n", "columns", "line 3 has a blank"),
        # Every cell filled and a column repeats a value: rows (a list of values never repeats one).
        ("product,colour,material,scene\nmug,red,clay,a table\nlamp,red,metal,a table\n", "rows", "repeats 'red'"),
        # Full, no repeats: either reading works; rows makes fewer variants.
        ("product,colour,material,scene\nmug,red,clay,a table\nlamp,blue,metal,a shelf\n", "rows", "every line"),
    ],
)
def test_the_layout_is_detected_and_the_preview_says_why(
    campaign: Campaign, text: str, layout: str, reason: str
) -> None:
    preview = matrix_parse(campaign=campaign, text=text, layout="auto")
    assert preview.layout == layout
    assert reason in preview.reason


def test_a_chosen_layout_is_not_second_guessed(campaign: Campaign) -> None:
    text = "product,colour,material,scene\nmug,red,clay,a table\nlamp,blue,metal,a shelf\n"
    assert matrix_parse(campaign=campaign, text=text, layout="columns").variant_count == 2 * 2 * 2 * 2 * 2
    assert matrix_parse(campaign=campaign, text=text, layout="rows").variant_count == 2 * 2
    assert matrix_parse(campaign=campaign, text=text, layout="rows").reason == ""


@pytest.mark.parametrize(
    ("text", "layout", "needles"),
    [
        # Line numbers are the file's: the blank line 3 is skipped, not renumbered.
        (
            "product,colour,material\nmug,red,ceramic\n\nlamp,,metal\nvase,red,\n",
            "rows",
            ["line 4, column 'colour' (''): empty", "line 5, column 'material' (''): empty"],
        ),
        # A quoted cell over two lines: the next record is on line 4.
        (
            'product,colour,material\n"mug\nlarge",red,ceramic\nlamp,black,metal,extra\n',
            "rows",
            ["line 4, column '#4' ('extra'): the header has 3 columns"],
        ),
        (
            "product,colour,material\nmug,red,ceramic\nlamp,black,metal\nmug,red,ceramic\n",
            "rows",
            ["line 4 repeats line 2"],
        ),
        (
            "product,colour,material\nmug," + "x" * 250 + ",ceramic\n",
            "rows",
            ["line 2, column 'colour' ('" + "x" * 40 + "…'): 250 characters; at most 200"],
        ),
        (
            "product,weight\nmug,300g\n",
            "rows",
            ["line 1, column 2 ('weight'): not a variable of template 'hero' v1 (its variables: product, colour"],
        ),
        ("product,product\nmug,cup\n", "rows", ["line 1, column 2 ('product'): the header names it twice"]),
        (
            "product,colour\nmug,red\n",
            "columns",
            ["field 'header' is product, colour; template 'hero' v1 needs exactly"],
        ),
        ("product,colour,material,scene\n", "auto", ["needs a header row and at least one row of values"]),
        (
            "product,colour,material,scene\nmug,a,b,c\n",
            "diagonal",
            ["field 'layout' must be one of auto, columns, rows"],
        ),
        ('product,colour\n"mug,red\n', "rows", ["not valid CSV"]),
    ],
)
def test_bad_lines_are_refused_naming_line_column_and_value(
    campaign: Campaign, text: str, layout: str, needles: list[str]
) -> None:
    with pytest.raises(LibraryFileError) as refused:
        matrix_parse(campaign=campaign, text=text, layout=layout)
    for needle in needles:
        assert needle in str(refused.value)


def test_a_variable_neither_in_the_file_nor_in_the_campaign_is_refused(campaign: Campaign) -> None:
    Campaign.objects.filter(pk=campaign.pk).update(variables={"product": ["cup"]})
    campaign.refresh_from_db()
    with pytest.raises(LibraryFileError, match="does not name scene, and the campaign has no values for it"):
        matrix_parse(campaign=campaign, text="product,colour,material\nmug,red,ceramic\n")


def test_many_bad_lines_are_counted_after_the_first_ones(campaign: Campaign) -> None:
    text = "product,colour,material\n" + "".join(f"mug{i},,ceramic\n" for i in range(PROBLEMS_SHOWN + 5))
    with pytest.raises(LibraryFileError) as refused:
        matrix_parse(campaign=campaign, text=text, layout="rows")
    message = str(refused.value)
    assert message.count("): empty") == PROBLEMS_SHOWN and message.endswith("; and 5 more")


def test_a_file_that_makes_too_many_variants_is_refused(campaign: Campaign) -> None:
    side = int((VARIANTS_MAX / 2) ** 0.25) + 1  # side**4 combinations x 2 seeds > VARIANTS_MAX
    columns = ["product", "colour", "material", "scene"]
    lines = [",".join(f"{c}{i}" for c in columns) for i in range(side)]
    with pytest.raises(LibraryFileError, match=f"a campaign makes at most {VARIANTS_MAX}"):
        matrix_parse(campaign=campaign, text=",".join(columns) + "\n" + "\n".join(lines), layout="columns")


def test_stored_rows_that_name_different_variables_are_refused_before_a_run(campaign: Campaign) -> None:
    Campaign.objects.filter(pk=campaign.pk).update(
        variable_rows=[{"product": "mug", "colour": "red"}, {"product": "lamp", "material": "metal"}]
    )
    with pytest.raises(LibraryFileError, match="field 'rows' row 2 names material, product; every row must name"):
        campaign_plan_get(name="spring")
