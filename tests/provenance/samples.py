"""Sample images and manifest definitions for the provenance tests."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageOps

from provenance.credentials import generated_manifest
from provenance.watermark import watermark_payload

SERIAL = 0x12_3456_789A
RECORD: dict[str, object] = {
    "prompt_version": "hero-shot@3",
    "variables": {"product": "kettle", "scene": "kitchen"},
    "seed": 1234,
    "steps": 4,
    "guidance_scale": 5.0,
}


def product_shot(seed: int) -> Image.Image:
    """A 512x512 soft-edged product-shot-like image."""
    rng = np.random.default_rng(seed)
    image = Image.new("RGB", (512, 512), (200, 210, 190))
    draw = ImageDraw.Draw(image)
    for _ in range(6):
        x0, y0 = (int(v) for v in rng.integers(0, 400, 2))
        size = int(rng.integers(40, 200))
        draw.ellipse((x0, y0, x0 + size, y0 + size), fill=tuple(int(c) for c in rng.integers(0, 256, 3)))
    noise = rng.normal(0, 4, (512, 512, 3))
    pixels = np.clip(np.asarray(image.filter(ImageFilter.GaussianBlur(2)), dtype=float) + noise, 0, 255)
    return Image.fromarray(pixels.astype(np.uint8))


def encode(image: Image.Image, mime: str) -> bytes:
    buffer = io.BytesIO()
    if mime == "image/png":
        image.save(buffer, "PNG")
    else:
        image.save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def decoded(data: bytes) -> Image.Image:
    """A file's picture as a reader decodes it, in RGB."""
    return Image.open(io.BytesIO(data)).convert("RGB")


def psnr(a: Image.Image, b: Image.Image) -> float:
    diff = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    return float(10 * np.log10(255.0**2 / np.mean(diff**2)))


def manifest_for(serial: int = SERIAL) -> dict[str, Any]:
    return generated_manifest(
        title="hero-shot-kettle.png",
        model_name="tiny-sd",
        model_manifest_hash="sha256:" + "ab" * 32,
        generation_record=RECORD,
        watermark_value=watermark_payload(serial),
    )


def flip_image_byte(data: bytes, mime: str) -> bytes:
    """Flip one byte inside the compressed pixel data, leaving the manifest alone.

    In a JPEG the byte lies 400 bytes before the end of the last scan: the flip garbles the scan
    from there on, the last rows of blocks, so the picture changes for certain while still
    looking like itself (a flip near the scan's start garbles all of it, as random as the mark)."""
    if mime == "image/png":
        index = data.index(b"IDAT") + 4 + 200
    else:
        index = max(data.rindex(b"\xff\xda") + 20, data.rindex(b"\xff\xd9") - 400)  # inside the last scan
        while data[index] in (0x00, 0xFE, 0xFF) or data[index - 1] == 0xFF:
            index += 1  # keep JPEG byte stuffing and markers intact
    tampered = bytearray(data)
    tampered[index] ^= 0x01
    return bytes(tampered)


def unknown_codec(clip: bytes) -> bytes:
    """The clip with its sample entry's codec renamed to one FFmpeg does not know."""
    entry = clip.index(b"avc1", clip.index(b"stsd"))
    return clip[:entry] + b"zzzz" + clip[entry + 4 :]


# Busy scikit-image photographs, at master sizes where their 256 px thumbnail may be too busy to
# take a mark of its own (watermark_embed refuses it even at 32 dB, depending on the key): the
# thumbnail must then step up in size or carry the master's mark, never fail its asset.
BUSY = [
    ("astronaut", 512),
    ("astronaut", 1024),
    ("coins", 512),
    ("stereo_motorcycle", 512),
    ("stereo_motorcycle", 1024),
]


def photograph(name: str, side: int) -> Image.Image:
    """One of scikit-image's bundled photographs (shipped in the wheel) cropped and resized to a
    square generator-sized master."""
    import skimage.data

    pixels = getattr(skimage.data, name)()
    if name == "stereo_motorcycle":
        pixels = pixels[0]  # the left view
    return ImageOps.fit(Image.fromarray(np.asarray(pixels)).convert("RGB"), (side, side), Image.Resampling.LANCZOS)
