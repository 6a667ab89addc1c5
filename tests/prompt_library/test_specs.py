"""Content hashes, asset keys and generation records: what enters them, and that they do not move."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import pytest
import yaml

from prompt_library.expansion import campaign_expand
from prompt_library.parsing import template_from_dict, template_parse
from prompt_library.specs import GenerationParams, canonical_hash
from tests.prompt_library.library_data import PARAMS, PATH, campaign, clip_output, template_data


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
