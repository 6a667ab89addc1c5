"""The procedural catalog domain: a combination it does not draw is refused by name."""

from __future__ import annotations

import random

import pytest

from models.errors import CatalogError
from models.training.catalog_domain import COLOURS, KINDS, SCENES, Combo, catalog_draw


@pytest.mark.parametrize(
    ("combo", "field", "value", "known"),
    [
        (Combo("mug", "teal", "studio"), "colour", "teal", tuple(COLOURS)),
        (Combo("vase", "red", "studio"), "kind", "vase", KINDS),
        (Combo("mug", "red", "beach"), "scene", "beach", SCENES),
    ],
)
def test_an_unknown_kind_colour_or_scene_is_refused_naming_it_and_the_known_ones(
    combo: Combo, field: str, value: str, known: tuple[str, ...]
) -> None:
    with pytest.raises(CatalogError) as err:
        catalog_draw(combo, rng=random.Random(0))
    assert (err.value.field, err.value.value, err.value.known) == (field, value, known)
    assert str(err.value) == f"unknown {field} {value!r} (known: {', '.join(known)})"
