"""The procedural catalog domain the embedded model is trained on, and an independent judge for it.

Five product kinds x six colours x four scenes, drawn with PIL at 64x64 (2x supersampled) with a
little random jitter in position, size and colour. ``catalog_draw`` makes one picture,
``caption_for`` its prompt ("a red mug on a wooden table"). ``HELD_OUT`` lists the combinations
never shown in training (about 10%, chosen with a fixed seed), so a bench can tell memorising
from composing.

``image_judge`` reads a picture back without any learned part: the scene from the colours along
the left and right borders, the product mask from the pixels that differ from that border colour
row by row (less anything under 3 px tall, such as a wobbly horizon), the colour from the majority
hue name inside the mask (so a darker red is still red), and the kind from the mask's shape
(aspect, fill ratio, holes, width and height profiles) by nearest centroid against features
measured on the generator's own drawings.
"""

from __future__ import annotations

import functools
import itertools
import random
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image, ImageDraw

from models.errors import CatalogError

SIZE = 64
_SS = 2  # supersampling factor for drawing, for anti-aliased edges
KINDS: tuple[str, ...] = ("mug", "bottle", "sneaker box", "t-shirt", "lamp")
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (212, 38, 38),
    "blue": (38, 78, 218),
    "green": (36, 160, 58),
    "yellow": (240, 208, 36),
    "black": (26, 26, 28),
    "white": (250, 250, 250),
}
SCENES: tuple[str, ...] = ("studio", "wooden table", "gradient", "outdoor")
SCENE_PHRASES: dict[str, str] = {
    "studio": "on a white studio background",
    "wooden table": "on a wooden table",
    "gradient": "on a gradient background",
    "outdoor": "outdoor on grass",
}
HELD_OUT_SEED = 20261121
HELD_OUT_FRACTION = 0.1


@dataclass(frozen=True)
class Combo:
    """One product kind in one colour in one scene."""

    kind: str
    colour: str
    scene: str

    @property
    def caption(self) -> str:
        """The prompt for this combination."""
        return caption_for(self.kind, self.colour, self.scene)


@dataclass(frozen=True)
class Judgement:
    """What the judge reads from a picture; ``None`` where it finds no product."""

    kind: str | None
    colour: str | None
    scene: str

    def matches(self, combo: Combo) -> tuple[bool, bool, bool]:
        """Whether kind, colour and scene agree with ``combo``."""
        return (self.kind == combo.kind, self.colour == combo.colour, self.scene == combo.scene)


def caption_for(kind: str, colour: str, scene: str) -> str:
    """The training caption and prompt for one combination: ``a red mug on a wooden table``."""
    return f"a {colour} {kind} {SCENE_PHRASES[scene]}"


ALL_COMBOS: tuple[Combo, ...] = tuple(Combo(k, c, s) for k, c, s in itertools.product(KINDS, COLOURS, SCENES))


def _held_out_choose() -> tuple[Combo, ...]:
    rng = random.Random(HELD_OUT_SEED)
    count = round(len(ALL_COMBOS) * HELD_OUT_FRACTION)
    return tuple(sorted(rng.sample(ALL_COMBOS, count), key=ALL_COMBOS.index))


HELD_OUT: tuple[Combo, ...] = _held_out_choose()
SEEN: tuple[Combo, ...] = tuple(c for c in ALL_COMBOS if c not in HELD_OUT)

# Words the tokenizer must keep whole (one token each); "t-shirt" is "t", "-", "shirt".
VOCABULARY: tuple[str, ...] = tuple(
    dict.fromkeys(
        word
        for combo in ALL_COMBOS
        for word in combo.caption.replace("-", " ").split()
        if word.isalpha()  # ascii letters only; punctuation stays byte-level
    )
)


# --- drawing -----------------------------------------------------------------------------------


def _jitter(colour: tuple[int, int, int], rng: random.Random, amount: int) -> tuple[int, int, int]:
    r, g, b = (min(255, max(0, v + rng.randint(-amount, amount))) for v in colour)
    return (r, g, b)


def _mix(a: tuple[int, int, int], b: tuple[int, int, int], t: float) -> tuple[int, int, int]:
    r, g, bl = (round(x + (y - x) * t) for x, y in zip(a, b, strict=True))
    return (r, g, bl)


def _scene_draw(draw: ImageDraw.ImageDraw, scene: str, rng: random.Random) -> None:
    """Paint the background (at supersampled size); scenes vary top to bottom, not left to right."""
    full = SIZE * _SS
    if scene == "studio":
        top, bottom = _jitter((214, 214, 217), rng, 5), _jitter((194, 194, 199), rng, 5)
        for y in range(full):
            draw.line([(0, y), (full, y)], fill=_mix(top, bottom, y / full))
    elif scene == "wooden table":
        wall, wood = _jitter((228, 212, 182), rng, 6), _jitter((142, 94, 54), rng, 6)
        edge = (40 + rng.randint(-2, 2)) * _SS
        draw.rectangle([0, 0, full, edge], fill=wall)
        draw.rectangle([0, edge, full, full], fill=wood)
        for y in range(edge + 3 * _SS, full, 4 * _SS):  # wood grain
            draw.line([(0, y), (full, y + rng.randint(-2, 2))], fill=_mix(wood, (90, 56, 30), 0.35), width=1)
    elif scene == "gradient":
        top, bottom = _jitter((204, 182, 236), rng, 6), _jitter((112, 88, 168), rng, 6)
        for y in range(full):
            draw.line([(0, y), (full, y)], fill=_mix(top, bottom, y / full))
    elif scene == "outdoor":
        sky_top, sky_low = _jitter((150, 196, 240), rng, 6), _jitter((196, 222, 244), rng, 6)
        grass = _jitter((98, 128, 46), rng, 6)
        horizon = (38 + rng.randint(-2, 2)) * _SS
        for y in range(horizon):
            draw.line([(0, y), (full, y)], fill=_mix(sky_top, sky_low, y / horizon))
        draw.rectangle([0, horizon, full, full], fill=grass)
    else:
        raise CatalogError(field="scene", value=scene, known=SCENES)


def _product_draw(draw: ImageDraw.ImageDraw, kind: str, colour: str, rng: random.Random) -> None:
    """Paint the product, centred near (32, 34) with jitter, filled in its colour, outlined darker."""
    fill = _jitter(COLOURS[colour], rng, 8)
    line = (86, 86, 90) if colour == "black" else _mix(fill, (0, 0, 0), 0.45)
    s = rng.uniform(0.9, 1.1) * _SS
    cx = (32 + rng.uniform(-3, 3)) * _SS
    cy = (34 + rng.uniform(-2, 2)) * _SS
    w = _SS  # outline width

    def p(x: float, y: float) -> tuple[float, float]:
        return (cx + x * s, cy + y * s)

    if kind == "mug":
        draw.ellipse([*p(3, -8), *p(17, 6)], outline=line, width=round(5 * s))
        draw.ellipse([*p(5, -6), *p(15, 4)], outline=fill, width=round(3 * s))
        draw.rounded_rectangle([*p(-12, -11), *p(7, 12)], radius=3 * s, fill=fill, outline=line, width=w)
    elif kind == "bottle":
        draw.polygon(
            [p(-2.5, -19), p(2.5, -19), p(2.5, -12), p(7, -6), p(7, 17), p(-7, 17), p(-7, -6), p(-2.5, -12)],
            fill=fill,
            outline=line,
            width=w,
        )
    elif kind == "sneaker box":
        draw.rectangle([*p(-19, -6), *p(19, 11)], fill=fill, outline=line, width=w)
        draw.rectangle([*p(-20, -10), *p(20, -5)], fill=_mix(fill, (0, 0, 0), 0.15), outline=line, width=w)
    elif kind == "t-shirt":
        draw.polygon(
            [
                p(-5, -15),
                p(5, -15),
                p(17, -9),
                p(13, -1),
                p(9, -4),
                p(9, 16),
                p(-9, 16),
                p(-9, -4),
                p(-13, -1),
                p(-17, -9),
            ],
            fill=fill,
            outline=line,
            width=w,
        )
    elif kind == "lamp":
        draw.rectangle([*p(-9, 13), *p(9, 17)], fill=fill, outline=line, width=w)
        draw.rectangle([*p(-1.5, -3), *p(1.5, 13)], fill=fill, outline=line, width=w)
        draw.polygon([p(-6, -17), p(6, -17), p(12, -2), p(-12, -2)], fill=fill, outline=line, width=w)
    else:
        raise CatalogError(field="kind", value=kind, known=KINDS)


def catalog_draw(combo: Combo, *, rng: random.Random) -> Image.Image:
    """Draw one 64x64 RGB picture of ``combo``; the same ``rng`` state gives the same picture."""
    if combo.colour not in COLOURS:
        raise CatalogError(field="colour", value=combo.colour, known=tuple(COLOURS))
    image = Image.new("RGB", (SIZE * _SS, SIZE * _SS))
    draw = ImageDraw.Draw(image)
    _scene_draw(draw, combo.scene, rng)
    _product_draw(draw, combo.kind, combo.colour, rng)
    return image.resize((SIZE, SIZE), Image.Resampling.BOX)


def catalog_batch(combos: Sequence[Combo], *, rng: random.Random) -> np.ndarray:
    """Draw ``combos`` as a float32 array (N, 3, 64, 64) in [-1, 1], the layout diffusers trains on."""
    pixels = np.stack([np.asarray(catalog_draw(c, rng=rng), dtype=np.float32) for c in combos])
    return (pixels.transpose(0, 3, 1, 2) / 127.5 - 1.0).astype(np.float32)


# --- judging -----------------------------------------------------------------------------------

_MASK_THRESHOLD = 38.0  # RGB distance from the row's border colour that counts as product
_BORDER = 4  # columns on each side read as background


def _row_background(pixels: np.ndarray) -> np.ndarray:
    """Per-row background colour: the median of the leftmost and rightmost columns."""
    edges = np.concatenate([pixels[:, :_BORDER], pixels[:, -_BORDER:]], axis=1)
    return np.asarray(np.median(edges, axis=1))


def _scene_features(background: np.ndarray) -> np.ndarray:
    bands = [background[a:b].mean(axis=0) for a, b in ((2, 10), (20, 30), (46, 54), (56, 62))]
    return np.concatenate(bands)


def _shape_features(filled: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Aspect, fill ratio, hole share, and width/height profiles of a product silhouette."""
    rows = np.flatnonzero(filled.any(axis=1))
    cols = np.flatnonzero(filled.any(axis=0))
    box = filled[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    h, w = box.shape
    holes = (filled & ~mask)[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    widths = [box[min(h - 1, int(f * h))].sum() / w for f in (0.08, 0.25, 0.45, 0.65, 0.85, 0.96)]
    heights = [box[:, min(w - 1, int(f * w))].sum() / h for f in (0.08, 0.3, 0.5, 0.7, 0.92)]
    return np.array([w / h, box.mean(), 4.0 * holes.sum() / max(1, box.sum()), *widths, *heights])


@dataclass(frozen=True)
class _References:
    scenes: dict[str, np.ndarray]
    kinds: dict[str, np.ndarray]
    kind_scale: np.ndarray


@functools.lru_cache(maxsize=1)
def _references() -> _References:
    """Centroids measured on the generator's own drawings (fixed seed, every combination)."""
    rng = random.Random(7)
    scene_feats: dict[str, list[np.ndarray]] = {s: [] for s in SCENES}
    kind_feats: dict[str, list[np.ndarray]] = {k: [] for k in KINDS}
    for _ in range(2):
        for combo in ALL_COMBOS:
            pixels = np.asarray(catalog_draw(combo, rng=rng), dtype=np.float32)
            background = _row_background(pixels)
            scene_feats[combo.scene].append(_scene_features(background))
            found = _silhouette(pixels, background)
            if found is not None:
                kind_feats[combo.kind].append(_shape_features(*found))
    kinds = {k: np.mean(v, axis=0) for k, v in kind_feats.items()}
    spread = np.concatenate([np.asarray(v) - kinds[k] for k, v in kind_feats.items()])
    scale = np.maximum(spread.std(axis=0), 0.05)
    return _References(scenes={s: np.mean(v, axis=0) for s, v in scene_feats.items()}, kinds=kinds, kind_scale=scale)


_CROSS = cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))
_VERTICAL = np.ones((3, 1), np.uint8)


def _fill_holes(blob: np.ndarray) -> np.ndarray:
    """``blob`` with every background region not connected to the border filled in."""
    padded = np.pad(blob, 1).astype(np.uint8)
    outside = padded.copy()
    flood = np.zeros((padded.shape[0] + 2, padded.shape[1] + 2), np.uint8)
    cv2.floodFill(outside, flood, (0, 0), 1)
    return (padded | (1 - outside)).astype(bool)[1:-1, 1:-1]


def _silhouette(pixels: np.ndarray, background: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """The largest blob that differs from the background, hole-filled and as drawn; None if none."""
    distance = np.sqrt(((pixels - background[:, None, :]) ** 2).sum(axis=2))
    mask = (distance > _MASK_THRESHOLD).astype(np.uint8)
    mask[:, :_BORDER] = 0
    mask[:, -_BORDER:] = 0
    # A generated horizon or table edge is rarely as straight as the border rows say: drop what
    # is under 3 px tall (the thinnest drawn part, a lamp's stem, is vertical), then rejoin.
    mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, _VERTICAL)
    mask = np.maximum(mask, cv2.morphologyEx(mask, cv2.MORPH_CLOSE, _CROSS))  # rejoin a thin stem or neck
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=4)
    if count < 2:
        return None
    largest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    if stats[largest, cv2.CC_STAT_AREA] < 30:
        return None
    blob = labels == largest
    return _fill_holes(blob), blob


def _colour_names(pixels: np.ndarray) -> np.ndarray:
    """Name each pixel's colour by hue, saturation and value, so a darker or lighter shade of red is
    still red: low saturation is black, white or (mid grey) the nearer of the two; otherwise the hue
    decides between red, yellow, green and blue. Returns indices into ``COLOURS``."""
    rgb = pixels.reshape(-1, 3).astype(np.float32) / 255.0
    value = rgb.max(axis=1)
    chroma = value - rgb.min(axis=1)
    saturation = np.where(value > 0, chroma / np.maximum(value, 1e-6), 0.0)
    hsv = cv2.cvtColor(pixels.reshape(-1, 1, 3).astype(np.uint8), cv2.COLOR_RGB2HSV_FULL).reshape(-1, 3)
    hue = hsv[:, 0].astype(np.float32) * (360.0 / 256.0)
    names = list(COLOURS)
    by_hue = np.select(
        [(hue < 25) | (hue >= 300), hue < 90, hue < 180],
        [names.index("red"), names.index("yellow"), names.index("green")],
        names.index("blue"),
    )
    grey = np.where(value < 0.55, names.index("black"), names.index("white"))
    chromatic = (saturation >= 0.35) & (value >= 0.22)
    return np.where(chromatic, by_hue, grey)


def _colour_name(pixels: np.ndarray, blob: np.ndarray) -> str:
    """The colour most pixels inside the product (outline eroded away) are named by their hue."""
    inner = cv2.erode(blob.astype(np.uint8), _CROSS).astype(bool)
    chosen = pixels[inner if inner.sum() >= 10 else blob]
    names = _colour_names(chosen)
    return list(COLOURS)[int(np.bincount(names, minlength=len(COLOURS)).argmax())]


def image_judge(image: Image.Image) -> Judgement:
    """Read kind, colour and scene back from a picture (any size; judged at 64x64)."""
    if image.size != (SIZE, SIZE):
        image = image.resize((SIZE, SIZE), Image.Resampling.BOX)
    pixels = np.asarray(image.convert("RGB"), dtype=np.float32)
    refs = _references()
    background = _row_background(pixels)
    feats = _scene_features(background)
    scene = min(refs.scenes, key=lambda s: float(((feats - refs.scenes[s]) ** 2).sum()))
    found = _silhouette(pixels, background)
    if found is None:
        return Judgement(kind=None, colour=None, scene=scene)
    filled, blob = found
    shape = _shape_features(filled, blob)
    kind = min(refs.kinds, key=lambda k: float((((shape - refs.kinds[k]) / refs.kind_scale) ** 2).sum()))
    return Judgement(kind=kind, colour=_colour_name(pixels, blob), scene=scene)


def judge_self_check(*, count: int = 240, seed: int = 1) -> tuple[float, float, float, float]:
    """Judge ``count`` fresh drawings; return kind, colour, scene and all-three accuracy."""
    rng = random.Random(seed)
    hits = np.zeros(4)
    for i in range(count):
        combo = ALL_COMBOS[i % len(ALL_COMBOS)]
        k, c, s = image_judge(catalog_draw(combo, rng=rng)).matches(combo)
        hits += (k, c, s, k and c and s)
    a, b, c3, d = (hits / count).tolist()
    return a, b, c3, d


if __name__ == "__main__":
    print("judge on drawings (kind, colour, scene, all):", judge_self_check(count=600))
    print("held out:", [c.caption for c in HELD_OUT])
    print("vocabulary:", VOCABULARY)
