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
from typing import Any

from provenance.media import VIDEO_FORMATS

# The library's own limits (media limits live in provenance.media).
MAX_SEED = 2**63 - 1
MAX_SIDE = 8192
DEFAULT_KEYFRAMES = 4
VIDEO_FIELDS = ("fps", "seconds", "keyframes")  # an output spec's fields that only a video master has


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
        return values


@dataclass(frozen=True)
class GenerationParams:
    """What the generator is called with; `width`/`height` are the model's native size."""

    steps: int
    guidance: float
    width: int
    height: int
    scheduler: str = ""  # a sampler named in models.schedulers; "" for the model's own

    def identity(self) -> dict[str, object]:
        """The parameters as they enter an asset's key: ``scheduler`` only when one is chosen,
        so the keys of assets made before it existed do not change."""
        values = asdict(self)
        if not self.scheduler:
            del values["scheduler"]
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

    @property
    def content_hash(self) -> str:
        """Hash of the authored content; a published version's file must keep it.

        ``alt_text`` and the output's video fields count only when they are written, so versions
        from before they existed keep their hash."""
        content = asdict(self)
        if not self.alt_text:
            del content["alt_text"]
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

    @property
    def variant_count(self) -> int:
        count = len(self.seeds)
        for _, values in self.variables:
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

    @property
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
                {"format": self.output.format, "fps": self.output.fps, "keyframes": self.output.keyframes}
                if self.output.is_video
                else {}
            ),
            "model": self.model_name,
            "model_manifest_hash": self.model_manifest_hash,
        }
