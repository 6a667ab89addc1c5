"""Parsing a library file's YAML: what is accepted, and refusals that name the file, field and value."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import pytest

from prompt_library.errors import LibraryFileError, UnknownVariableError
from prompt_library.parsing import campaign_parse, template_from_dict, template_parse
from tests.prompt_library.library_data import PATH, clip_output, template_data


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
    a = template_parse(template_data(), path=PATH, number=1)
    b = template_parse(template_data(prompt="a {product} in {scene}"), path=PATH, number=1)
    assert a.content_hash != b.content_hash
    assert template_from_dict(asdict(a)) == a
    assert template_from_dict(asdict(a)).content_hash == a.content_hash


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


def test_alt_text_with_an_unknown_variable_is_refused() -> None:
    with pytest.raises(UnknownVariableError, match="'colour'"):
        template_parse(template_data(alt_text="a {colour} {product}"), path=PATH, number=1)


def test_an_unknown_sampler_is_refused_naming_the_field() -> None:
    with pytest.raises(LibraryFileError, match=r"params.scheduler' must be one of dpm\+\+, .* \(got 'fast'\)"):
        template_parse(template_data(params={"scheduler": "fast"}), path=PATH, number=1)


# --- video output ---------------------------------------------------------------------------


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
