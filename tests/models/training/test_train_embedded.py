"""The training command line: arguments it refuses before any stage runs."""

from __future__ import annotations

import pytest

from models.training.train_embedded import _layers_parse


@pytest.mark.parametrize(
    ("text", "problem"),
    [("1,x,2", "whole numbers"), ("1,2", "3 numbers"), ("1,0,1", "at least 1")],
)
def test_bad_layer_counts_are_refused_naming_the_value(text: str, problem: str) -> None:
    with pytest.raises(SystemExit, match=f"--layers = '{text}'.*{problem}"):
        _layers_parse(text)
