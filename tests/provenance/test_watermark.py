"""The tiled spread-spectrum watermark: round trips, edits it survives, false detections, refusals."""

from __future__ import annotations

import io
import math
from collections.abc import Callable

import av
import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter, ImageOps

from provenance import watermark_detection, watermark_search
from provenance.errors import WatermarkError
from provenance.watermark import (
    DEFAULT_KEY,
    FALSE_POSITIVE_BOUND,
    HYPOTHESES,
    MAX_GEOMETRIES,
    MAX_KEYS,
    MIN_SIDE,
    ORIENTATIONS,
    PAYLOAD_BITS,
    PLAIN_GEOMETRIES,
    SEARCH_GEOMETRIES,
    SEARCH_Z_THRESHOLD,
    SERIAL_BITS,
    SERIAL_MAX,
    Z_THRESHOLD,
    WatermarkReading,
    watermark_confirms,
    watermark_embed,
    watermark_payload,
    watermark_read,
    watermark_read_frames,
    z_threshold,
    z_thresholds,
)
from provenance.watermark_detection import IDENTITY, luma
from provenance.watermark_geometry import (
    FIXED_LATTICES,
    GRID_LATTICES,
    auto_lattices,
    grid_reach,
    scale_neighbours,
)
from tests.provenance.samples import psnr

Maker = Callable[[np.random.Generator, tuple[int, int]], Image.Image]


# --- images -------------------------------------------------------------------------------


def gradient(rng: np.random.Generator, size: tuple[int, int]) -> Image.Image:
    """A smooth two-colour gradient at a random angle (no texture to hide in)."""
    width, height = size
    y, x = np.mgrid[0:height, 0:width] / max(size)
    angle = rng.uniform(0, np.pi)
    t = (np.cos(angle) * x + np.sin(angle) * y)[..., None]
    t = (t - t.min()) / (t.max() - t.min() + 1e-9)
    start, end = rng.uniform(30, 225, 3), rng.uniform(30, 225, 3)
    return Image.fromarray((start * (1 - t) + end * t).astype(np.uint8))


def noise(rng: np.random.Generator, size: tuple[int, int]) -> Image.Image:
    """Uniform RGB noise: the most textured content there is."""
    return Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))


def blotches(rng: np.random.Generator, size: tuple[int, int]) -> Image.Image:
    """Coarse noise upscaled: blotchy, like foliage or stone out of focus.

    Full-contrast blotches 8-30 px across are busier at the chip scale than the mark can
    outweigh at PSNR 38 (embedding refuses them); these are 30-130 px across.
    """
    cells = (max(2, size[0] // int(rng.integers(30, 130))), max(2, size[1] // int(rng.integers(30, 130))))
    small = rng.integers(0, 256, (cells[1], cells[0], 3), dtype=np.uint8)
    return Image.fromarray(small).resize(size, Image.Resampling.BICUBIC)


def shapes(rng: np.random.Generator, size: tuple[int, int]) -> Image.Image:
    """Soft-edged ellipses and boxes on a gradient, like a simple product shot."""
    image = gradient(rng, size)
    draw = ImageDraw.Draw(image)
    for _ in range(int(rng.integers(3, 9))):
        x0, y0 = int(rng.integers(0, size[0] - 32)), int(rng.integers(0, size[1] - 32))
        x1, y1 = x0 + int(rng.integers(32, size[0] // 2 + 33)), y0 + int(rng.integers(32, size[1] // 2 + 33))
        fill = tuple(int(c) for c in rng.integers(0, 256, 3))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)((x0, y0, x1, y1), fill=fill)
    return image.filter(ImageFilter.GaussianBlur(float(rng.uniform(0.5, 3.0))))


def text_like(rng: np.random.Generator, size: tuple[int, int]) -> Image.Image:
    """Rows of glyph-like strokes on paper, like a flyer or a screenshot."""
    paper = tuple(int(c) for c in rng.integers(200, 256, 3))
    image = Image.new("RGB", size, paper)
    draw = ImageDraw.Draw(image)
    line = int(rng.integers(10, 24))
    for top in range(4, size[1] - line, line):
        draw.text((int(rng.integers(0, 20)), top), "Spring sale: 30% off all lamps " * 4, fill=(20, 20, 20))
    return image


def stripes(rng: np.random.Generator, size: tuple[int, int]) -> Image.Image:
    """Regular stripes and checks, a periodic structure that could look like a tile."""
    y, x = np.mgrid[0 : size[1], 0 : size[0]].astype(np.float32)
    waves = np.sin(2 * np.pi * x / rng.uniform(3, 64)) + np.sin(2 * np.pi * y / rng.uniform(3, 64))
    luma = 128 + 50 * waves
    return Image.fromarray(np.clip(np.stack([luma, luma * 0.9, luma * 0.7], axis=-1), 0, 255).astype(np.uint8))


def flat(rng: np.random.Generator, size: tuple[int, int]) -> Image.Image:
    return Image.new("RGB", size, tuple(int(c) for c in rng.integers(0, 256, 3)))


def photo(rng: np.random.Generator, size: tuple[int, int]) -> Image.Image:
    """A random crop of one of scikit-image's bundled photographs (shipped in the wheel)."""
    import skimage.data

    name = ("astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field", "retina")[int(rng.integers(0, 6))]
    image = Image.fromarray(getattr(skimage.data, name)()).convert("RGB")
    crop = int(rng.integers(min(image.size) // 3, min(image.size) + 1))
    left, top = int(rng.integers(0, image.width - crop + 1)), int(rng.integers(0, image.height - crop + 1))
    return image.crop((left, top, left + crop, top + crop)).resize(size, Image.Resampling.LANCZOS)


MARKABLE: dict[str, Maker] = {"gradient": gradient, "noise": noise, "blotches": blotches, "shapes": shapes}
UNMARKED: tuple[Maker, ...] = (gradient, noise, blotches, shapes, text_like, stripes, flat, photo)


def encoded(image: Image.Image, fmt: str, **options: int) -> Image.Image:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")


def marked(kind: str, seed: int, size: tuple[int, int] = (512, 512)) -> tuple[Image.Image, int]:
    rng = np.random.default_rng(seed)
    serial = int(rng.integers(0, SERIAL_MAX + 1))
    return watermark_embed(MARKABLE[kind](rng, size), serial), serial


# --- round trips --------------------------------------------------------------------------


@pytest.mark.parametrize("size", [(256, 256), (512, 512), (1024, 1024), (777, 533), (533, 777)])
@pytest.mark.parametrize("kind", ["shapes", "blotches"])
def test_round_trip_through_png_gives_the_serial_and_the_payload(size: tuple[int, int], kind: str) -> None:
    image, serial = marked(kind, seed=size[0] + size[1], size=size)

    reading = watermark_read(encoded(image, "PNG"))

    assert reading.serial == serial
    assert reading.check_ok
    assert reading.bits == watermark_payload(serial)
    assert reading.confidence >= Z_THRESHOLD
    assert (reading.scale, reading.offset) == (1.0, (0, 0))


@pytest.mark.parametrize("kind", ["shapes", "gradient"])
def test_thumbnail_keeps_the_mark_through_jpeg_q90(kind: str) -> None:
    image, serial = marked(kind, seed=3, size=(256, 256))

    assert watermark_read(encoded(image, "JPEG", quality=90)).serial == serial


@pytest.mark.parametrize("serial", [0, 1, SERIAL_MAX - 1, SERIAL_MAX])
def test_round_trip_at_the_ends_of_the_serial_range(serial: int) -> None:
    image = watermark_embed(shapes(np.random.default_rng(serial % 97), (512, 512)), serial)

    reading = watermark_read(image)

    assert reading.serial == serial
    assert reading.bits[:SERIAL_BITS] == format(serial, f"0{SERIAL_BITS}b")


# --- edits it survives --------------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(MARKABLE))
def test_mark_survives_jpeg_q75(kind: str) -> None:
    image, serial = marked(kind, seed=11)

    assert watermark_read(encoded(image, "JPEG", quality=75)).serial == serial


@pytest.mark.parametrize("kind", sorted(MARKABLE))
def test_mark_survives_a_ten_percent_crop_and_reports_the_shift(kind: str) -> None:
    image, serial = marked(kind, seed=12)
    left, top = 26, 25  # about 5% off each side
    cropped = image.crop((left, top, image.width - 25, image.height - 26))

    reading = watermark_read(cropped)

    assert reading.serial == serial
    # Where the cropped image's corner sits in the tile (found on a 2 px grid).
    assert abs(reading.offset[0] - left) <= 2 and abs(reading.offset[1] - top) <= 2


@pytest.mark.parametrize("kind", sorted(MARKABLE))
def test_mark_survives_halving_read_at_the_small_size(kind: str) -> None:
    image, serial = marked(kind, seed=13)
    half = image.resize((256, 256), Image.Resampling.BICUBIC)

    reading = watermark_read(half)

    assert reading.serial == serial
    assert reading.scale == pytest.approx(0.5, abs=0.01)


def test_mark_survives_crop_resize_and_jpeg_together() -> None:
    image, serial = marked("shapes", seed=14, size=(1024, 1024))
    edited = image.crop((51, 51, 973, 973)).resize((691, 691), Image.Resampling.BICUBIC)

    reading = watermark_read(encoded(edited, "JPEG", quality=80))

    assert reading.serial == serial
    assert reading.scale == pytest.approx(0.75, abs=0.01)


def test_light_background_keeps_the_mark_when_brightness_plus_20_percent_clips_it() -> None:
    import skimage.data

    # A quarter of this crop's pixels clip at +20%; marked at the default strength it read z 10.9.
    tissue = Image.fromarray(skimage.data.immunohistochemistry()).convert("RGB").crop((212, 0, 512, 300))
    image = watermark_embed(tissue.resize((512, 512), Image.Resampling.LANCZOS), 4242)

    reading = watermark_read(ImageEnhance.Brightness(image).enhance(1.2))

    assert reading.serial == 4242
    assert reading.confidence >= SEARCH_Z_THRESHOLD + 0.4  # the embedder's read-back target


def test_natural_photo_keeps_the_mark_through_jpeg_and_crop() -> None:
    rng = np.random.default_rng(5)
    original = photo(rng, (1024, 1024))
    image = watermark_embed(original, 424242)

    assert watermark_read(encoded(image.crop((40, 60, 1000, 990)), "JPEG", quality=75)).serial == 424242


# --- mirrors, quarter turns, aspect ratio, rotation ---------------------------------------


@pytest.mark.parametrize("kind", sorted(MARKABLE))
def test_mark_survives_a_horizontal_mirror_and_says_so(kind: str) -> None:
    image, serial = marked(kind, seed=15)

    reading = watermark_read(ImageOps.mirror(image))

    assert reading.serial == serial
    assert reading.mirrored
    assert reading.rotation == 0.0
    assert not watermark_read(image).mirrored


def test_mark_survives_a_vertical_flip_as_a_mirror_turned_half_way() -> None:
    image, serial = marked("shapes", seed=16, size=(640, 512))

    reading = watermark_read(ImageOps.flip(image))

    assert reading.serial == serial
    assert reading.mirrored and reading.rotation == 180.0


@pytest.mark.parametrize(
    ("turn", "degrees"),
    [(Image.Transpose.ROTATE_90, 90.0), (Image.Transpose.ROTATE_180, 180.0), (Image.Transpose.ROTATE_270, -90.0)],
)
@pytest.mark.parametrize("kind", ["shapes", "blotches"])
def test_mark_survives_quarter_turns_and_reports_the_angle(turn: Image.Transpose, degrees: float, kind: str) -> None:
    image, serial = marked(kind, seed=17, size=(640, 512))

    reading = watermark_read(image.transpose(turn))

    assert reading.serial == serial
    assert reading.rotation == degrees
    assert not reading.mirrored


@pytest.mark.parametrize(("width", "height"), [(1.1, 1.0), (0.9, 1.0), (1.0, 1.1), (1.0, 0.9)])
@pytest.mark.parametrize("kind", ["shapes", "blotches", "gradient"])
def test_mark_survives_a_ten_percent_change_of_aspect_ratio(width: float, height: float, kind: str) -> None:
    image, serial = marked(kind, seed=18)
    stretched = image.resize((round(512 * width), round(512 * height)), Image.Resampling.BICUBIC)

    reading = watermark_read(stretched)

    assert reading.serial == serial
    assert reading.scale == pytest.approx(math.sqrt(width * height), abs=0.01)


@pytest.mark.parametrize("degrees", [2.0, -2.0, 5.0, -5.0])
@pytest.mark.parametrize("kind", ["shapes", "blotches"])
def test_mark_survives_a_small_rotation_and_reports_the_angle(degrees: float, kind: str) -> None:
    image, serial = marked(kind, seed=19)

    reading = watermark_read(image.rotate(degrees, Image.Resampling.BICUBIC))  # black corners, same size

    assert reading.serial == serial
    assert reading.rotation == pytest.approx(degrees, abs=0.5)


def test_busy_photograph_survives_rotation_and_aspect_change_at_1024() -> None:
    # A natural photograph at full detail: its own texture outweighs the mark's autocorrelation
    # peaks at 512 px, so this is also where the pilot-driven search has to find the lattice.
    original = photo(np.random.default_rng(6), (1024, 1024))
    image = watermark_embed(original, 5151)

    for edited in (
        image.rotate(-4.0, Image.Resampling.BICUBIC),
        image.resize((1126, 1024), Image.Resampling.BICUBIC),
        encoded(ImageOps.mirror(image).resize((1024, 922), Image.Resampling.BICUBIC), "JPEG", quality=80),
    ):
        assert watermark_read(edited).serial == 5151


def test_mirrored_copy_posted_as_jpeg_after_a_crop_still_reads() -> None:
    image, serial = marked("blotches", seed=20)
    edited = ImageOps.mirror(image).crop((30, 12, 500, 480))

    assert watermark_read(encoded(edited, "JPEG", quality=75)).serial == serial


# --- visibility ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(MARKABLE))
def test_mark_keeps_psnr_at_least_38_db_and_moves_the_channels_along_the_luma_weights(kind: str) -> None:
    rng = np.random.default_rng(21)
    original = MARKABLE[kind](rng, (512, 512))
    image = watermark_embed(original, 99)

    delta = np.asarray(image, dtype=np.float64) - np.asarray(original, dtype=np.float64)
    unclipped = (np.asarray(original) > 20).all(axis=2) & (np.asarray(original) < 235).all(axis=2)
    assert 38.0 <= psnr(original, image) < 40.0
    # Wherever no channel clipped, each channel moves by its share of the luma change:
    # w / |w|^2 for BT.601 weights w, the least squared change for that luma change.
    luma_change = delta[unclipped] @ np.array([0.299, 0.587, 0.114])
    for channel, share in enumerate((0.669, 1.313, 0.255)):
        slope = (delta[unclipped, channel] @ luma_change) / (luma_change @ luma_change)
        assert slope == pytest.approx(share, abs=0.04)
    # No tint: on average no channel moves by as much as half a grey level.
    assert np.abs(delta.reshape(-1, 3).mean(axis=0)).max() < 0.5


def tiny_model_images(count: int) -> list[Image.Image]:
    """``count`` 512x512 masters from the shipped tiny model, made as the pipeline makes them
    (64x64 from the model, Lanczos up to the output size)."""
    from models import manifest_load
    from models.loading import pipeline_load
    from pipeline.generate import images_generate
    from prompt_library.specs import GenerationParams, OutputSpec, Variant

    manifest = manifest_load("embedded-tiny")
    variants = [
        Variant(
            campaign="watermark-test",
            template="catalog-hero",
            template_version=1,
            template_hash="0" * 64,
            variables=(),
            prompt=f"a {product} on a wooden table, product photo",
            negative_prompt="",
            seed=seed,
            params=GenerationParams(steps=4, guidance=1.0, width=64, height=64),
            output=OutputSpec(width=512, height=512),
            model_name=manifest.name,
            model_manifest_hash=manifest.manifest_hash,
        )
        for seed, product in enumerate(["red mug", "blue bottle", "yellow lamp"] * -(-count // 3))
    ][:count]
    return images_generate(pipeline_load(manifest), manifest, variants)


def test_tiny_model_masters_and_their_256_px_renditions_are_marked_and_read_back() -> None:
    from provenance.renditions import image_encode

    for index, image in enumerate(tiny_model_images(6)):
        serial = 7_000 + index
        master = watermark_embed(image, serial)
        assert psnr(image, master) >= 38.0
        # The thumbnail and the small WebP rendition: fitted from the marked master, marked again.
        small = watermark_embed(master.resize((256, 256), Image.Resampling.LANCZOS), serial)
        for fmt in ("jpeg", "webp"):
            data = image_encode(small, fmt, quality=80)
            assert watermark_read(Image.open(io.BytesIO(data)).convert("RGB")).serial == serial, (index, fmt)


@pytest.mark.parametrize("name", ["grass", "gravel", "colorwheel", "brick"])
def test_busy_textures_are_marked_more_strongly_rather_than_refused(name: str) -> None:
    import skimage.data

    pixels = np.asarray(getattr(skimage.data, name)())
    original = Image.fromarray(pixels).convert("RGB").resize((512, 512), Image.Resampling.LANCZOS)

    image = watermark_embed(original, 4242)

    assert watermark_read(encoded(image, "JPEG", quality=90)).serial == 4242
    assert psnr(original, image) >= 32.0


# --- false detections and keys ------------------------------------------------------------


def test_false_positive_bound_follows_from_the_constants() -> None:
    # Union bound over both tiers: every (lattice, orientation, shift) and every valid 40-bit word.
    per_lattice = ORIENTATIONS * 64 * 64 * 2.0**SERIAL_BITS
    bound = per_lattice * (
        PLAIN_GEOMETRIES * math.exp(-(Z_THRESHOLD**2) / 2) + SEARCH_GEOMETRIES * math.exp(-(SEARCH_Z_THRESHOLD**2) / 2)
    )

    assert HYPOTHESES == MAX_GEOMETRIES * ORIENTATIONS * 64 * 64
    assert MAX_GEOMETRIES == PLAIN_GEOMETRIES + SEARCH_GEOMETRIES
    assert 1 + len(FIXED_LATTICES) == PLAIN_GEOMETRIES
    # The grid with its neighbours, and three autocorrelation lattices with theirs.
    assert 3 * (len(GRID_LATTICES) + 3) == SEARCH_GEOMETRIES
    assert bound == pytest.approx(FALSE_POSITIVE_BOUND)
    assert FALSE_POSITIVE_BOUND <= 1e-9
    assert Z_THRESHOLD <= SEARCH_Z_THRESHOLD


@pytest.mark.parametrize("keys", [1, 2, 5, MAX_KEYS])
def test_reading_with_several_keys_raises_the_thresholds_to_keep_the_bound(keys: int) -> None:
    plain, searched = z_thresholds(keys)

    per_lattice = keys * ORIENTATIONS * 64 * 64 * 2.0**SERIAL_BITS
    bound = per_lattice * (
        PLAIN_GEOMETRIES * math.exp(-(plain**2) / 2) + SEARCH_GEOMETRIES * math.exp(-(searched**2) / 2)
    )
    assert bound <= 1e-9
    assert plain >= Z_THRESHOLD and searched >= SEARCH_Z_THRESHOLD
    assert (plain, searched) == (Z_THRESHOLD, SEARCH_Z_THRESHOLD) if keys == 1 else plain > Z_THRESHOLD
    assert z_threshold(keys) == plain


def _decided_and_screened(monkeypatch: pytest.MonkeyPatch) -> tuple[list[np.ndarray], list[int]]:
    """Record every lattice a read decides (folds in full and decodes) and how many coarse folds it screens."""
    decided: list[np.ndarray] = []
    screened = [0]
    original_init = watermark_detection.Synced.__init__
    original_screen = watermark_search.coarse_syncs

    def deciding(self: watermark_detection.Synced, spectrum: np.ndarray, ring: object, lattice: np.ndarray) -> None:
        decided.append(lattice)
        original_init(self, spectrum, ring, lattice)  # type: ignore[arg-type]

    def screening(spectra: np.ndarray, ring: object) -> list[float]:
        screened[0] += len(spectra)  # coarse folds, screened in batches
        return original_screen(spectra, ring)  # type: ignore[arg-type]

    monkeypatch.setattr(watermark_detection.Synced, "__init__", deciding)
    monkeypatch.setattr(watermark_search, "coarse_syncs", screening)
    return decided, screened


def _on_the_list(lattice: np.ndarray, image: Image.Image) -> bool:
    """Whether ``lattice`` is one the bound counts for this image: scale 1, a fixed scale, a grid
    lattice or its neighbour, or an autocorrelation lattice (from the image alone) or its neighbour."""
    canvas = watermark_search._Canvas([luma(image)])
    found = auto_lattices(canvas.autocorrelation(), FIXED_LATTICES)
    listed = [IDENTITY, *FIXED_LATTICES]
    listed += [one for lattice_, neighbours in GRID_LATTICES for one in (lattice_, *neighbours)]
    listed += [one for found_ in found for one in (found_, *scale_neighbours(found_))]
    return any(np.allclose(lattice, one) for one in listed)


@pytest.mark.parametrize("make", [noise, stripes, text_like, photo], ids=["noise", "stripes", "text_like", "photo"])
def test_an_unmarked_read_decides_only_lattices_the_bound_counts(make: Maker, monkeypatch: pytest.MonkeyPatch) -> None:
    # The bound counts MAX_GEOMETRIES lattices, each in ORIENTATIONS orientations: an unmarked
    # image walks the whole search, so this is the most a read can decide.
    image = make(np.random.default_rng(7), (640, 512))
    decided, screened = _decided_and_screened(monkeypatch)

    reading = watermark_read(image)

    assert reading.serial is None
    assert screened[0] >= len(GRID_LATTICES)  # it did search: every grid lattice at least coarsely
    assert 1 <= len(decided) <= MAX_GEOMETRIES
    assert all(_on_the_list(lattice, image) for lattice in decided)


def test_the_lattices_a_read_walks_depend_on_the_image_not_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    # What makes the union bound honest: the list is fixed by the image; the key only decides
    # which of its lattices are folded in full, and around which the neighbours are tried.
    image = photo(np.random.default_rng(8), (640, 512))
    found = auto_lattices(watermark_search._Canvas([luma(image)]).autocorrelation(), FIXED_LATTICES)
    neighbours = [one for _, pair in GRID_LATTICES for one in pair]
    neighbours += [one for lattice in found for one in scale_neighbours(lattice)]
    walks = []
    for key in ("installation-a", "installation-b"):
        screened: list[np.ndarray] = []
        original = watermark_search._Canvas.coarse

        def recording(self: watermark_search._Canvas, lattice: np.ndarray, **kwargs: bool) -> np.ndarray:
            screened.append(lattice)  # noqa: B023 (called only inside this iteration's context)
            return original(self, lattice, **kwargs)  # noqa: B023

        with monkeypatch.context() as patched:
            patched.setattr(watermark_search._Canvas, "coarse", recording)
            assert watermark_read(image, key=key).serial is None
        assert all(_on_the_list(lattice, image) for lattice in screened)
        walks.append([lattice for lattice in screened if not any(np.allclose(lattice, n) for n in neighbours)])
    first, second = walks
    assert len(first) == len(second) >= len(GRID_LATTICES)
    assert all(np.allclose(one, other) for one, other in zip(first, second, strict=True))


def test_a_near_miss_tries_only_listed_lattices_next_to_it(monkeypatch: pytest.MonkeyPatch) -> None:
    # A word that passes the CRC short of the threshold sends the read on to the lattices within
    # a grid step of it: more folds, within their own budget, all on the list the bound counts.
    image, _ = marked("shapes", seed=19)
    turned = image.rotate(-2.0, Image.Resampling.BICUBIC)
    monkeypatch.setattr(watermark_search, "z_thresholds", lambda keys: (99.0, 99.0))  # every valid word falls short
    runs = []
    for near_folds in (0, watermark_search._NEAR_FOLDS):
        with monkeypatch.context() as patched:
            patched.setattr(watermark_search, "_NEAR_FOLDS", near_folds)
            decided, _ = _decided_and_screened(patched)
            reading = watermark_read(turned)
        assert reading.serial is None and reading.check_ok
        assert all(_on_the_list(lattice, turned) for lattice in decided)
        runs.append(decided)
    without, with_near = runs
    extra = [one for one in with_near if not any(np.allclose(one, other) for other in without)]
    assert 1 <= len(extra) <= watermark_search._NEAR_FOLDS
    reach = grid_reach(min(turned.size))
    assert all(any(np.abs(one - other).max() <= reach for other in without) for one in extra)


def test_a_thousand_unmarked_images_read_as_no_serial() -> None:
    rng = np.random.default_rng(2024)
    confidences = []
    for index in range(1000):
        make = UNMARKED[index % len(UNMARKED)]
        reading = watermark_read(make(rng, (256, 256)))
        assert reading.serial is None, f"image {index} ({make.__name__}) read as serial {reading.serial}"
        confidences.append(reading.confidence)
    # Well clear of the threshold, not just under it.
    assert max(confidences) < Z_THRESHOLD - 1.0


def test_several_keys_are_read_at_once_and_the_matching_one_is_named() -> None:
    rng = np.random.default_rng(34)
    serial = int(rng.integers(0, SERIAL_MAX + 1))
    image = watermark_embed(shapes(rng, (512, 512)), serial, key="installation-b")

    reading = watermark_read(ImageOps.mirror(image), keys=["installation-a", "installation-b", "installation-c"])
    alone = watermark_read(image, key="installation-b")
    others = watermark_read(image, keys=["installation-a", "installation-c"])

    assert (reading.serial, reading.key_index, reading.mirrored) == (serial, 1, True)
    assert reading.confidence >= z_threshold(3)
    assert (alone.serial, alone.key_index) == (serial, 0)
    assert (others.serial, others.key_index) == (None, None)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"key": "a", "keys": ["b"]}, "either key or keys"),
        ({"keys": []}, "give 1 to"),
        ({"keys": [f"k{index}" for index in range(MAX_KEYS + 1)]}, f"got {MAX_KEYS + 1}"),
        ({"keys": ["a", ""]}, r"keys\[1\]"),
        ({"keys": ["a", 7]}, r"keys\[1\] .* got int"),
    ],
)
def test_bad_keys_are_refused_naming_them(arguments: dict[str, object], message: str) -> None:
    with pytest.raises(WatermarkError, match=message):
        watermark_read(noise(np.random.default_rng(0), (256, 256)), **arguments)  # type: ignore[arg-type]


def test_wrong_key_reads_nothing() -> None:
    image, _ = marked("shapes", seed=31)

    reading = watermark_read(image, key="another-deployment")

    assert reading.serial is None
    assert reading.confidence < Z_THRESHOLD


def test_image_marked_with_another_serial_never_reads_as_a_different_valid_serial() -> None:
    rng = np.random.default_rng(32)
    base = blotches(rng, (256, 256))
    serials = [int(s) for s in rng.integers(0, SERIAL_MAX + 1, 12)]
    for serial in serials:
        image = watermark_embed(base, serial)
        for edited in (image, encoded(image, "JPEG", quality=50), image.resize((128 * 2, 128 * 2))):
            assert watermark_read(edited).serial in (serial, None)
        assert watermark_read(image).serial == serial


def test_confirming_a_serial_answers_as_the_whole_read_does(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(34)
    base = blotches(rng, (256, 256))
    serial = int(rng.integers(0, SERIAL_MAX + 1))
    image = watermark_embed(base, serial)
    searches: list[int] = []
    search = watermark_search._search

    def counted(lumas: list[np.ndarray], keys: list[str]) -> WatermarkReading:
        searches.append(1)
        return search(lumas, keys)

    monkeypatch.setattr(watermark_search, "_search", counted)
    # An unedited copy: the quick read at scale 1 answers, the search never runs.
    assert watermark_confirms(encoded(image, "JPEG", quality=80), serial, key=DEFAULT_KEY)
    assert searches == []
    # Where the quick read falls short, the whole read decides: a mirror image still reads, another
    # serial, an unmarked copy or another key do not.
    mirrored = ImageOps.mirror(image)
    assert watermark_confirms(mirrored, serial, key=DEFAULT_KEY) and searches == [1]
    assert not watermark_confirms(image, serial ^ 1, key=DEFAULT_KEY)
    assert not watermark_confirms(base, serial, key=DEFAULT_KEY)
    assert not watermark_confirms(image, serial, key="another key")
    for one in (image, mirrored, base):
        assert watermark_confirms(one, serial, key=DEFAULT_KEY) == (watermark_read(one).serial == serial)


def test_remarking_a_marked_image_with_its_own_serial_still_reads() -> None:
    image, serial = marked("shapes", seed=33)

    assert watermark_read(watermark_embed(image, serial)).serial == serial


# --- video --------------------------------------------------------------------------------


def test_frames_each_too_weak_to_read_decode_together() -> None:
    rng = np.random.default_rng(41)
    base = np.asarray(blotches(rng, (256, 256)), dtype=np.float32)
    mark = np.asarray(watermark_embed(Image.fromarray(base.astype(np.uint8)), 777), dtype=np.float32) - base
    frames = []
    for _ in range(12):  # a tenth of the mark each, under sensor noise
        noisy = base + 0.1 * mark + rng.normal(0, 8.0, base.shape)
        frames.append(Image.fromarray(np.clip(np.rint(noisy), 0, 255).astype(np.uint8)))

    singles = [watermark_read(frame).serial for frame in frames]
    together = watermark_read_frames(frames)

    assert singles.count(777) == 0
    assert together.serial == 777
    assert together.frames == 12


def moving_clip(kind: str, seed: int, count: int = 16, side: int = 256) -> list[Image.Image]:
    """A short clip with motion: a pan across a photograph, or shapes moving over a gradient."""
    rng = np.random.default_rng(seed)
    if kind == "pan":
        wide = photo(rng, (side + 3 * count, side + 2 * count))
        return [wide.crop((3 * t, 2 * t, 3 * t + side, 2 * t + side)) for t in range(count)]
    background = gradient(rng, (side, side))
    boxes = [(rng.uniform(0, side * 0.6, 2), rng.uniform(-6, 6, 2), int(rng.integers(30, 90))) for _ in range(4)]
    frames = []
    for t in range(count):
        frame = background.copy()
        draw = ImageDraw.Draw(frame)
        for index, (start, velocity, extent) in enumerate(boxes):
            x, y = start + velocity * t
            fill = (60 * index + 20, 200 - 40 * index, 90)
            (draw.ellipse if index % 2 else draw.rectangle)((float(x), float(y), x + extent, y + extent), fill=fill)
        frames.append(frame.filter(ImageFilter.GaussianBlur(1.0)))
    return frames


def h264_round_trip(frames: list[Image.Image], crf: int) -> list[Image.Image]:
    """Encode the frames as H.264 (libx264, yuv420p) at ``crf`` with PyAV and decode them again."""
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=24)
        stream.width, stream.height = frames[0].size
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": str(crf)}
        stream.codec_context.thread_count = 1  # x264's output depends on its thread count: same on every machine
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_image(frame)))
        container.mux(stream.encode())
    assert f"crf={crf}.0".encode() in buffer.getvalue()  # x264's own record of its settings: the CRF was taken
    with av.open(io.BytesIO(buffer.getvalue()), mode="r") as container:
        return [frame.to_image() for frame in container.decode(video=0)]


@pytest.mark.parametrize("kind", ["pan", "shapes"])
def test_marked_clip_survives_an_h264_crf_23_encode_with_the_exact_serial(kind: str) -> None:
    serial = 0x5A_1234_ABCD
    clip = [watermark_embed(frame, serial) for frame in moving_clip(kind, seed=61)]

    frames = h264_round_trip(clip, crf=23)
    reading = watermark_read_frames(frames)

    assert len(frames) == 16
    assert reading.serial == serial
    assert reading.bits == watermark_payload(serial)
    assert reading.frames == 16


@pytest.mark.parametrize("kind", ["pan", "shapes"])
def test_unmarked_clip_after_h264_is_not_detected(kind: str) -> None:
    reading = watermark_read_frames(h264_round_trip(moving_clip(kind, seed=62), crf=23))

    assert reading.serial is None
    assert reading.confidence < Z_THRESHOLD - 1.0


def test_frames_of_different_sizes_are_refused() -> None:
    with pytest.raises(WatermarkError, match="one size"):
        watermark_read_frames([Image.new("RGB", (256, 256)), Image.new("RGB", (300, 256))])


# --- refusals -----------------------------------------------------------------------------


@pytest.mark.parametrize("size", [(255, 400), (400, 255), (64, 64)])
def test_too_small_image_is_refused_naming_its_size(size: tuple[int, int]) -> None:
    image = noise(np.random.default_rng(0), size)
    with pytest.raises(WatermarkError, match=f"{size[0]}x{size[1]}"):
        watermark_embed(image, 1)
    with pytest.raises(WatermarkError, match=f"at least {MIN_SIDE}x{MIN_SIDE}"):
        watermark_read(image)


@pytest.mark.parametrize("serial", [-1, SERIAL_MAX + 1, True, 1.0, "7", None])
def test_bad_serial_is_refused(serial: object) -> None:
    with pytest.raises(WatermarkError, match="serial"):
        watermark_embed(noise(np.random.default_rng(0), (256, 256)), serial)  # type: ignore[arg-type]
    with pytest.raises(WatermarkError, match="serial"):
        watermark_payload(serial)  # type: ignore[arg-type]


@pytest.mark.parametrize("mode", ["L", "RGBA", "P", "CMYK"])
def test_non_rgb_image_is_refused_for_embedding_but_read(mode: str) -> None:
    image, serial = marked("shapes", seed=51, size=(256, 256))
    with pytest.raises(WatermarkError, match=f"mode {mode!r}"):
        watermark_embed(image.convert(mode), 1)
    if mode in ("RGBA", "CMYK"):  # lossless conversions keep the luma
        assert watermark_read(image.convert(mode)).serial == serial


@pytest.mark.parametrize("colour", [(255, 255, 255), (0, 0, 0)])
def test_image_that_cannot_carry_the_mark_is_refused(colour: tuple[int, int, int]) -> None:
    with pytest.raises(WatermarkError, match="cannot carry"):
        watermark_embed(Image.new("RGB", (512, 512), colour), 5)


def test_payload_is_serial_then_crc_as_bit_text() -> None:
    payload = watermark_payload(0x12_3456_789A)

    assert len(payload) == PAYLOAD_BITS == 56
    assert set(payload) <= {"0", "1"}
    assert payload[:SERIAL_BITS] == format(0x12_3456_789A, "040b")
    assert watermark_payload(0x12_3456_789B)[SERIAL_BITS:] != payload[SERIAL_BITS:]


def test_reading_is_frozen() -> None:
    reading = watermark_read(noise(np.random.default_rng(1), (256, 256)))
    assert isinstance(reading, WatermarkReading)
    with pytest.raises(AttributeError):
        reading.serial = 5  # type: ignore[misc]
