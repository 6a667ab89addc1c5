"""A template's textual inversions (``embeddings: [{name, token}]``): parsed, kept through the
version's store, counted in the content hash only when written, each bad entry refused by name."""

from __future__ import annotations

from dataclasses import asdict

import pytest

from prompt_library.errors import LibraryFileError
from prompt_library.parsing import template_from_dict, template_parse
from prompt_library.specs import GenerationParams
from tests.prompt_library.library_data import PATH, clip_output, template_data


def test_embeddings_parse_with_their_tokens_and_survive_the_store() -> None:
    plain = template_parse(template_data(), path=PATH, number=1)
    branded = template_parse(
        template_data(
            prompt="a {product} on {scene}, <brand-style>", embeddings=[{"name": "brand", "token": "<brand-style>"}]
        ),
        path=PATH,
        number=1,
    )
    assert plain.embeddings == () and branded.embeddings == (("brand", "<brand-style>"),)
    assert template_from_dict(asdict(branded)) == branded
    assert template_from_dict(asdict(branded)).content_hash == branded.content_hash
    assert plain.content_hash != branded.content_hash
    # A version from before embeddings existed keeps its hash: the empty field does not count.
    stored = asdict(plain)
    del stored["embeddings"]
    assert template_from_dict(stored).content_hash == plain.content_hash


def test_generation_params_name_embeddings_in_the_key_only_when_there_are_some() -> None:
    plain = GenerationParams(steps=4, guidance=1.0, width=64, height=64)
    assert "embeddings" not in plain.identity()
    # As a JSON store gives them back: lists, not tuples.
    stored = GenerationParams(steps=4, guidance=1.0, width=64, height=64, embeddings=[["brand", "ab" * 32, "<b>"]])  # type: ignore[arg-type]
    assert stored.embeddings == (("brand", "ab" * 32, "<b>"),)
    assert stored.identity()["embeddings"] == (("brand", "ab" * 32, "<b>"),)


@pytest.mark.parametrize(
    ("embeddings", "message"),
    [
        ({"name": "brand"}, "field 'embeddings' must be a list of {name, token}"),
        (["brand"], "field 'embeddings[0]' must be a mapping {name, token}"),
        ([{"name": "brand", "token": "<b>", "scale": 1}], "unknown key 'embeddings[0].scale'"),
        ([{"token": "<b>"}], "missing field 'name'"),
        ([{"name": "brand"}], "field 'embeddings[0].token' must be one word"),
        ([{"name": "brand", "token": "two words"}], "field 'embeddings[0].token' must be one word"),
        ([{"name": "brand", "token": "{product}"}], "field 'embeddings[0].token' must be one word"),
        ([{"name": "brand", "token": "(b:1.2)"}], "field 'embeddings[0].token' must be one word"),
        (
            [{"name": "brand", "token": "<a>"}, {"name": "brand", "token": "<b>"}],
            "field 'embeddings' names an embedding twice",
        ),
        (
            [{"name": "one", "token": "<a>"}, {"name": "two", "token": "<a>"}],
            "field 'embeddings' gives a token twice",
        ),
    ],
)
def test_a_bad_embeddings_entry_is_refused_naming_it(embeddings: object, message: str) -> None:
    with pytest.raises(LibraryFileError) as err:
        template_parse(template_data(embeddings=embeddings), path=PATH, number=1)
    assert message in str(err.value) and str(PATH) in str(err.value)


def test_embeddings_are_refused_for_clips() -> None:
    with pytest.raises(LibraryFileError, match="field 'embeddings' is for stills"):
        template_parse(
            template_data(output=clip_output(), embeddings=[{"name": "brand", "token": "<b>"}]), path=PATH, number=1
        )
