"""Prompt weighting in the common syntax: rewritten for compel, and refused at load where it would be misread."""

from __future__ import annotations

import pytest

from prompt_library.errors import LibraryFileError
from prompt_library.parsing import template_parse
from prompt_library.weighting import WeightingError, compel_syntax, is_weighted, weighting_check
from tests.prompt_library.library_data import PATH, template_data


@pytest.mark.parametrize(
    ("written", "compel"),
    [
        ("a [red:0.5] mug", "a (red)0.5 mug"),
        ("a [red mug:0.25] on [a table]", "a (red mug)0.25 on (a table)0.9091"),
        ("a (red:1.4) mug", "a (red)1.4 mug"),
        ("a (red: 1.4 ) mug", "a (red)1.4 mug"),
        ("a (red:.5) mug", "a (red)0.5 mug"),
        ("a ((red)) mug", "a ((red)1.1)1.1 mug"),
        ("a [[red]] mug", "a ((red)0.9091)0.9091 mug"),
        ("a ([red]:1.2) mug", "a ((red)0.9091)1.2 mug"),
        ("(style: watercolour)", "(style: watercolour)1.1"),
        ("a (ratio 16:9 poster:1.2)", "a (ratio 16:9 poster)1.2"),
        (r"a \(literal\) \[mug\]", r"a \(literal\) \[mug\]"),
        ("a red mug", "a red mug"),
        # Never checked (a brief's free text): an unbalanced bracket stays a literal one.
        ("a (red mug", r"a \(red mug"),
        ("a red] mug", r"a red\] mug"),
    ],
)
def test_common_weighting_is_rewritten_for_compel(written: str, compel: str) -> None:
    assert compel_syntax(written) == compel
    assert ":" not in compel.replace("16:9", "").replace("style:", "")  # no weight is left in the text


@pytest.mark.parametrize(
    ("written", "problem", "position"),
    [
        ("a (red mug", "unbalanced '('", 3),
        ("a red) mug", "unbalanced ')'", 6),
        ("a (red] mug", "unbalanced ']'", 7),
        ("a [red:blue:0.5] mug", "prompt editing [from:to:when] is not supported", 3),
        ("a (red:12) mug", "weight 12 is outside 0 to 10", 3),
        ("a () mug", "is empty", 3),
    ],
)
def test_weighting_that_would_be_misread_is_refused_with_its_position(
    written: str, problem: str, position: int
) -> None:
    with pytest.raises(WeightingError) as err:
        weighting_check(written)
    assert problem in str(err.value)
    assert err.value.position + 1 == position


def test_only_unescaped_brackets_count_as_weighting() -> None:
    assert is_weighted("a [red:0.5] mug") and is_weighted("a (red) mug")
    assert not is_weighted(r"a \(literal\) mug", "a red mug: {product}")


def test_a_template_with_misread_weighting_is_refused_at_load_naming_the_field() -> None:
    with pytest.raises(LibraryFileError, match=r"field 'negative_prompt' has weighting .*unbalanced '\('"):
        template_parse(template_data(negative_prompt="(blurry"), path=PATH, number=1)
    spec = template_parse(template_data(prompt="a [{product}:0.5] on {scene}"), path=PATH, number=1)
    assert compel_syntax(spec.render({"product": "mug", "scene": "a table"})[0]) == "a (mug)0.5 on a table"
