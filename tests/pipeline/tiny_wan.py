"""Generation parameters and output of test clip templates on the tiny Wan video model."""

from __future__ import annotations

WAN_SIDE = 16  # the tiny Wan's smallest drawing size (its size multiple)
WAN_PARAMS = {"steps": 2, "guidance": 3.0, "width": WAN_SIDE, "height": WAN_SIDE}
WAN_CLIP = {"width": 256, "height": 256, "format": "mp4", "fps": 8, "seconds": 1}
