"""Library file data for the prompt-library tests: a template's and a campaign's YAML as parsed."""

from __future__ import annotations

from pathlib import Path

from prompt_library.specs import CampaignSpec, GenerationParams

PATH = Path("library/templates/hero/v1.yaml")
PARAMS = GenerationParams(steps=4, guidance=1.0, width=64, height=64)


def template_data(**overrides: object) -> dict[str, object]:
    data: dict[str, object] = {
        "name": "hero",
        "prompt": "a {product} on {scene}",
        "negative_prompt": "blurry",
        "variables": ["product", "scene"],
        "model": "embedded-tiny",
        "output": {
            "width": 512,
            "height": 512,
            "renditions": [{"name": "web", "format": "jpeg", "width": 1024, "height": 1024}],
        },
    }
    data.update(overrides)
    return data


def campaign(**overrides: object) -> CampaignSpec:
    fields: dict[str, object] = {
        "name": "spring",
        "title": "",
        "kind": "scheduled",
        "template": "hero",
        "template_version": 1,
        "variables": (("product", ("mug", "lamp", "bottle")), ("scene", ("a table", "a studio"))),
        "seeds": (1, 2),
    }
    fields.update(overrides)
    return CampaignSpec(**fields)  # type: ignore[arg-type]


def clip_output(**overrides: object) -> dict[str, object]:
    output: dict[str, object] = {
        "width": 256,
        "height": 256,
        "format": "mp4",
        "fps": 12,
        "seconds": 2,
        "keyframes": 3,
        "renditions": [
            {"name": "web", "format": "mp4", "width": 256, "height": 256, "quality": 85},
            {"name": "poster", "format": "jpeg", "width": 256, "height": 256},
        ],
    }
    output.update(overrides)
    return output
