"""Template versions, campaigns and variants as plain frozen dataclasses, and the limits they keep.

Nothing here touches the database or the disk. A variant's `key` is a hash of everything that
makes the image, so a re-run finds what already exists; `prompt_library.parsing` builds these
from a library file's YAML and `prompt_library.expansion` turns a campaign into variants.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import datetime
from functools import cached_property
from typing import Any

from models.families import IMAGE_TO_VIDEO
from provenance.media import VIDEO_FORMATS

# The library's own limits (media limits live in provenance.media).
MAX_SEED = 2**63 - 1
MAX_SIDE = 8192
DEFAULT_KEYFRAMES = 4
VIDEO_FIELDS = ("fps", "seconds", "keyframes")  # an output spec's fields that only a video master has
TEXT_TO_IMAGE = "text-to-image"
IMAGE_MODES = (TEXT_TO_IMAGE, "image-to-image", "inpainting")  # what a still is drawn from
# What a template draws from: a clip is text-to-image (its model draws it from text) or
# image-to-video (a video model animates the source photo).
MODES = (*IMAGE_MODES, IMAGE_TO_VIDEO)
# How a drawing is brought to the output's size: Lanczos, cropped at the centre where the aspect
# ratios differ (pipeline.generate); recorded as c2pa.resized with this method.
UPSCALE_METHOD = "lanczos"
DEFAULT_STRENGTH = {"image-to-image": 0.75, "inpainting": 1.0}
# A template's fields that say what it draws from: in its content hash only when written, so
# versions from before modes existed keep their hashes.
SOURCE_FIELDS = ("mode", "strength", "source_image", "mask")


def canonical_hash(value: object) -> str:
    """sha256 of a canonical JSON form (sorted keys, no spaces): stable across runs and machines."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class RenditionSpec:
    """A published rendition: format and size derived from the master."""

    name: str
    format: str
    width: int
    height: int
    quality: int = 90


@dataclass(frozen=True)
class OutputSpec:
    """The master's size and format, and the renditions published from it.

    A video master (``format`` "mp4") also has ``fps``, ``seconds`` and ``keyframes`` (how many
    stills an image model draws for the clip; video models draw every frame and ignore it); an
    image master has None there.
    """

    width: int
    height: int
    format: str = "png"
    renditions: tuple[RenditionSpec, ...] = ()
    fps: int | None = None
    seconds: float | None = None
    keyframes: int | None = None
    upscale: str = ""  # a pinned upscaler's manifest name; "" for Lanczos alone

    @property
    def is_video(self) -> bool:
        return self.format in VIDEO_FORMATS

    def identity(self) -> dict[str, Any]:
        """The spec as it enters hashes: the video fields only when set, so image templates
        written before video existed keep their content hashes."""
        values = asdict(self)
        for name in VIDEO_FIELDS:
            if values[name] is None:
                del values[name]
        if not self.upscale:
            del values["upscale"]
        return values


@dataclass(frozen=True)
class GenerationParams:
    """What the generator is called with; `width`/`height` are the model's native size."""

    steps: int
    guidance: float
    width: int
    height: int
    scheduler: str = ""  # a sampler named in models.schedulers; "" for the model's own
    # Brand adapters (LoRA) drawn with, each (name, adapter manifest hash, scale), pinned at load.
    adapters: tuple[tuple[str, str, float], ...] = ()
    # Structure control: (name, ControlNet manifest hash, conditioning, scale), or () for none.
    controlnet: tuple[str, str, str, float] | tuple[()] = ()
    # The image safety classifier each image is scored with: (name, manifest hash, threshold), or ().
    safety: tuple[str, str, float] | tuple[()] = ()
    # The upscaler the drawing is enlarged with before the output's size: (name, manifest hash), or ().
    upscaler: tuple[str, str] | tuple[()] = ()
    # Textual inversions drawn with, each (name, embedding manifest hash, the token prompts use).
    embeddings: tuple[tuple[str, str, str], ...] = ()

    def __post_init__(self) -> None:  # a JSON store gives lists back: the key needs tuples
        object.__setattr__(self, "adapters", tuple((str(n), str(h), float(s)) for n, h, s in self.adapters))
        object.__setattr__(self, "embeddings", tuple((str(n), str(h), str(t)) for n, h, t in self.embeddings))
        if self.controlnet:
            name, pinned, conditioning, scale = self.controlnet
            object.__setattr__(self, "controlnet", (str(name), str(pinned), str(conditioning), float(scale)))
        else:
            object.__setattr__(self, "controlnet", ())
        if self.safety:
            name, pinned, threshold = self.safety
            object.__setattr__(self, "safety", (str(name), str(pinned), float(threshold)))
        else:
            object.__setattr__(self, "safety", ())
        object.__setattr__(self, "upscaler", (str(self.upscaler[0]), str(self.upscaler[1])) if self.upscaler else ())

    def identity(self) -> dict[str, object]:
        """The parameters as they enter an asset's key: ``scheduler`` and ``adapters`` only when
        chosen, so the keys of assets made before they existed do not change."""
        values = asdict(self)
        if not self.scheduler:
            del values["scheduler"]
        if not self.adapters:
            del values["adapters"]
        if not self.controlnet:
            del values["controlnet"]
        for name in ("safety", "upscaler", "embeddings"):
            if not values[name]:
                del values[name]
        return values


@dataclass(frozen=True)
class TemplateSpec:
    """One immutable version of a prompt template, as authored in its file."""

    name: str
    number: int
    description: str
    prompt: str
    negative_prompt: str
    variables: tuple[str, ...]
    model_name: str
    model_manifest_hash: str | None
    params: Mapping[str, Any]
    output: OutputSpec
    alt_text: str = ""  # the description for screen readers, over the same variables; "" for the prompt
    # What it draws from: text alone, or a source image (sha256 of a stored `SourceImage`) redrawn
    # with a strength (image-to-image) or repainted where a mask says (inpainting; the mask is
    # "alpha", made from the source's transparency, or the sha256 of a stored mask image).
    mode: str = TEXT_TO_IMAGE
    strength: float | None = None
    source_image: str = ""
    mask: str = ""
    lora: tuple[tuple[str, float], ...] = ()  # brand adapters by manifest name, with their scales
    controlnet: tuple[str, str, float] | tuple[()] = ()  # (name, conditioning, scale) from the source image
    safety: tuple[str, float] | tuple[()] = ()  # (classifier manifest name, threshold) each image is scored with
    embeddings: tuple[tuple[str, str], ...] = ()  # textual inversions by manifest name, with the token prompts use

    @property
    def content_hash(self) -> str:
        """Hash of the authored content; a published version's file must keep it.

        ``alt_text``, the source fields and the output's video fields count only when they are
        written, so versions from before they existed keep their hash."""
        content = asdict(self)
        if not self.alt_text:
            del content["alt_text"]
        defaults = {"mode": TEXT_TO_IMAGE, "strength": None, "source_image": "", "mask": ""}
        for name in SOURCE_FIELDS:
            if self.mode == TEXT_TO_IMAGE and content[name] == defaults[name]:
                del content[name]
        if not self.lora:
            del content["lora"]
        if not self.controlnet:
            del content["controlnet"]
        if not self.safety:
            del content["safety"]
        if not self.embeddings:
            del content["embeddings"]
        content["output"] = self.output.identity()
        return canonical_hash(content)

    def render(self, values: Mapping[str, str]) -> tuple[str, str]:
        """The prompt and negative prompt with `values` filled in."""
        return self.prompt.format_map(values), self.negative_prompt.format_map(values)

    def alt_render(self, values: Mapping[str, str]) -> str:
        """The alt text with `values` filled in; "" when the template has none."""
        return self.alt_text.format_map(values)


@dataclass(frozen=True)
class CampaignSpec:
    """A campaign: one template version, lists of variable values, and seeds."""

    name: str
    title: str
    kind: str
    template: str
    template_version: int
    variables: tuple[tuple[str, tuple[str, ...]], ...]
    seeds: tuple[int, ...]
    deadline: datetime | None = None
    approvals_required: int = 1
    on_reject: str = "reject"
    # Run order (lower first) and the schedule as data: `schedule: {cron, timezone}`, `active`.
    priority: int = 5
    schedule_cron: str = ""
    schedule_timezone: str = "UTC"
    schedule_active: bool = True
    # A stored source image's sha256 its variants draw from instead of their template's own
    # (image-to-image and inpainting templates only); "" keeps the template's.
    source_image: str = ""
    # Linked values (a matrix import's "one row per product with its attributes"): each row gives
    # several variables their values together, so the campaign makes these rows only, times every
    # combination of the variables no row names. () crosses every variable's values.
    rows: tuple[tuple[tuple[str, str], ...], ...] = ()

    @property
    def linked(self) -> tuple[str, ...]:
        """The variables the rows give values to (none without rows)."""
        return tuple(name for name, _ in self.rows[0]) if self.rows else ()

    @property
    def variant_count(self) -> int:
        count = len(self.seeds) * (len(self.rows) if self.rows else 1)
        for name, values in self.variables:
            if name not in self.linked:
                count *= len(values)
        return count


@dataclass(frozen=True)
class Variant:
    """One image to make: the rendered prompt, a seed, parameters and the model pin."""

    campaign: str
    template: str
    template_version: int
    template_hash: str
    variables: tuple[tuple[str, str], ...]
    prompt: str
    negative_prompt: str
    seed: int
    params: GenerationParams
    output: OutputSpec
    model_name: str
    model_manifest_hash: str
    alt: str = ""  # the template's rendered alt text, if it has one (not part of the key)
    mode: str = TEXT_TO_IMAGE
    strength: float | None = None
    source_image: str = ""  # sha256 of the stored source image ("" for text-to-image)
    mask: str = ""  # "alpha", or sha256 of the stored mask (inpainting only)

    def source_identity(self) -> dict[str, object]:
        """What the image is drawn from, as it enters the key and the record: {} for text alone
        (a ControlNet's source photo is named too, as its structure comes from it)."""
        if self.mode == TEXT_TO_IMAGE:
            return {"source_image": self.source_image} if self.source_image else {}
        identity: dict[str, object] = {"mode": self.mode, "strength": self.strength, "source_image": self.source_image}
        if self.strength is None:  # image-to-video animates the photo: no strength
            del identity["strength"]
        if self.mask:
            identity["mask"] = self.mask
        return identity

    @cached_property  # the fields are frozen; a run asks for it several times an asset
    def key(self) -> str:
        """The asset key: a hash of what makes the image (not of the campaign that asked for it)."""
        return canonical_hash(
            {
                "template_hash": self.template_hash,
                "variables": dict(self.variables),
                "model_manifest_hash": self.model_manifest_hash,
                "seed": self.seed,
                "params": self.params.identity(),
                "output": self._output_identity(),
                **self.source_identity(),
            }
        )

    def _output_identity(self) -> dict[str, object]:
        """What of the output spec makes the file: the size; for a clip also its format, rate,
        duration and keyframes (an image's key is as it was before clips existed)."""
        out = self.output
        identity: dict[str, object] = {"width": out.width, "height": out.height}
        if out.is_video:
            identity |= {"format": out.format, "fps": out.fps, "seconds": out.seconds, "keyframes": out.keyframes}
        return identity

    @property
    def alt_text(self) -> str:
        """A description for screen readers: the template's rendered alt text, else the rendered
        prompt, capitalised."""
        text = self.alt or self.prompt
        return text[:1].upper() + text[1:]

    def resize(self) -> dict[str, object]:
        """How the model's drawing became the output's size (an image; {} when it is drawn at it)."""
        drawn, out = (self.params.width, self.params.height), (self.output.width, self.output.height)
        if self.output.is_video or drawn == out:
            return {}
        # Width and height apart: c2pa stores a JSON array of numbers as a byte string.
        return {
            "method": self.params.upscaler[0] if self.params.upscaler else UPSCALE_METHOD,
            "from_width": drawn[0],
            "from_height": drawn[1],
            "to_width": out[0],
            "to_height": out[1],
        }

    def edit_actions(self) -> tuple[dict[str, object], ...]:
        """The C2PA actions of what was done to the drawing before it was marked: the resize."""
        resize = self.resize()
        return ({"action": "c2pa.resized", "parameters": resize},) if resize else ()

    def generation_record(self) -> dict[str, object]:
        """What made this image or clip, as recorded in its C2PA manifest and the asset row (a
        clip's frames and real duration are added when it is made: they depend on the model)."""
        return {
            "campaign": self.campaign,
            "template": self.template,
            "template_version": self.template_version,
            "template_hash": self.template_hash,
            "variables": dict(self.variables),
            "prompt": self.prompt,
            "negative_prompt": self.negative_prompt,
            "seed": self.seed,
            "steps": self.params.steps,
            "guidance": self.params.guidance,
            "width": self.params.width,
            "height": self.params.height,
            **({"scheduler": self.params.scheduler} if self.params.scheduler else {}),
            **(
                {"adapters": [{"name": n, "manifest_hash": h, "scale": s} for n, h, s in self.params.adapters]}
                if self.params.adapters
                else {}
            ),
            **(
                {
                    "controlnet": dict(
                        zip(("name", "manifest_hash", "conditioning", "scale"), self.params.controlnet, strict=True)
                    )
                }
                if self.params.controlnet
                else {}
            ),
            **(
                {"safety": dict(zip(("name", "manifest_hash", "threshold"), self.params.safety, strict=True))}
                if self.params.safety
                else {}
            ),
            **(
                {"embeddings": [{"name": n, "manifest_hash": h, "token": t} for n, h, t in self.params.embeddings]}
                if self.params.embeddings
                else {}
            ),
            **(
                {"format": self.output.format, "fps": self.output.fps, "keyframes": self.output.keyframes}
                if self.output.is_video
                else {}
            ),
            "model": self.model_name,
            "model_manifest_hash": self.model_manifest_hash,
            "alt_text": self.alt_text,  # signed with the file: its description travels with it
            **({"resized": self.resize()} if self.resize() else {}),
            **self.source_identity(),
        }
