"""``mode: image-to-video``: a clip that a video model animates from the template's source photo,
parsed like image-to-image's source and refused, naming the field, wherever it does not apply."""

from __future__ import annotations

from dataclasses import asdict

import pytest

from prompt_library.errors import LibraryFileError
from prompt_library.parsing import template_from_dict, template_parse
from prompt_library.specs import GenerationParams, OutputSpec, Variant
from tests.prompt_library.library_data import PATH, clip_output, template_data

SHA = "cd" * 32


def test_image_to_video_parses_its_source_and_keeps_it_through_the_store() -> None:
    spec = template_parse(
        template_data(mode="image-to-video", source_image="photos/mug.png", output=clip_output()), path=PATH, number=1
    )
    assert (spec.mode, spec.strength, spec.source_image, spec.mask) == ("image-to-video", None, "photos/mug.png", "")
    assert template_from_dict(asdict(spec)) == spec
    text = template_parse(template_data(output=clip_output()), path=PATH, number=1)
    assert spec.content_hash != text.content_hash
    # Written back from the database, a version says strength: null; that is no strength.
    again = template_parse(
        template_data(mode="image-to-video", source_image=SHA, strength=None, output=clip_output()), path=PATH, number=1
    )
    assert again.strength is None


def test_an_image_to_video_variant_names_its_source_in_key_and_record_without_a_strength() -> None:
    output = OutputSpec(width=256, height=256, format="mp4", fps=8, seconds=1.0, keyframes=4)
    fields: dict[str, object] = {
        "campaign": "c",
        "template": "t",
        "template_version": 1,
        "template_hash": "0" * 64,
        "variables": (),
        "prompt": "a red mug",
        "negative_prompt": "",
        "seed": 1,
        "params": GenerationParams(steps=2, guidance=1.0, width=32, height=32),
        "output": output,
        "model_name": "m",
        "model_manifest_hash": "1" * 64,
    }
    text = Variant(**fields)  # type: ignore[arg-type]
    animated = Variant(**fields, mode="image-to-video", source_image=SHA)  # type: ignore[arg-type]
    other = Variant(**fields, mode="image-to-video", source_image="ef" * 32)  # type: ignore[arg-type]
    assert animated.generation_record()["source_image"] == SHA
    assert animated.source_identity() == {"mode": "image-to-video", "source_image": SHA}
    assert len({text.key, animated.key, other.key}) == 3


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"mode": "image-to-video", "source_image": SHA}, "image-to-video makes clips (output format: mp4)"),
        ({"mode": "image-to-video", "output": clip_output()}, "field 'source_image' must name an image"),
        (
            {"mode": "image-to-video", "source_image": SHA, "strength": 0.5, "output": clip_output()},
            "field 'strength' is only for image-to-image and inpainting (image-to-video animates the photo)",
        ),
        (
            {"mode": "image-to-video", "source_image": SHA, "mask": "alpha", "output": clip_output()},
            "field 'mask' is only for image-to-image and inpainting",
        ),
        (
            {
                "mode": "image-to-video",
                "source_image": SHA,
                "controlnet": {"name": "edges"},
                "output": clip_output(),
            },
            "field 'controlnet' is for stills, not image-to-video",
        ),
        ({"mode": "image-to-image", "source_image": SHA, "output": clip_output()}, "with mode: image-to-video"),
        ({"source_image": SHA, "output": clip_output()}, "(and image-to-video, a clip from the photo)"),
    ],
)
def test_image_to_video_where_it_does_not_apply_is_refused_naming_the_field(
    overrides: dict[str, object], message: str
) -> None:
    with pytest.raises(LibraryFileError) as err:
        template_parse(template_data(**overrides), path=PATH, number=1)
    assert message in str(err.value) and str(PATH) in str(err.value)
