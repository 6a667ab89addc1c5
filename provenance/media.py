"""Media formats and limits, each defined once and imported wherever it is checked.

The prompt library checks output specs against these, the pipeline checks generation requests,
and provenance encodes, marks, signs, stores and verifies within them. Nothing here imports more
than the standard library, so any room (and the web process) can read it for free.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

# Formats: name -> MIME type, file extension, and the extensions a file of it may carry.
MIME: Mapping[str, str] = MappingProxyType(
    {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp", "mp4": "video/mp4"}
)
EXTENSION: Mapping[str, str] = MappingProxyType({"png": "png", "jpeg": "jpg", "webp": "webp", "mp4": "mp4"})
EXTENSIONS_READ: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {"png": ("png",), "jpeg": ("jpg", "jpeg", "jpe", "jfif"), "webp": ("webp",), "mp4": ("mp4", "m4v", "mov")}
)
IMAGE_FORMATS = ("png", "jpeg", "webp")
VIDEO_FORMATS = ("mp4",)
MASTER_FORMATS = ("png", "mp4")  # a master is a lossless PNG still or an H.264 MP4 clip
VIDEO_MIMES = frozenset(MIME[f] for f in VIDEO_FORMATS)

# The watermark is two 128 px tiles each way: a file (or frame) smaller than this cannot carry it.
WATERMARK_MIN_SIDE = 256
# Frames a clip's watermark is read from (its first second at 24 fps): what verify decodes, and
# what the pipeline checks after encoding before it claims the mark.
WATERMARK_FRAMES = 24

# Clips: H.264 in yuv420p needs even sides, and every frame carries the watermark.
MIN_VIDEO_SIDE, MAX_VIDEO_SIDE = WATERMARK_MIN_SIDE, 4096
MIN_FPS, MAX_FPS = 1, 60
MAX_SECONDS = 60
# 20 s at 24 fps; also 4k+1, 8k+1 and 16k+1, so every video family can reach it.
MAX_CLIP_FRAMES = 481
MAX_KEYFRAMES = 64  # keyframes are one batched pipeline call
