"""The content check: a picture matches its own descriptor after the edits the mark survives
(JPEG, resize, a 10% crop at the centre or a corner, mirroring, quarter turns, a small rotation)
and never another picture's."""

from __future__ import annotations

import io

import pytest
from PIL import Image, ImageEnhance, ImageOps

from provenance.fingerprint import MATCH_SIMILARITY, fingerprint_matches, fingerprint_similarity, image_fingerprint
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
