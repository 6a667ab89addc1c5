from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import pytest
import yaml

from prompt_library.errors import LibraryFileError, UnknownVariableError
from prompt_library.specs import (
    CampaignSpec,
    GenerationParams,
    campaign_expand,
    campaign_parse,
    canonical_hash,
    chunked,
    params_resolve,
    template_from_dict,
    template_parse,
)
from tests.factories import template_spec

PATH = Path("library/templates/hero/v1.yaml")
PARAMS = GenerationParams(steps=4, guidance=1.0, width=64, height=64)


def template_data(**overrides: object) -> dict[str, object]:
    data: dict[str, object] = {
        "name": "hero",
        "prompt": "a {product} on {scene}",
        "negative_prompt": "blurry",
        "variables": ["product", "scene"],
        "model": "embedded-tiny",
        "output": {
            "width": 512,
            "height": 512,
            "renditions": [{"name": "web", "format": "jpeg", "width": 1024, "height": 1024}],
        },
    }
    data.update(overrides)
    return data


def campaign(**overrides: object) -> CampaignSpec:
    fields: dict[str, object] = {
        "name": "spring",
        "title": "",
        "kind": "scheduled",
        "template": "hero",
        "template_version": 1,
        "variables": (("product", ("mug", "lamp", "bottle")), ("scene", ("a table", "a studio"))),
        "seeds": (1, 2),
    }
    fields.update(overrides)
    return CampaignSpec(**fields)  # type: ignore[arg-type]


def test_template_with_unknown_variable_is_refused_naming_file_and_variable() -> None:
    with pytest.raises(UnknownVariableError) as err:
        template_parse(template_data(prompt="a {colour} {product} on {scene}"), path=PATH, number=1)
    assert str(PATH) in str(err.value)
    assert "'colour'" in str(err.value)
    assert err.value.unknown == ["colour"]


def test_unknown_variable_in_negative_prompt_is_refused_too() -> None:
    with pytest.raises(UnknownVariableError):
        template_parse(template_data(negative_prompt="no {logo}"), path=PATH, number=1)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"prompt": ""}, "prompt"),
        ({"output": {"width": 0, "height": 512}}, "output.width"),
        (
            {
                "output": {
                    "width": 512,
                    "height": 512,
                    "renditions": [{"name": "x", "format": "gif", "width": 9, "height": 9}],
                }
            },
            "format",
        ),
        ({"params": {"steps": 0}}, "params.steps"),
        ({"params": {"steps": 501}}, "params.steps"),
        ({"params": {"sampler": "x"}}, "sampler"),
        ({"prompt": "a {product.name}"}, "prompt"),
    ],
)
def test_bad_template_fields_are_named(overrides: dict[str, object], field: str) -> None:
    with pytest.raises(LibraryFileError) as err:
        template_parse(template_data(**overrides), path=PATH, number=1)
    assert field in str(err.value)
    assert str(PATH) in str(err.value)


def test_missing_field_is_named() -> None:
    data = template_data()
    del data["variables"]
    with pytest.raises(LibraryFileError, match="missing field 'variables'"):
        template_parse(data, path=PATH, number=1)


def test_content_hash_changes_with_content_and_survives_a_round_trip() -> None:
    from dataclasses import asdict

    a = template_parse(template_data(), path=PATH, number=1)
    b = template_parse(template_data(prompt="a {product} in {scene}"), path=PATH, number=1)
    assert a.content_hash != b.content_hash
    assert template_from_dict(asdict(a)) == a
    assert template_from_dict(asdict(a)).content_hash == a.content_hash


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


def test_campaign_file_checks() -> None:
    path = Path("campaigns/x.yaml")
    good = {"name": "x", "template": "hero", "template_version": 1, "variables": {"product": "mug"}, "seeds": [1]}
    assert campaign_parse(good, path=path).variables == (("product", ("mug",)),)
    with pytest.raises(LibraryFileError, match="seeds"):
        campaign_parse({**good, "seeds": [1, 1]}, path=path)
    with pytest.raises(LibraryFileError, match=r"variables\.product"):
        campaign_parse({**good, "variables": {"product": []}}, path=path)
    with pytest.raises(LibraryFileError, match="template_version"):
        campaign_parse({**good, "template_version": "one"}, path=path)


def test_chunked_keeps_order_and_refuses_zero() -> None:
    variants = campaign_expand(campaign(), template_spec(), params=PARAMS, model_manifest_hash="m" * 64)
    batches = chunked(variants, 5)
    assert [len(b) for b in batches] == [5, 5, 2]
    assert [v for b in batches for v in b] == variants
    with pytest.raises(ValueError):
        chunked(variants, 0)


def test_campaign_review_policy_is_read_and_checked() -> None:
    path = Path("campaigns/x.yaml")
    base = {"name": "x", "template": "hero", "template_version": 1, "variables": {"product": "mug"}, "seeds": [1]}
    spec = campaign_parse({**base, "review": {"approvals": 2, "on_reject": "return"}}, path=path)
    assert (spec.approvals_required, spec.on_reject) == (2, "return")
    assert campaign_parse(base, path=path).approvals_required == 1
    with pytest.raises(LibraryFileError, match=r"review\.on_reject"):
        campaign_parse({**base, "review": {"on_reject": "shrug"}}, path=path)
    with pytest.raises(LibraryFileError, match=r"review\.approvals"):
        campaign_parse({**base, "review": {"approvals": 0}}, path=path)


# --- alt text and samplers ----------------------------------------------------------------------


def test_alt_text_is_rendered_per_variant_and_defaults_to_the_prompt() -> None:
    spec = template_parse(template_data(alt_text="Catalog photo of a {product} on {scene}"), path=PATH, number=1)
    variants = campaign_expand(campaign(), spec, params=PARAMS, model_manifest_hash="a" * 64)
    assert variants[0].alt_text == "Catalog photo of a mug on a table"
    plain = campaign_expand(
        campaign(), template_parse(template_data(), path=PATH, number=1), params=PARAMS, model_manifest_hash="a" * 64
    )
    assert plain[0].alt_text == "A mug on a table"


def test_alt_text_with_an_unknown_variable_is_refused() -> None:
    with pytest.raises(UnknownVariableError, match="'colour'"):
        template_parse(template_data(alt_text="a {colour} {product}"), path=PATH, number=1)


def test_templates_without_alt_text_or_sampler_keep_their_hashes_and_keys() -> None:
    spec = template_parse(template_data(), path=PATH, number=1)
    with_alt = template_parse(template_data(alt_text="A {product}"), path=PATH, number=1)
    assert spec.content_hash != with_alt.content_hash
    stored = asdict(spec)  # as a version is stored
    del stored["alt_text"]  # as versions from before alt text were stored
    assert template_from_dict(stored).content_hash == spec.content_hash
    # A sampler enters the key only when chosen.
    variant = campaign_expand(campaign(), spec, params=PARAMS, model_manifest_hash="a" * 64)[0]
    euler = campaign_expand(
        campaign(),
        spec,
        params=GenerationParams(steps=4, guidance=1.0, width=64, height=64, scheduler="euler"),
        model_manifest_hash="a" * 64,
    )[0]
    assert "scheduler" not in PARAMS.identity() and euler.params.identity()["scheduler"] == "euler"
    assert variant.key != euler.key
    assert euler.generation_record()["scheduler"] == "euler" and "scheduler" not in variant.generation_record()


def test_an_unknown_sampler_is_refused_naming_the_field() -> None:
    with pytest.raises(LibraryFileError, match=r"params.scheduler' must be one of dpm\+\+, .* \(got 'fast'\)"):
        template_parse(template_data(params={"scheduler": "fast"}), path=PATH, number=1)


# --- video output ---------------------------------------------------------------------------


def clip_output(**overrides: object) -> dict[str, object]:
    output: dict[str, object] = {
        "width": 256,
        "height": 256,
        "format": "mp4",
        "fps": 12,
        "seconds": 2,
        "keyframes": 3,
        "renditions": [
            {"name": "web", "format": "mp4", "width": 256, "height": 256, "quality": 85},
            {"name": "poster", "format": "jpeg", "width": 256, "height": 256},
        ],
    }
    output.update(overrides)
    return output


def test_a_template_can_ask_for_a_clip_and_its_variants_say_so() -> None:
    spec = template_parse(template_data(output=clip_output()), path=PATH, number=1)
    out = spec.output
    assert out.is_video and (out.format, out.fps, out.seconds, out.keyframes) == ("mp4", 12, 2.0, 3)
    assert [(r.name, r.format) for r in out.renditions] == [("web", "mp4"), ("poster", "jpeg")]
    assert template_from_dict(asdict(spec)) == spec
    assert template_from_dict(asdict(spec)).content_hash == spec.content_hash
    # A JSON store may give the seconds back as an integer: the hash must not move.
    stored = asdict(spec)
    stored["output"]["seconds"] = 2
    assert template_from_dict(stored).content_hash == spec.content_hash
    variant = campaign_expand(campaign(), spec, params=PARAMS, model_manifest_hash="a" * 64)[0]
    record = variant.generation_record()
    assert (record["format"], record["fps"], record["keyframes"]) == ("mp4", 12, 3)
    # Timing makes the clip: it is part of the key and the content hash.
    longer = template_parse(template_data(output=clip_output(seconds=3)), path=PATH, number=1)
    assert longer.content_hash != spec.content_hash
    assert campaign_expand(campaign(), longer, params=PARAMS, model_manifest_hash="a" * 64)[0].key != variant.key


def test_keyframes_default_to_four() -> None:
    output = clip_output()
    del output["keyframes"]
    assert template_parse(template_data(output=output), path=PATH, number=1).output.keyframes == 4


@pytest.mark.parametrize(
    ("output", "field", "said"),
    [
        (clip_output(fps=0), "output.fps", "from 1 to 60 (got 0)"),
        (clip_output(fps=61), "output.fps", "(got 61)"),
        (clip_output(fps=12.5), "output.fps", "(got 12.5)"),
        (clip_output(fps=None), "output.fps", "(got None)"),
        (clip_output(seconds=0), "output.seconds", "above 0 and at most 60 (got 0)"),
        (clip_output(seconds=61), "output.seconds", "(got 61)"),
        (clip_output(seconds="2"), "output.seconds", "(got '2')"),
        (clip_output(seconds=30, fps=24), "output.seconds", "720 frames"),
        (clip_output(keyframes=1), "output.keyframes", "from 2 to 64 (got 1)"),
        (clip_output(keyframes=30, seconds=1), "output.keyframes", "more than the clip's 12 frames"),
        (clip_output(width=255), "output.width", "even integer from 256"),
        (clip_output(height=128), "output.height", "watermark needs 256 px"),
        (clip_output(format="gif"), "output.format", "'png' (an image) or 'mp4' (a video)"),
        (
            clip_output(renditions=[{"name": "web", "format": "mp4", "width": 255, "height": 256}]),
            "output.renditions[0].width",
            "even for mp4",
        ),
        (
            {"width": 512, "height": 512, "renditions": [{"name": "v", "format": "mp4", "width": 256, "height": 256}]},
            "output.renditions[0].format",
            "mp4 renditions need a video master",
        ),
        ({"width": 512, "height": 512, "fps": 12}, "output.fps", "only for video masters (format: mp4)"),
        ({"width": 512, "height": 512, "seconds": 2}, "output.seconds", "only for video masters"),
    ],
)
def test_bad_video_output_fields_are_refused_naming_file_and_field(
    output: dict[str, object], field: str, said: str
) -> None:
    with pytest.raises(LibraryFileError) as err:
        template_parse(template_data(output=output), path=PATH, number=1)
    assert f"field '{field}'" in str(err.value) and said in str(err.value)
    assert str(PATH) in str(err.value)


def test_a_sampler_is_refused_for_a_clip() -> None:
    with pytest.raises(LibraryFileError, match=r"params.scheduler' is not supported for video output"):
        template_parse(template_data(params={"scheduler": "euler"}, output=clip_output()), path=PATH, number=1)


# The shipped image templates' content hashes, as computed before clips existed: a published
# version whose hash moved would be refused on the next load.
SHIPPED_IMAGE_HASHES = {
    "catalog-hero": "1697f8395b24748e4e4aaaf681b3119afc9bd70ac263c219efe014910dff151f",
    "catalog-scene": "cd64d8094f87b36bdc2d5b7e5ffd01276c1f462fc218a1b575e0538474387edf",
}


@pytest.mark.parametrize("name", sorted(SHIPPED_IMAGE_HASHES))
def test_image_templates_keep_their_content_hashes_and_keys(name: str) -> None:
    path = Path(__file__).parents[2] / "prompt_library" / "library" / "templates" / name / "v1.yaml"
    spec = template_parse(yaml.safe_load(path.read_text()), path=path, number=1)
    assert spec.content_hash == SHIPPED_IMAGE_HASHES[name]
    stored = asdict(spec)
    for field in ("fps", "seconds", "keyframes"):  # as versions from before clips were stored
        del stored["output"][field]
    assert template_from_dict(stored).content_hash == SHIPPED_IMAGE_HASHES[name]
    # An image's key is the hash it always was (output: its size only), and its record has no timing.
    values = {v: "x" for v in spec.variables}
    runs = campaign(variables=tuple((v, ("x",)) for v in spec.variables), seeds=(7,))
    variant = campaign_expand(runs, spec, params=PARAMS, model_manifest_hash="a" * 64)[0]
    assert variant.key == canonical_hash(
        {
            "template_hash": SHIPPED_IMAGE_HASHES[name],
            "variables": values,
            "model_manifest_hash": "a" * 64,
            "seed": 7,
            "params": PARAMS.identity(),
            "output": {"width": 512, "height": 512},
        }
    )
    assert not {"fps", "seconds", "keyframes", "format"} & set(variant.generation_record())


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
