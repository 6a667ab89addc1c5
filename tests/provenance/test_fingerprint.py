"""The content check: a picture matches its own descriptor after the edits the mark survives
(JPEG, resize, a 10% crop at the centre or a corner, mirroring, quarter turns, a small rotation)
and never another picture's."""

from __future__ import annotations

import io

import cv2
import numpy as np
import pytest
from PIL import Image, ImageEnhance, ImageOps

from provenance.fingerprint import (
    MATCH_SIMILARITY,
    SIDE,
    _area_table,
    _shrunk,
    fingerprint_matches,
    fingerprint_similarity,
    image_fingerprint,
)
from tests.provenance.samples import photograph, product_shot


def jpeg(image: Image.Image, quality: int) -> Image.Image:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")


EDITS = {
    "jpeg q60": lambda im: jpeg(im, 60),
    "half size": lambda im: im.resize((im.width // 2, im.height // 2), Image.Resampling.BICUBIC),
    "centre crop 10%": lambda im: im.crop((im.width // 20, im.height // 20, im.width * 19 // 20, im.height * 19 // 20)),
    "corner crop 10%": lambda im: im.crop((im.width // 10, im.height // 10, im.width, im.height)),
    "mirror + jpeg": lambda im: jpeg(ImageOps.mirror(im), 80),
    "rotate 2 degrees": lambda im: im.rotate(2, Image.Resampling.BICUBIC),
    "quarter turn": lambda im: im.transpose(Image.Transpose.ROTATE_90),
    "brightness +20%": lambda im: ImageEnhance.Brightness(im).enhance(1.2),
    "greyscale": lambda im: ImageOps.grayscale(im),
}
PICTURES = [photograph(name, 512) for name in ("astronaut", "coins", "stereo_motorcycle")] + [
    product_shot(seed) for seed in (1, 2, 3)
]


@pytest.mark.parametrize("edit", list(EDITS))
def test_an_edited_picture_matches_its_own_descriptor_and_no_other(edit: str) -> None:
    stored = [image_fingerprint(picture) for picture in PICTURES]
    for index, picture in enumerate(PICTURES):
        edited = EDITS[edit](picture)
        assert fingerprint_matches(edited, stored[index]), (edit, index, fingerprint_similarity(edited, stored[index]))
        others = [fingerprint_similarity(edited, s) for j, s in enumerate(stored) if j != index]
        assert all(o is not None and o < MATCH_SIMILARITY for o in others), (edit, index, others)


def test_a_descriptor_is_small_text_and_nothing_else_is_read_as_one() -> None:
    stored = image_fingerprint(product_shot(4))
    assert stored.startswith("dct-cos.v1:") and len(stored) < 1200
    assert fingerprint_matches(product_shot(4), "") is None
    assert fingerprint_matches(product_shot(4), "dct-cos.v1:not base64!") is None
    assert fingerprint_matches(product_shot(4), "other.v9:AAAA") is None
    assert fingerprint_matches(Image.new("RGB", (300, 200), (128, 128, 128)), stored) is False


def test_regions_shrink_to_the_area_mean_opencv_computes_each_on_its_own() -> None:
    """The regions the descriptor is made of are shrunk all at once from one summed-area table:
    each must come out as cv2's area resize of that region alone, whatever the other regions
    are (whole-pixel regions here, where cv2 can crop them; fractions follow the same table)."""
    grey = np.asarray(photograph("coins", 512).convert("L").resize((333, 250)), dtype=np.uint8)
    table = _area_table(Image.fromarray(grey))
    regions = [(0.0, 0.0, 250.0, 333.0), (10.0, 20.0, 200.0, 300.0), (50.0, 0.0, 128.0, 64.0), (249.0, 332.0, 1.0, 1.0)]
    together = _shrunk(table, regions)
    assert together.shape == (len(regions), SIDE, SIDE)
    for (top, left, height, width), small in zip(regions, together, strict=True):
        crop = grey[int(top) : int(top + height), int(left) : int(left + width)].astype(np.float32)
        expected = cv2.resize(crop, (SIDE, SIDE), interpolation=cv2.INTER_AREA)
        np.testing.assert_allclose(small, expected, rtol=0, atol=1e-3)
    np.testing.assert_array_equal(_shrunk(table, regions[1:2])[0], together[1])
