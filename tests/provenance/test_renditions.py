"""Thumbnails that carry the serial where they can: the requested size first, larger sizes for
busy photographs, and an unmarked one claiming no watermark when no size carries it."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from PIL import Image

from provenance.credentials import c2pa_read, c2pa_sign
from provenance.renditions import RenditionRequest, image_fit, rendition_sign, thumbnail_render, thumbnail_sizes
from provenance.watermark import DEFAULT_KEY, watermark_embed, watermark_payload, watermark_read
from provenance.watermark_keys import WatermarkKey
from tests.provenance.samples import BUSY, SERIAL, decoded, encode, manifest_for, photograph, product_shot

THUMB = RenditionRequest(name="thumbnail", format="jpeg", width=256, height=256, quality=80)
# These tests mark and read with the watermark's default key; the pipeline uses the installation's.
KEY = WatermarkKey(key_id="wk-0123456789ab", secret=DEFAULT_KEY)


def test_thumbnail_sizes_step_up_from_the_request_to_the_largest_that_fits_the_master() -> None:
    assert thumbnail_sizes(THUMB, (1024, 1024)) == [
        (256, 256),
        (320, 320),
        (384, 384),
        (448, 448),
        (512, 512),
        (640, 640),
        (768, 768),
        (896, 896),
        (1024, 1024),
    ]
    # Cropped to the request's aspect, never enlarged: the largest square of a 600x400 master.
    assert thumbnail_sizes(THUMB, (600, 400)) == [(256, 256), (320, 320), (384, 384), (400, 400)]
    assert thumbnail_sizes(THUMB, (256, 256)) == [(256, 256)]
    wide = RenditionRequest(name="poster", format="jpeg", width=320, height=256)
    assert thumbnail_sizes(wide, (512, 512))[:3] == [(320, 256), (400, 320), (480, 384)]


@pytest.mark.parametrize(
    ("master", "size"), [((512, 512), (256, 256)), ((1024, 768), (256, 192)), ((600, 400), (256, 256))]
)
def test_a_fast_fit_is_the_area_average_lanczos_finishes_where_the_factor_is_not_whole(
    master: tuple[int, int], size: tuple[int, int]
) -> None:
    image = product_shot(5).resize(master, Image.Resampling.LANCZOS)

    fitted = image_fit(image, size, fast=True)

    # What Pillow's resize makes with reducing_gap 1 (the area average over the whole factor, then
    # Lanczos for what is left), pixel for pixel: at whole factors that is Image.reduce alone.
    width, height = master
    crop = min(width / size[0], height / size[1])
    box = ((width - size[0] * crop) / 2, (height - size[1] * crop) / 2)
    box4 = (box[0], box[1], width - box[0], height - box[1])
    expected = image.resize(size, Image.Resampling.LANCZOS, box=box4, reducing_gap=1.0)
    assert fitted.size == size
    assert np.array_equal(np.asarray(fitted), np.asarray(expected))
    if (width // size[0]) * size[0] == width and (width // size[0]) * size[1] == height:
        assert np.array_equal(np.asarray(fitted), np.asarray(image.reduce(width // size[0])))


def test_an_ordinary_image_keeps_its_256_px_thumbnail_marked_again() -> None:
    master = watermark_embed(product_shot(3), SERIAL)

    thumb = thumbnail_render(master, serial=SERIAL, mark_key=KEY, request=THUMB, transcoded=True)

    assert (thumb.size, thumb.mark) == ((256, 256), "own")
    assert thumb.actions == ("c2pa.resized", "c2pa.transcoded", "c2pa.watermarked")
    image = decoded(thumb.data)
    assert image.size == (256, 256) and watermark_read(image).serial == SERIAL


@pytest.mark.parametrize(("name", "side"), BUSY)
def test_a_busy_photographs_thumbnail_carries_the_serial_at_the_size_it_records(name: str, side: int) -> None:
    master = watermark_embed(photograph(name, side), SERIAL)

    thumb = thumbnail_render(master, serial=SERIAL, mark_key=KEY, request=THUMB, transcoded=True)

    assert thumb.size in thumbnail_sizes(THUMB, master.size)
    image = decoded(thumb.data)
    assert image.size == thumb.size
    assert thumb.mark in ("own", "master")
    assert watermark_read(image).serial == SERIAL
    # Only a thumbnail marked again at its size says it was watermarked.
    assert ("c2pa.watermarked" in thumb.actions) == (thumb.mark == "own")


def test_a_still_that_carries_the_serial_at_no_size_is_kept_unmarked_and_claims_no_watermark(
    signer: Any, context: Any
) -> None:
    # Flat white takes no mark at any size (watermark_embed refuses it), and carries none.
    white = Image.new("RGB", (512, 512), (255, 255, 255))
    master = c2pa_sign(
        encode(white, "image/png"), mime="image/png", manifest=manifest_for(), signer=signer, context=context
    )

    thumb = thumbnail_render(white, serial=SERIAL, mark_key=KEY, request=THUMB, transcoded=True)
    data = rendition_sign(
        thumb,
        master=master,
        master_mime="image/png",
        serial=SERIAL,
        mark_key=KEY,
        request=THUMB,
        title="white",
        signer=signer,
        context=context,
    )

    assert (thumb.size, thumb.mark) == ((256, 256), "none")
    report = c2pa_read(data, mime="image/jpeg", context=context)
    assert report.state == "trusted", report.validation_codes
    assert report.actions() == ["c2pa.opened", "c2pa.resized", "c2pa.transcoded"]
    assert report.assertion("c2pa.soft-binding") is None
    assert watermark_read(decoded(data)).serial is None


def test_a_thumbnail_carrying_the_masters_mark_asserts_the_soft_binding_but_not_a_new_watermark(
    signer: Any, context: Any
) -> None:
    master_image = watermark_embed(photograph("astronaut", 512), SERIAL)
    master = c2pa_sign(
        encode(master_image, "image/png"), mime="image/png", manifest=manifest_for(), signer=signer, context=context
    )
    thumb = thumbnail_render(master_image, serial=SERIAL, mark_key=KEY, request=THUMB, transcoded=True)
    # Halved from 512 px, the master's mark still reads (the detector looks down to 0.4x): the
    # thumbnail keeps its 256 px rather than growing to take a mark of its own.
    assert (thumb.size, thumb.mark) == ((256, 256), "master")

    data = rendition_sign(
        thumb,
        master=master,
        master_mime="image/png",
        serial=SERIAL,
        mark_key=KEY,
        request=THUMB,
        title="astronaut",
        signer=signer,
        context=context,
    )

    report = c2pa_read(data, mime="image/jpeg", context=context)
    assert report.state == "trusted", report.validation_codes
    assert "c2pa.watermarked" not in report.actions()
    binding = report.assertion("c2pa.soft-binding")
    assert binding is not None and binding["blocks"][0]["value"] == watermark_payload(SERIAL)
    assert watermark_read(decoded(data)).serial == SERIAL
