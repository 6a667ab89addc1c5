"""Expansion: a campaign times its template version's variables and seeds becomes variants."""

from __future__ import annotations

import pytest

from prompt_library.errors import LibraryFileError
from prompt_library.expansion import campaign_expand, params_resolve
from prompt_library.parsing import template_parse
from prompt_library.specs import GenerationParams
from tests.factories import template_spec
from tests.prompt_library.library_data import PARAMS, PATH, campaign, template_data


def test_campaign_expands_to_every_combination_times_seeds_with_distinct_keys() -> None:
    variants = campaign_expand(campaign(), template_spec(), params=PARAMS, model_manifest_hash="m" * 64)
    assert len(variants) == 3 * 2 * 2
    assert len({v.key for v in variants}) == 12
    assert variants[0].prompt == "a mug on a table"
    assert {v.seed for v in variants} == {1, 2}


def test_expansion_is_deterministic_and_keys_depend_on_what_makes_the_image() -> None:
    first = campaign_expand(campaign(), template_spec(), params=PARAMS, model_manifest_hash="m" * 64)
    again = campaign_expand(
        campaign(name="other-campaign"), template_spec(), params=PARAMS, model_manifest_hash="m" * 64
    )
    assert [v.key for v in first] == [v.key for v in again]  # the campaign is not part of the key
    other_model = campaign_expand(campaign(), template_spec(), params=PARAMS, model_manifest_hash="n" * 64)
    assert not {v.key for v in first} & {v.key for v in other_model}
    more_steps = campaign_expand(
        campaign(),
        template_spec(),
        params=GenerationParams(steps=5, guidance=1.0, width=64, height=64),
        model_manifest_hash="m" * 64,
    )
    assert not {v.key for v in first} & {v.key for v in more_steps}


def test_campaign_missing_a_variable_is_refused_naming_it() -> None:
    bad = campaign(variables=(("product", ("mug",)),))
    with pytest.raises(LibraryFileError, match="needs variable 'scene' \\(given: product\\)"):
        campaign_expand(bad, template_spec(), params=PARAMS, model_manifest_hash="m" * 64)


def test_alt_text_is_rendered_per_variant_and_defaults_to_the_prompt() -> None:
    spec = template_parse(template_data(alt_text="Catalog photo of a {product} on {scene}"), path=PATH, number=1)
    variants = campaign_expand(campaign(), spec, params=PARAMS, model_manifest_hash="a" * 64)
    assert variants[0].alt_text == "Catalog photo of a mug on a table"
    plain = campaign_expand(
        campaign(), template_parse(template_data(), path=PATH, number=1), params=PARAMS, model_manifest_hash="a" * 64
    )
    assert plain[0].alt_text == "A mug on a table"


@pytest.mark.parametrize(
    ("output", "multiple", "drawn"),
    [
        ((512, 512), 4, (64, 64)),  # square output: the model's own size
        ((1024, 576), 4, (84, 48)),  # 16:9
        ((576, 1024), 4, (48, 84)),  # 9:16
        ((1200, 900), 8, (72, 56)),  # 4:3 on an 8 px factor: as near as the factor allows
    ],
)
def test_without_a_size_the_model_draws_in_the_outputs_aspect_ratio(
    output: tuple[int, int], multiple: int, drawn: tuple[int, int]
) -> None:
    data = template_data(output={"width": output[0], "height": output[1]})
    spec = template_parse(data, path=PATH, number=1)
    params = params_resolve(spec, steps=20, guidance=7.0, width=64, height=64, size_multiple=multiple)
    assert (params.width, params.height) == drawn
    assert params.width % multiple == 0 and params.height % multiple == 0
    # A size the template names is kept as it is.
    fixed = template_parse({**data, "params": {"width": 64, "height": 64}}, path=PATH, number=1)
    assert params_resolve(fixed, steps=20, guidance=7.0, width=64, height=64, size_multiple=multiple).width == 64
