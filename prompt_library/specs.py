"""Template versions, campaigns and variants as plain frozen dataclasses, and the expansion.

Nothing here touches the database or the disk: `template_parse` and `campaign_parse` check a
file's parsed YAML and name the bad field; `campaign_expand` turns a campaign into variants whose
`key` is a hash of everything that makes the image, so a re-run finds what already exists.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import string
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from models.schedulers import SCHEDULERS
from prompt_library.errors import LibraryFileError, UnknownVariableError

IMAGE_FORMATS = ("png", "jpeg", "webp")
VIDEO_FORMATS = ("mp4",)
MASTER_FORMATS = ("png", "mp4")  # a master is a lossless PNG still or an H.264 MP4 clip
MAX_SEED = 2**63 - 1
MAX_SIDE = 8192
# Video masters: every frame must carry the watermark (256 px a side) and H.264 in yuv420p needs
# even sides; a clip is at most MAX_CLIP_FRAMES frames (pipeline.video.MAX_FRAMES: 20 s at 24 fps).
MIN_VIDEO_SIDE, MAX_VIDEO_SIDE = 256, 4096
MAX_FPS = 60
MAX_SECONDS = 60
MAX_CLIP_FRAMES = 481
MAX_KEYFRAMES = 64
DEFAULT_KEYFRAMES = 4
VIDEO_FIELDS = ("fps", "seconds", "keyframes")


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


# --- parsing --------------------------------------------------------------------------------


def _require(data: Mapping[str, Any], field: str, kind: type | tuple[type, ...], path: Path) -> Any:
    if field not in data:
        raise LibraryFileError(path, f"missing field '{field}'")
    value = data[field]
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is int):
        raise LibraryFileError(path, f"field '{field}' must be {_kind_name(kind)} (got {value!r})")
    return value


def _kind_name(kind: type | tuple[type, ...]) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(
        {"str": "text", "int": "an integer", "list": "a list", "dict": "a mapping"}.get(k.__name__, k.__name__)
        for k in kinds
    )


def _positive_int(value: object, field: str, path: Path, *, limit: int = MAX_SIDE) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= limit:
        raise LibraryFileError(path, f"field '{field}' must be an integer from 1 to {limit} (got {value!r})")
    return value


def _placeholders(text: str, field: str, path: Path) -> list[str]:
    names = []
    try:
        parsed = list(string.Formatter().parse(text))
    except ValueError as exc:
        raise LibraryFileError(path, f"field '{field}' is not a valid template: {exc}") from exc
    for _, name, spec, conversion in parsed:
        if name is None:
            continue
        if not name.isidentifier() or spec or conversion:
            raise LibraryFileError(path, f"field '{field}' has placeholder {{{name}}}: use plain {{variable}} names")
        names.append(name)
    return names


def _output_parse(data: object, path: Path) -> OutputSpec:
    if not isinstance(data, Mapping):
        raise LibraryFileError(path, f"field 'output' must be a mapping (got {data!r})")
    fmt = data.get("format", "png")
    if fmt not in MASTER_FORMATS:
        raise LibraryFileError(
            path, f"field 'output.format' must be 'png' (an image) or 'mp4' (a video) for masters (got {fmt!r})"
        )
    video = fmt in VIDEO_FORMATS
    if video:
        width, height = (_video_side(data.get(side), f"output.{side}", path) for side in ("width", "height"))
        fps, seconds, keyframes = _video_timing(data, path)
    else:
        for name in VIDEO_FIELDS:
            if name in data:
                raise LibraryFileError(path, f"field 'output.{name}' is only for video masters (format: mp4)")
        width = _positive_int(data.get("width"), "output.width", path)
        height = _positive_int(data.get("height"), "output.height", path)
        fps, seconds, keyframes = None, None, None
    # A clip's renditions may be clips or stills (its first frame, a poster); an image's only stills.
    formats = (*VIDEO_FORMATS, *IMAGE_FORMATS) if video else IMAGE_FORMATS
    renditions = []
    for i, item in enumerate(data.get("renditions", []) or []):
        where = f"output.renditions[{i}]"
        if not isinstance(item, Mapping):
            raise LibraryFileError(path, f"field '{where}' must be a mapping")
        rfmt = item.get("format")
        if rfmt not in formats:
            hint = "" if video or rfmt not in VIDEO_FORMATS else " (mp4 renditions need a video master, format: mp4)"
            raise LibraryFileError(
                path, f"field '{where}.format' must be one of {', '.join(formats)} (got {rfmt!r}){hint}"
            )
        quality = item.get("quality", 90)
        sides = []
        for side in ("width", "height"):
            value = _positive_int(item.get(side), f"{where}.{side}", path)
            if rfmt in VIDEO_FORMATS and value % 2:
                raise LibraryFileError(path, f"field '{where}.{side}' must be even for mp4 (H.264) (got {value!r})")
            sides.append(value)
        renditions.append(
            RenditionSpec(
                name=str(_require(item, "name", str, path)),
                format=str(rfmt),
                width=sides[0],
                height=sides[1],
                quality=_positive_int(quality, f"{where}.quality", path, limit=100),
            )
        )
    names = [r.name for r in renditions]
    if len(set(names)) != len(names):
        raise LibraryFileError(path, f"field 'output.renditions' repeats a name ({', '.join(names)})")
    return OutputSpec(
        width=width,
        height=height,
        format=fmt,
        renditions=tuple(renditions),
        fps=fps,
        seconds=seconds,
        keyframes=keyframes,
    )


def _video_side(value: object, field: str, path: Path) -> int:
    """A video master's side: even (H.264 in yuv420p) and at least the watermark's 256 px."""
    if (
        not isinstance(value, int)
        or isinstance(value, bool)
        or not MIN_VIDEO_SIDE <= value <= MAX_VIDEO_SIDE
        or value % 2
    ):
        raise LibraryFileError(
            path,
            f"field '{field}' must be an even integer from {MIN_VIDEO_SIDE} to {MAX_VIDEO_SIDE} for video "
            f"(the watermark needs {MIN_VIDEO_SIDE} px a side, H.264 even sides) (got {value!r})",
        )
    return value


def _video_timing(data: Mapping[str, Any], path: Path) -> tuple[int, float, int]:
    """A video master's fps, seconds and keyframes, each checked and named."""
    fps = data.get("fps")
    if not isinstance(fps, int) or isinstance(fps, bool) or not 1 <= fps <= MAX_FPS:
        raise LibraryFileError(path, f"field 'output.fps' must be an integer from 1 to {MAX_FPS} (got {fps!r})")
    seconds = data.get("seconds")
    if not isinstance(seconds, int | float) or isinstance(seconds, bool) or not 0 < seconds <= MAX_SECONDS:
        raise LibraryFileError(
            path, f"field 'output.seconds' must be a number above 0 and at most {MAX_SECONDS} (got {seconds!r})"
        )
    frames = max(2, round(seconds * fps))
    if frames > MAX_CLIP_FRAMES:
        raise LibraryFileError(
            path,
            f"field 'output.seconds' makes {frames} frames at {fps} fps; a clip has at most {MAX_CLIP_FRAMES} "
            f"(at most {MAX_CLIP_FRAMES / fps:g} s at {fps} fps)",
        )
    keyframes = data.get("keyframes", DEFAULT_KEYFRAMES)
    if not isinstance(keyframes, int) or isinstance(keyframes, bool) or not 2 <= keyframes <= MAX_KEYFRAMES:
        raise LibraryFileError(
            path, f"field 'output.keyframes' must be an integer from 2 to {MAX_KEYFRAMES} (got {keyframes!r})"
        )
    if keyframes > frames:
        raise LibraryFileError(path, f"field 'output.keyframes' is {keyframes}, more than the clip's {frames} frames")
    return fps, float(seconds), keyframes


def template_from_dict(data: Mapping[str, Any]) -> TemplateSpec:
    """Rebuild a TemplateSpec from `dataclasses.asdict` output (as stored with its version)."""
    output = dict(data["output"])
    output["renditions"] = tuple(RenditionSpec(**r) for r in output.get("renditions", ()))
    if output.get("seconds") is not None:  # a JSON store may give 2.0 back as 2: the hash needs 2.0
        output["seconds"] = float(output["seconds"])
    fields = dict(data)
    fields["variables"] = tuple(fields["variables"])
    fields["output"] = OutputSpec(**output)
    return TemplateSpec(**fields)


def template_parse(data: object, *, path: Path, number: int) -> TemplateSpec:
    """Check one template version file's parsed YAML; every problem names the file and field."""
    if not isinstance(data, Mapping):
        raise LibraryFileError(path, "a template file must be a YAML mapping")
    name = _require(data, "name", str, path)
    prompt = _require(data, "prompt", str, path)
    if not prompt.strip():
        raise LibraryFileError(path, "field 'prompt' is empty")
    negative = data.get("negative_prompt", "") or ""
    if not isinstance(negative, str):
        raise LibraryFileError(path, f"field 'negative_prompt' must be text (got {negative!r})")
    declared = _require(data, "variables", list, path)
    if not all(isinstance(v, str) and v.isidentifier() for v in declared):
        raise LibraryFileError(path, f"field 'variables' must list plain names (got {declared!r})")
    alt_text = data.get("alt_text", "") or ""
    if not isinstance(alt_text, str):
        raise LibraryFileError(path, f"field 'alt_text' must be text (got {alt_text!r})")
    used = (
        _placeholders(prompt, "prompt", path)
        + _placeholders(negative, "negative_prompt", path)
        + _placeholders(alt_text, "alt_text", path)
    )
    unknown = sorted({u for u in used if u not in declared})
    if unknown:
        raise UnknownVariableError(path, name, unknown, list(declared))
    model = _require(data, "model", (str, dict), path)
    model_name = model if isinstance(model, str) else _require(model, "name", str, path)
    pin = None if isinstance(model, str) else model.get("manifest_hash")
    params = data.get("params", {}) or {}
    if not isinstance(params, Mapping):
        raise LibraryFileError(path, f"field 'params' must be a mapping (got {params!r})")
    unknown_params = sorted(set(params) - {"steps", "guidance", "width", "height", "scheduler"})
    if unknown_params:
        raise LibraryFileError(
            path,
            f"field 'params' has unknown key(s) {', '.join(unknown_params)} "
            "(known: steps, guidance, width, height, scheduler)",
        )
    if "scheduler" in params and params["scheduler"] not in SCHEDULERS:
        raise LibraryFileError(
            path, f"field 'params.scheduler' must be one of {', '.join(SCHEDULERS)} (got {params['scheduler']!r})"
        )
    if "steps" in params:
        _positive_int(params["steps"], "params.steps", path, limit=500)
    if "guidance" in params and (not isinstance(params["guidance"], int | float) or not 0 <= params["guidance"] <= 50):
        raise LibraryFileError(
            path, f"field 'params.guidance' must be a number from 0 to 50 (got {params['guidance']!r})"
        )
    for side in ("width", "height"):
        if side in params:
            _positive_int(params[side], f"params.{side}", path)
    output = _output_parse(data.get("output"), path)
    if output.is_video and "scheduler" in params:
        raise LibraryFileError(
            path, "field 'params.scheduler' is not supported for video output: clips use the model's own sampler"
        )
    return TemplateSpec(
        name=name,
        number=number,
        description=str(data.get("description", "")),
        prompt=prompt,
        negative_prompt=negative,
        variables=tuple(declared),
        model_name=model_name,
        model_manifest_hash=pin,
        params=dict(params),
        output=output,
        alt_text=alt_text,
    )


def campaign_parse(data: object, *, path: Path) -> CampaignSpec:
    """Check one campaign file's parsed YAML; every problem names the file and field."""
    if not isinstance(data, Mapping):
        raise LibraryFileError(path, "a campaign file must be a YAML mapping")
    name = _require(data, "name", str, path)
    kind = data.get("kind", "scheduled")
    if kind not in ("scheduled", "request"):
        raise LibraryFileError(path, f"field 'kind' must be 'scheduled' or 'request' (got {kind!r})")
    version = _require(data, "template_version", int, path)
    raw_vars = _require(data, "variables", dict, path)
    variables = []
    for var, values in raw_vars.items():
        values = [values] if isinstance(values, str) else values
        if not isinstance(values, list) or not values or not all(isinstance(v, str) and v.strip() for v in values):
            raise LibraryFileError(path, f"field 'variables.{var}' must be a non-empty list of texts (got {values!r})")
        variables.append((str(var), tuple(values)))
    seeds = _require(data, "seeds", list, path)
    if not seeds or not all(isinstance(s, int) and not isinstance(s, bool) and 0 <= s <= MAX_SEED for s in seeds):
        raise LibraryFileError(
            path, f"field 'seeds' must be a non-empty list of integers from 0 to 2**63-1 (got {seeds!r})"
        )
    if len(set(seeds)) != len(seeds):
        raise LibraryFileError(path, f"field 'seeds' repeats a seed ({seeds!r})")
    deadline = data.get("deadline")
    if deadline is not None and not isinstance(deadline, datetime):
        raise LibraryFileError(path, f"field 'deadline' must be an ISO date-time (got {deadline!r})")
    review = data.get("review", {}) or {}
    if not isinstance(review, Mapping):
        raise LibraryFileError(path, f"field 'review' must be a mapping (got {review!r})")
    approvals = _positive_int(review.get("approvals", 1), "review.approvals", path, limit=10)
    on_reject = review.get("on_reject", "reject")
    if on_reject not in ("reject", "return"):
        raise LibraryFileError(path, f"field 'review.on_reject' must be 'reject' or 'return' (got {on_reject!r})")
    return CampaignSpec(
        name=name,
        title=str(data.get("title", "")),
        kind=kind,
        template=_require(data, "template", str, path),
        template_version=version,
        variables=tuple(variables),
        seeds=tuple(seeds),
        deadline=deadline,
        approvals_required=approvals,
        on_reject=on_reject,
    )


# --- expansion ------------------------------------------------------------------------------


def params_resolve(
    template: TemplateSpec,
    *,
    steps: int,
    guidance: float,
    width: int,
    height: int,
    size_multiple: int | None = None,
) -> GenerationParams:
    """The template's generation parameters over the model's defaults (given as keywords).

    Without a size in the template, the model draws at its default area in the output's aspect
    ratio (each side a multiple of ``size_multiple``, when given), so that a 16:9 output is not a
    square drawing stretched: a 64x64 model asked for 1024x576 draws 84x48.
    """
    p = template.params
    if "width" not in p and "height" not in p and size_multiple:
        width, height = aspect_size(width * height, template.output.width / template.output.height, size_multiple)
    return GenerationParams(
        steps=int(p.get("steps", steps)),
        guidance=float(p.get("guidance", guidance)),
        width=int(p.get("width", width)),
        height=int(p.get("height", height)),
        scheduler=str(p.get("scheduler", "")),
    )


def aspect_size(area: int, aspect: float, multiple: int) -> tuple[int, int]:
    """The size of about ``area`` pixels with width/height ``aspect``, each side a multiple of ``multiple``."""
    exact_width = (area * aspect) ** 0.5
    width = max(multiple, round(exact_width / multiple) * multiple)
    height = max(multiple, round(exact_width / aspect / multiple) * multiple)
    return width, height


def campaign_check(campaign: CampaignSpec, template: TemplateSpec, *, path: Path | str | None = None) -> None:
    """A campaign must give values for exactly the variables its template version declares."""
    given = [name for name, _ in campaign.variables]
    missing = [v for v in template.variables if v not in given]
    extra = [v for v in given if v not in template.variables]
    where = path or f"campaign '{campaign.name}'"
    if missing:
        raise LibraryFileError(
            where,
            f"template '{template.name}' v{template.number} needs variable '{missing[0]}' "
            f"(given: {', '.join(given) or 'none'})",
        )
    if extra:
        raise LibraryFileError(
            where,
            f"template '{template.name}' v{template.number} has no variable '{extra[0]}' "
            f"(declared: {', '.join(template.variables)})",
        )


def campaign_expand(
    campaign: CampaignSpec,
    template: TemplateSpec,
    *,
    params: GenerationParams,
    model_manifest_hash: str,
) -> list[Variant]:
    """Every combination of the campaign's variable values, times its seeds, in a stable order."""
    campaign_check(campaign, template)
    names = [name for name, _ in campaign.variables]
    template_hash = template.content_hash
    variants = []
    for combo in itertools.product(*(values for _, values in campaign.variables)):
        values = dict(zip(names, combo, strict=True))
        prompt, negative = template.render(values)
        alt = template.alt_render(values)
        for seed in campaign.seeds:
            variants.append(
                Variant(
                    campaign=campaign.name,
                    template=template.name,
                    template_version=template.number,
                    template_hash=template_hash,
                    variables=tuple(sorted(values.items())),
                    prompt=prompt,
                    negative_prompt=negative,
                    seed=seed,
                    params=params,
                    output=template.output,
                    model_name=template.model_name,
                    model_manifest_hash=model_manifest_hash,
                    alt=alt,
                )
            )
    return variants


def chunked(items: Sequence[Variant], size: int) -> list[list[Variant]]:
    """Split variants into batches of at most `size`, keeping order."""
    if size < 1:
        raise ValueError(f"batch size must be at least 1 (got {size})")
    return [list(items[i : i + size]) for i in range(0, len(items), size)]
