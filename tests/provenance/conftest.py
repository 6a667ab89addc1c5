"""Provenance fixtures: a watermarked product shot, unsigned, as PNG and JPEG."""

from __future__ import annotations

import pytest
from PIL import Image

from provenance.watermark import watermark_embed
from tests.provenance.samples import SERIAL, encode, product_shot


@pytest.fixture(scope="session")
def marked_image() -> Image.Image:
    return watermark_embed(product_shot(1), SERIAL)


@pytest.fixture(scope="session")
def unsigned(marked_image: Image.Image) -> dict[str, bytes]:
    return {mime: encode(marked_image, mime) for mime in ("image/png", "image/jpeg")}
