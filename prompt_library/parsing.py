"""Parsing of the library's YAML files into specs: every refusal names the file, the field and the value.

`template_parse` and `campaign_parse` check one file's parsed YAML; `template_from_dict` rebuilds
a TemplateSpec as it is stored with its version row. Media limits come from `provenance.media`.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Any

from models import SCHEDULERS
from prompt_library.errors import LibraryFileError, UnknownVariableError
from prompt_library.specs import (
    DEFAULT_KEYFRAMES,
    DEFAULT_STRENGTH,
    IMAGE_MODES,
    IMAGE_TO_VIDEO,
    MAX_SEED,
    MAX_SIDE,
    MODES,
    SOURCE_FIELDS,
    TEXT_TO_IMAGE,
    VIDEO_FIELDS,
    CampaignSpec,
    OutputSpec,
    RenditionSpec,
    TemplateSpec,
)
from prompt_library.weighting import WeightingError, weighting_check
from provenance.media import (
    IMAGE_FORMATS,
    MASTER_FORMATS,
    MAX_CLIP_FRAMES,
    MAX_FPS,
    MAX_KEYFRAMES,
    MAX_SECONDS,
    MAX_VIDEO_SIDE,
    MIN_FPS,
    MIN_VIDEO_SIDE,
    VIDEO_FORMATS,
)

# The keys each mapping of a library file may hold: any other key is refused by name, so a typo or
# a feature this version does not have is never silently ignored.
TEMPLATE_KEYS = frozenset(
    {"name", "description", "prompt", "negative_prompt", "variables", "alt_text", "model", "params", "output"}
    | set(SOURCE_FIELDS)
    | {"lora", "controlnet"}
    | {"safety"}  # an image safety classifier each image is scored with
    | {"embeddings"}  # textual inversions, each with the token its prompts use
)
EMBEDDING_KEYS = frozenset({"name", "token"})
SAFETY_KEYS = frozenset({"name", "threshold"})
DEFAULT_SAFETY_THRESHOLD = 0.5
UPSCALE_KEYS = frozenset({"name"})
CONTROLNET_KEYS = frozenset({"name", "conditioning", "scale"})
CONDITIONINGS = ("canny",)  # how the control image is made from the source photo
LORA_KEYS = frozenset({"name", "scale"})
MAX_LORA_SCALE = 4.0
MODEL_KEYS = frozenset({"name", "manifest_hash"})
PARAMS_KEYS = ("steps", "guidance", "width", "height", "scheduler")
OUTPUT_KEYS = frozenset({"width", "height", "format", "renditions", "upscale", *VIDEO_FIELDS})
RENDITION_KEYS = frozenset({"name", "format", "width", "height", "quality"})
CAMPAIGN_KEYS = frozenset(
    {"name", "title", "kind", "template", "template_version", "variables", "seeds", "deadline", "review"}
    | {"schedule", "priority", "active"}  # a campaign's run order and its schedule as data
    | {"source_image"}  # a stored source image's sha256, drawn from instead of the template's
    | {"rows"}  # linked values: one row per product with its attributes (the matrix's rows layout)
)
REVIEW_KEYS = frozenset({"approvals", "on_reject"})


def keys_check(data: Mapping[str, Any], known: frozenset[str] | tuple[str, ...], *, where: str, path: Path) -> None:
    """Refuse a key that ``known`` does not list, naming it, where it is and what is known."""
    unknown = sorted(str(k) for k in data if k not in known)
    if unknown:
        field = f"{where}.{unknown[0]}" if where else unknown[0]
        raise LibraryFileError(
            path,
            f"unknown key '{field}'"
            + (f" (and {', '.join(repr(u) for u in unknown[1:])})" if unknown[1:] else "")
            + f"; known{' in ' + repr(where) if where else ''}: {', '.join(sorted(known))}",
        )


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
    keys_check(data, OUTPUT_KEYS, where="output", path=path)
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
        keys_check(item, RENDITION_KEYS, where=where, path=path)
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
    upscale = "" if data.get("upscale") is None else _named(data["upscale"], UPSCALE_KEYS, "output.upscale", path)
    if upscale and video:
        raise LibraryFileError(path, "field 'output.upscale' is for stills: clips are drawn at their size")
    return OutputSpec(
        width=width,
        height=height,
        format=fmt,
        renditions=tuple(renditions),
        fps=fps,
        seconds=seconds,
        keyframes=keyframes,
        upscale=upscale,
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
    if not isinstance(fps, int) or isinstance(fps, bool) or not MIN_FPS <= fps <= MAX_FPS:
        raise LibraryFileError(path, f"field 'output.fps' must be an integer from {MIN_FPS} to {MAX_FPS} (got {fps!r})")
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
    if fields.get("strength") is not None:  # as the seconds: 1.0 may come back as 1
        fields["strength"] = float(fields["strength"])
    fields["variables"] = tuple(fields["variables"])
    fields["lora"] = tuple((str(n), float(s)) for n, s in fields.get("lora", ()))
    control = fields.get("controlnet") or ()
    fields["controlnet"] = (str(control[0]), str(control[1]), float(control[2])) if control else ()
    safety = fields.get("safety") or ()
    fields["safety"] = (str(safety[0]), float(safety[1])) if safety else ()
    fields["embeddings"] = tuple((str(n), str(t)) for n, t in fields.get("embeddings", ()))
    fields["output"] = OutputSpec(**output)
    return TemplateSpec(**fields)


def template_parse(data: object, *, path: Path, number: int) -> TemplateSpec:
    """Check one template version file's parsed YAML; every problem names the file and field."""
    if not isinstance(data, Mapping):
        raise LibraryFileError(path, "a template file must be a YAML mapping")
    keys_check(data, TEMPLATE_KEYS, where="", path=path)
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
    for field, text in (("prompt", prompt), ("negative_prompt", negative)):
        try:
            weighting_check(text)
        except WeightingError as exc:
            raise LibraryFileError(
                path, f"field '{field}' has weighting that cannot be read: {exc} (got {text!r})"
            ) from exc
    unknown = sorted({u for u in used if u not in declared})
    if unknown:
        raise UnknownVariableError(path, name, unknown, list(declared))
    model = _require(data, "model", (str, dict), path)
    if isinstance(model, Mapping):
        keys_check(model, MODEL_KEYS, where="model", path=path)
    model_name = model if isinstance(model, str) else _require(model, "name", str, path)
    pin = None if isinstance(model, str) else model.get("manifest_hash")
    params = data.get("params", {}) or {}
    if not isinstance(params, Mapping):
        raise LibraryFileError(path, f"field 'params' must be a mapping (got {params!r})")
    keys_check(params, PARAMS_KEYS, where="params", path=path)
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
    controlnet = _controlnet_parse(data.get("controlnet"), data, path)
    mode, strength, source_image, mask = _source_parse(data, output, path, controlled=bool(controlnet))
    lora = _lora_parse(data.get("lora", []), output, path)
    embeddings = _embeddings_parse(data.get("embeddings", []), output, path)
    safety = _safety_parse(data.get("safety"), output, path)
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
        mode=mode,
        strength=strength,
        source_image=source_image,
        mask=mask,
        lora=lora,
        controlnet=controlnet,
        safety=safety,
        embeddings=embeddings,
    )


def _named(value: Any, keys: frozenset[str], where: str, path: Path) -> str:
    """A ``{name: <manifest>, ...}`` mapping's checked manifest name."""
    if not isinstance(value, Mapping):
        raise LibraryFileError(path, f"field '{where}' must be a mapping {{{', '.join(sorted(keys))}}} (got {value!r})")
    keys_check(value, keys, where=where, path=path)
    name = value.get("name")
    if not isinstance(name, str) or not name.strip():
        raise LibraryFileError(path, f"field '{where}.name' must name a manifest (got {name!r})")
    return name


def _safety_parse(value: Any, output: OutputSpec, path: Path) -> tuple[str, float] | tuple[()]:
    """A template's image safety classifier: {name, threshold}; an image whose unsafe score
    reaches the threshold goes to review flagged."""
    if value is None:
        return ()
    name = _named(value, SAFETY_KEYS, "safety", path)
    threshold = value.get("threshold", DEFAULT_SAFETY_THRESHOLD)
    if not isinstance(threshold, int | float) or isinstance(threshold, bool) or not 0 < threshold <= 1:
        raise LibraryFileError(
            path, f"field 'safety.threshold' must be a number above 0 and at most 1 (got {threshold!r})"
        )
    if output.is_video:
        raise LibraryFileError(path, "field 'safety' is for stills: clips are not scored")
    return (name, float(threshold))


def _controlnet_parse(value: object, data: Mapping[str, Any], path: Path) -> tuple[str, str, float] | tuple[()]:
    """A template's ControlNet: {name, conditioning, scale}; its control image comes from the
    template's source image (text-to-image or image-to-image)."""
    if value is None:
        return ()
    if not isinstance(value, Mapping):
        raise LibraryFileError(
            path, f"field 'controlnet' must be a mapping {{name, conditioning, scale}} (got {value!r})"
        )
    keys_check(value, CONTROLNET_KEYS, where="controlnet", path=path)
    name = _require(value, "name", str, path)
    conditioning = value.get("conditioning", "canny")
    if conditioning not in CONDITIONINGS:
        raise LibraryFileError(
            path, f"field 'controlnet.conditioning' must be one of {', '.join(CONDITIONINGS)} (got {conditioning!r})"
        )
    scale = value.get("scale", 1.0)
    if not isinstance(scale, int | float) or isinstance(scale, bool) or not 0 <= scale <= MAX_LORA_SCALE:
        raise LibraryFileError(
            path, f"field 'controlnet.scale' must be a number from 0 to {MAX_LORA_SCALE:g} (got {scale!r})"
        )
    if "source_image" not in data:
        raise LibraryFileError(path, "field 'controlnet' needs a 'source_image' to take the structure from")
    if data.get("mode") == "inpainting":
        raise LibraryFileError(path, "field 'controlnet' is for text-to-image and image-to-image, not inpainting")
    return (name, str(conditioning), float(scale))


def _entries(value: object, field: str, keys: frozenset[str], output: OutputSpec, path: Path) -> list[tuple[str, Any]]:
    """A list of mappings that name manifests (``lora``, ``embeddings``), for stills only: each
    entry with where it stands (``lora[0]``), every one a mapping of ``keys`` alone."""
    if value in (None, []):
        return []
    shape = f"{{{', '.join(sorted(keys))}}}"
    if not isinstance(value, list):
        raise LibraryFileError(path, f"field '{field}' must be a list of {shape} (got {value!r})")
    if output.is_video:
        raise LibraryFileError(path, f"field '{field}' is for stills: clips draw with the model alone")
    entries = []
    for i, item in enumerate(value):
        where = f"{field}[{i}]"
        if not isinstance(item, Mapping):
            raise LibraryFileError(path, f"field '{where}' must be a mapping {shape} (got {item!r})")
        keys_check(item, keys, where=where, path=path)
        entries.append((where, item))
    return entries


def _once(values: list[str], field: str, what: str, path: Path) -> None:
    if len(set(values)) != len(values):
        raise LibraryFileError(path, f"field '{field}' {what} twice ({', '.join(values)})")


def _lora_parse(value: object, output: OutputSpec, path: Path) -> tuple[tuple[str, float], ...]:
    """A template's brand adapters: a list of {name, scale}, each name once, scales 0 to 4."""
    adapters = []
    for where, item in _entries(value, "lora", LORA_KEYS, output, path):
        name = _require(item, "name", str, path)
        scale = item.get("scale", 1.0)
        if not isinstance(scale, int | float) or isinstance(scale, bool) or not 0 <= scale <= MAX_LORA_SCALE:
            raise LibraryFileError(
                path, f"field '{where}.scale' must be a number from 0 to {MAX_LORA_SCALE:g} (got {scale!r})"
            )
        adapters.append((name, float(scale)))
    _once([n for n, _ in adapters], "lora", "names an adapter", path)
    return tuple(adapters)


def _embeddings_parse(value: object, output: OutputSpec, path: Path) -> tuple[tuple[str, str], ...]:
    """A template's textual inversions: a list of {name, token}. The token is the word its prompts
    write where the embedding goes (``"<brand-style>"``): one word, no braces, each once."""
    embeddings = []
    for where, item in _entries(value, "embeddings", EMBEDDING_KEYS, output, path):
        name = _require(item, "name", str, path)
        token = item.get("token")
        if not isinstance(token, str) or not re.fullmatch(r"[^\s{}()\[\]:]+", token):
            raise LibraryFileError(
                path,
                f"field '{where}.token' must be one word without spaces, braces, brackets or colons, "
                f"as the prompts write it (got {token!r})",
            )
        embeddings.append((name, token))
    _once([n for n, _ in embeddings], "embeddings", "names an embedding", path)
    _once([t for _, t in embeddings], "embeddings", "gives a token", path)
    return tuple(embeddings)


def _source_parse(
    data: Mapping[str, Any], output: OutputSpec, path: Path, *, controlled: bool = False
) -> tuple[str, float | None, str, str]:
    """A template's mode and what it draws from: (mode, strength, source image, mask). A source
    or mask is a file under the library folder (resolved to its sha256 when the library is
    loaded) or the sha256 of an uploaded source image."""
    mode = data.get("mode", TEXT_TO_IMAGE)
    if mode not in MODES:
        raise LibraryFileError(path, f"field 'mode' must be one of {', '.join(MODES)} (got {mode!r})")
    if mode == IMAGE_TO_VIDEO:
        return _image_to_video_parse(data, output, path, controlled=controlled)
    if mode == TEXT_TO_IMAGE:
        if controlled:  # drawn from text; the source photo gives the ControlNet its structure
            for name in ("strength", "mask"):
                if name in data:
                    raise LibraryFileError(
                        path, f"field '{name}' is only for image-to-image and inpainting (mode: {TEXT_TO_IMAGE})"
                    )
            return mode, None, source_reference(data.get("source_image"), "source_image", path), ""
        for name in SOURCE_FIELDS[1:]:
            if name in data:
                also = f" (and {IMAGE_TO_VIDEO}, a clip from the photo)" if name == "source_image" else ""
                raise LibraryFileError(
                    path, f"field '{name}' is only for image-to-image and inpainting{also} (mode: {TEXT_TO_IMAGE})"
                )
        return mode, None, "", ""
    if output.is_video:
        raise LibraryFileError(
            path,
            f"field 'mode' is {mode!r} but the output is a clip: a clip animates its source photo with "
            f"mode: {IMAGE_TO_VIDEO}, or is drawn from text with mode: {TEXT_TO_IMAGE}",
        )
    source = source_reference(data.get("source_image"), "source_image", path)
    strength = data.get("strength", DEFAULT_STRENGTH[mode])
    if not isinstance(strength, int | float) or isinstance(strength, bool) or not 0 < strength <= 1:
        raise LibraryFileError(path, f"field 'strength' must be a number above 0 and at most 1 (got {strength!r})")
    if mode == "image-to-image":
        if "mask" in data:
            raise LibraryFileError(path, "field 'mask' is only for inpainting (mode: image-to-image redraws all of it)")
        return mode, float(strength), source, ""
    mask = data.get("mask", "alpha")
    return mode, float(strength), source, "alpha" if mask == "alpha" else source_reference(mask, "mask", path)


def _image_to_video_parse(
    data: Mapping[str, Any], output: OutputSpec, path: Path, *, controlled: bool
) -> tuple[str, float | None, str, str]:
    """An image-to-video template: a clip (format: mp4) that a video model animates from its
    ``source_image``; nothing else of the source fields applies (no strength, no mask)."""
    if not output.is_video:
        raise LibraryFileError(
            path,
            f"field 'mode' is {IMAGE_TO_VIDEO!r} but the output is a still ({output.format}): "
            f"image-to-video makes clips (output format: mp4); stills take {', '.join(IMAGE_MODES[1:])}",
        )
    if controlled:
        raise LibraryFileError(path, f"field 'controlnet' is for stills, not {IMAGE_TO_VIDEO}")
    for name in ("strength", "mask"):
        if data.get(name) is not None:  # a version written back from the database says strength: null
            raise LibraryFileError(
                path, f"field '{name}' is only for image-to-image and inpainting ({IMAGE_TO_VIDEO} animates the photo)"
            )
    return IMAGE_TO_VIDEO, None, source_reference(data.get("source_image"), "source_image", path), ""


def source_reference(value: object, field: str, path: Path) -> str:
    """A source image as a template names it: an uploaded image's sha256, or a relative path of
    a file under the library folder (no '..', not absolute)."""
    if not isinstance(value, str) or not value.strip():
        raise LibraryFileError(
            path,
            f"field '{field}' must name an image: a file under the library folder or an uploaded "
            f"image's sha256 (got {value!r})",
        )
    if re.fullmatch(r"[0-9a-f]{64}", value):
        return value
    parts = PurePosixPath(value).parts
    if value.startswith("/") or ".." in parts or "\\" in value:
        raise LibraryFileError(path, f"field '{field}' must be a path inside the library folder (got {value!r})")
    return value


def campaign_parse(data: object, *, path: Path) -> CampaignSpec:
    """Check one campaign file's parsed YAML; every problem names the file and field."""
    if not isinstance(data, Mapping):
        raise LibraryFileError(path, "a campaign file must be a YAML mapping")
    keys_check(data, CAMPAIGN_KEYS, where="", path=path)
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
    keys_check(review, REVIEW_KEYS, where="review", path=path)
    approvals = _positive_int(review.get("approvals", 1), "review.approvals", path, limit=10)
    on_reject = review.get("on_reject", "reject")
    if on_reject not in ("reject", "return"):
        raise LibraryFileError(path, f"field 'review.on_reject' must be 'reject' or 'return' (got {on_reject!r})")
    cron, zone, active, priority = campaign_schedule_parse(data, path=path)
    source = data.get("source_image", "")
    if "source_image" in data and not (isinstance(source, str) and re.fullmatch(r"[0-9a-f]{64}", source)):
        raise LibraryFileError(
            path, f"field 'source_image' must be the sha256 of an uploaded source image, quoted (got {source!r})"
        )
    rows = _rows_parse(data.get("rows", []), path)
    named = {var for var, _ in variables}
    for var in dict.fromkeys(k for row in rows for k, _ in row):  # a variable the rows alone give
        if var not in named:
            variables.append((var, tuple(dict.fromkeys(v for row in rows for k, v in row if k == var))))
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
        priority=priority,
        schedule_cron=cron,
        schedule_timezone=zone,
        schedule_active=active,
        source_image=source or "",
        rows=rows,
    )


def _rows_parse(value: object, path: Path) -> tuple[tuple[tuple[str, str], ...], ...]:
    """A campaign's `rows:`, each a mapping of variable to value (the same variables in the same
    order on every row, which `campaign_check` matches to the campaign's variables); no row twice."""
    if value in (None, []):
        return ()
    if not isinstance(value, list):
        raise LibraryFileError(path, f"field 'rows' must be a list of mappings of variable to value (got {value!r})")
    rows: list[tuple[tuple[str, str], ...]] = []
    for number, row in enumerate(value, start=1):
        if (
            not isinstance(row, Mapping)
            or not row
            or not all(isinstance(k, str) and isinstance(v, str) and v.strip() for k, v in row.items())
        ):
            raise LibraryFileError(
                path, f"field 'rows' row {number} must map variables to non-empty texts (got {row!r})"
            )
        linked = tuple((str(k), str(v)) for k, v in row.items())
        if linked in rows:
            raise LibraryFileError(path, f"field 'rows' row {number} repeats row {rows.index(linked) + 1} ({row!r})")
        rows.append(linked)
    return tuple(rows)


SCHEDULE_KEYS = frozenset({"cron", "timezone"})
PRIORITY_MAX = 9


def campaign_schedule_parse(data: Mapping[str, Any], *, path: Path) -> tuple[str, str, bool, int]:
    """A campaign file's `schedule: {cron, timezone}`, `active` and `priority`, checked: a
    five-field cron expression, an IANA time zone, a boolean, a whole number from 0 to 9."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    from cronsim import CronSim, CronSimError

    schedule = data.get("schedule") or {}
    if not isinstance(schedule, Mapping):
        raise LibraryFileError(path, f"field 'schedule' must be a mapping with cron and timezone (got {schedule!r})")
    keys_check(schedule, SCHEDULE_KEYS, where="schedule", path=path)
    cron = schedule.get("cron", "")
    zone = schedule.get("timezone", "UTC")
    if schedule and (not isinstance(cron, str) or len(cron.split()) != 5):
        raise LibraryFileError(path, f"field 'schedule.cron' must be a five-field cron expression (got {cron!r})")
    if cron:
        try:
            CronSim(cron, datetime(2000, 1, 1))
        except CronSimError as exc:
            raise LibraryFileError(
                path, f"field 'schedule.cron' is not a cron expression: {exc} (got {cron!r})"
            ) from exc
    if not isinstance(zone, str) or not zone:
        raise LibraryFileError(path, f"field 'schedule.timezone' must be an IANA time zone name (got {zone!r})")
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise LibraryFileError(path, f"field 'schedule.timezone' is not a known time zone (got {zone!r})") from exc
    active = data.get("active", True)
    if not isinstance(active, bool):
        raise LibraryFileError(path, f"field 'active' must be true or false (got {active!r})")
    priority = data.get("priority", 5)
    if not isinstance(priority, int) or isinstance(priority, bool) or not 0 <= priority <= PRIORITY_MAX:
        raise LibraryFileError(
            path, f"field 'priority' must be a whole number from 0 to {PRIORITY_MAX} (got {priority!r})"
        )
    return cron, zone, active, priority
