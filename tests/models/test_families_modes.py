"""What each family can draw from a source image (image-to-image, inpainting, image-to-video) and
which take textual inversions, checked against diffusers' own classes."""

from __future__ import annotations

import pytest

from models.families import (
    FAMILIES,
    IMAGE_TO_VIDEO,
    IMAGE_TO_VIDEO_PIPELINES,
    SOURCE_FAMILIES,
    TEXTUAL_INVERSION_FAMILIES,
    source_mode_refusal,
)


@pytest.mark.parametrize(
    ("family", "mode", "refused"),
    [
        ("stable-diffusion", "image-to-image", ""),
        ("stable-diffusion-xl", "inpainting", ""),
        ("stable-diffusion", "text-to-image", ""),  # a ControlNet's structure from the photo
        ("flux", "image-to-image", "makes text-to-image only (image-to-image and inpainting: stable-diffusion"),
        ("ltx-video", IMAGE_TO_VIDEO, ""),
        ("wan", IMAGE_TO_VIDEO, "has no image-to-video (families with it: ltx-video)"),
        ("stable-diffusion", IMAGE_TO_VIDEO, "has no image-to-video"),
        ("ltx-video", "image-to-image", "makes text-to-image only"),
    ],
)
def test_each_family_draws_from_a_source_only_in_the_modes_it_has(family: str, mode: str, refused: str) -> None:
    refusal = source_mode_refusal(family, mode)
    assert refusal.startswith(refused) and bool(refusal) == bool(refused)


def test_the_image_to_video_classes_are_diffusers_pipelines_of_video_families() -> None:
    import diffusers

    for family, class_name in IMAGE_TO_VIDEO_PIPELINES.items():
        assert FAMILIES[family].temporal_scale is not None  # a video family
        assert issubclass(getattr(diffusers, class_name), diffusers.DiffusionPipeline)
        assert family not in SOURCE_FAMILIES


def test_the_textual_inversion_families_load_them_in_every_pipeline_they_make() -> None:
    import diffusers
    from diffusers.loaders import TextualInversionLoaderMixin

    for family in TEXTUAL_INVERSION_FAMILIES:
        for class_name in FAMILIES[family].pipelines:
            assert issubclass(getattr(diffusers, class_name), TextualInversionLoaderMixin), class_name
    for family in ("wan", "ltx-video"):  # T5 text encoders only: no textual inversion loader
        assert family not in TEXTUAL_INVERSION_FAMILIES
        for class_name in FAMILIES[family].pipelines:
            assert not issubclass(getattr(diffusers, class_name), TextualInversionLoaderMixin), class_name
