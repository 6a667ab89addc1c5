"""The shipped ``embedded-tiny`` model, as ``build_tiny_random`` builds it: one token per catalogue
word, colour noise, one picture per seed whatever the batch."""

from __future__ import annotations

from typing import Any, cast

import pytest
import torch

from models.errors import TrainingError
from models.loading import pipeline_load
from models.registry import manifest_load
from models.training.build_tiny_random import CATALOG_WORDS, clip_tokenizer_build


def test_catalog_words_are_single_tokens() -> None:
    tokenizer = cast(Any, pipeline_load(manifest_load("embedded-tiny"), device="cpu")).tokenizer
    split = {word: tokenizer.tokenize(word) for word in CATALOG_WORDS if len(tokenizer.tokenize(word)) != 1}
    assert split == {}
    assert tokenizer.tokenize("a red mug on a wooden table") == [
        f"{word}</w>" for word in ("a", "red", "mug", "on", "a", "wooden", "table")
    ]


def test_the_shipped_model_generates_a_different_image_per_seed_and_the_same_for_a_seed() -> None:
    manifest = manifest_load("embedded-tiny")
    pipe = cast(Any, pipeline_load(manifest, device="cpu"))  # DiffusionPipeline.__call__ is per subclass

    def generate(seeds: list[int]) -> torch.Tensor:
        out = pipe(
            prompt=["a red mug"] * len(seeds),
            num_inference_steps=manifest.defaults.steps,
            guidance_scale=manifest.defaults.guidance,
            generator=[torch.Generator().manual_seed(s) for s in seeds],
            output_type="pt",
        )
        return cast(torch.Tensor, out.images)

    images = generate([1, 2])
    assert images.shape == (2, 3, manifest.defaults.height, manifest.defaults.width)
    assert torch.isfinite(images).all()
    assert images.std() > 0.05  # colour noise, not a flat (or black) frame
    assert (images[0] - images[1]).abs().mean() > 0.05
    # The same seed gives the same picture whatever the batch (to float rounding on CPU kernels).
    assert torch.allclose(generate([2, 1])[1], images[0], atol=1e-3)
    assert torch.allclose(generate([1])[0], images[0], atol=1e-3)


def test_a_word_the_tokenizer_would_split_is_refused_naming_it() -> None:
    with pytest.raises(TrainingError, match=r"^words = 't-shirt': the tokenizer splits it into 3 tokens"):
        clip_tokenizer_build(words=("t", "shirt", "t-shirt"))  # "t", "-", "shirt"
