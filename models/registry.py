"""Find, pin and load the diffusion models Greenlight generates with.

A model is a folder of diffusers files plus a manifest, ``models/manifests/<name>.yaml``, that pins
the sha256 of every file. ``manifest_load`` reads and checks a manifest (cheap, no torch);
``manifest_verify`` hashes the files; ``pipeline_load`` verifies, then loads the pipeline fully
offline, once per process and device, on the device and dtype ``models.device`` chooses.

Real checkpoints start as templates, ``models/manifests/templates/<name>.yaml``: everything about the
model except its files. ``python -m models.pin <template> <folder>`` hashes a downloaded folder and
writes the pinned manifest; a template itself is never loaded.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import re
import threading
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, cast

import yaml

from models.errors import ManifestError, ModelFolderError, ModelIntegrityError, ModelNotFoundError, display_path

if TYPE_CHECKING:
    from diffusers import DiffusionPipeline

    from models.device import PipelineSetup

MANIFESTS_DIR = Path(__file__).parent / "manifests"
TEMPLATES_SUBDIR = "templates"
PIN_COMMAND = "python -m models.pin"

logger = logging.getLogger("greenlight.models")

DTYPES = ("auto", "float16", "bfloat16", "float32")
ROLES = ("generator", "video-generator")
VIDEO_ROLE = "video-generator"
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
_VARIANT_RE = re.compile(r"^[a-z0-9]+$")
_REQUIRED = (
    "name",
    "family",
    "pipeline_class",
    "role",
    "folder",
    "license",
    "defaults",
    "notes",
    "files",
)
_OPTIONAL = ("template", "dtype", "variant", "memory", "options", "ranges", "source", "hardware")
_TEMPLATE_NOT_NEEDED = ("folder", "files")
_RANGED = ("steps", "guidance")
_DEFAULT_KEYS = ("steps", "guidance", "width", "height", "frames", "fps")


@dataclass(frozen=True)
class FamilyOption:
    """A family-specific manifest option: ``load`` goes to ``from_pretrained``, ``call`` to each
    pipeline call, ``component-dtype`` sets one component's dtype on CUDA."""

    kind: str
    kind_of_value: type
    low: int | None = None
    high: int | None = None


@dataclass(frozen=True)
class Family:
    """What the registry knows about a model family: the pipelines it loads, its geometry, and the
    options a manifest of that family may set."""

    pipelines: tuple[str, ...]
    vae_scale: int  # pixels per latent cell, when the model's VAE config cannot be read
    patch: int  # latent cells per side of one transformer token: FLUX packs 2x2, Wan patches 2x2
    temporal_scale: int | None  # frames per latent frame (video families), when unreadable
    prefers_bf16: bool  # float16 overflows in these models' activations
    vae_savers_auto: bool  # switch VAE slicing and tiling on by themselves for large outputs
    options: Mapping[str, FamilyOption]
    # What the pipeline class itself demands of a size, whatever the VAE: diffusers' Stable
    # Diffusion pipelines refuse any side that is not a multiple of 8.
    pipeline_multiple: int = 1


FAMILIES: Mapping[str, Family] = MappingProxyType(
    {
        "stable-diffusion": Family(
            pipelines=("StableDiffusionPipeline",),
            vae_scale=8,
            patch=1,
            temporal_scale=None,
            prefers_bf16=False,
            vae_savers_auto=True,
            pipeline_multiple=8,
            options=MappingProxyType({}),
        ),
        "stable-diffusion-xl": Family(
            pipelines=("StableDiffusionXLPipeline",),
            vae_scale=8,
            patch=1,
            temporal_scale=None,
            prefers_bf16=False,
            vae_savers_auto=True,
            # Greenlight marks images itself; SDXL's own invisible watermark would be a second one.
            pipeline_multiple=8,
            options=MappingProxyType({"add_watermarker": FamilyOption("load", bool)}),
        ),
        "flux": Family(
            pipelines=("FluxPipeline",),
            vae_scale=8,
            patch=2,
            temporal_scale=None,
            prefers_bf16=True,
            vae_savers_auto=True,
            options=MappingProxyType({"max_sequence_length": FamilyOption("call", int, 1, 512)}),
        ),
        "wan": Family(
            pipelines=("WanPipeline",),
            vae_scale=8,
            patch=2,
            temporal_scale=4,
            prefers_bf16=True,
            vae_savers_auto=False,
            options=MappingProxyType(
                {
                    "max_sequence_length": FamilyOption("call", int, 1, 512),
                    "vae_dtype": FamilyOption("component-dtype", str),
                }
            ),
        ),
        # LTX-Video: one checkpoint makes text-to-video (LTXPipeline) and image-to-video
        # (LTXImageToVideoPipeline.from_pipe, the same components). Its VAE packs 4x4 pixels per
        # channel group and downsamples three times: 32 px and 8 frames per latent cell.
        "ltx-video": Family(
            pipelines=("LTXPipeline",),
            vae_scale=32,
            patch=1,
            temporal_scale=8,
            prefers_bf16=True,
            vae_savers_auto=False,
            options=MappingProxyType(
                {
                    "max_sequence_length": FamilyOption("call", int, 1, 512),
                    # 0.9.1+ VAEs decode at a small timestep with a little noise (timestep_conditioning).
                    "decode_timestep": FamilyOption("call", float, 0, 1),
                    "decode_noise_scale": FamilyOption("call", float, 0, 1),
                }
            ),
        ),
    }
)


@dataclass(frozen=True, init=False, repr=False, eq=False)
class ModelDefaults:
    """Generation settings a model is meant to be used with unless a request says otherwise.

    A frozen dataclass of the four image settings (steps, guidance, width, height); ``frames`` and
    ``fps`` (video models only, else None) ride beside them as read-only attributes that are not
    dataclass fields, so ``dataclasses.asdict(defaults)`` stays the four keywords its callers pass on
    (``params_resolve(template, **asdict(defaults))``).
    """

    steps: int
    guidance: float
    width: int
    height: int

    def __init__(
        self,
        steps: int,
        guidance: float,
        width: int,
        height: int,
        *,
        frames: int | None = None,
        fps: int | None = None,
    ) -> None:
        for key, value in (
            ("steps", steps),
            ("guidance", guidance),
            ("width", width),
            ("height", height),
            ("_frames", frames),
            ("_fps", fps),
        ):
            object.__setattr__(self, key, value)

    @property
    def frames(self) -> int | None:
        """Frames per clip for a video model; None for an image model."""
        return cast("int | None", self.__dict__["_frames"])

    @property
    def fps(self) -> int | None:
        """Frames per second a video model's clips are meant to play at; None for an image model."""
        return cast("int | None", self.__dict__["_fps"])

    def _key(self) -> tuple[int, float, int, int, int | None, int | None]:
        return (self.steps, self.guidance, self.width, self.height, self.frames, self.fps)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ModelDefaults) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        video = f", frames={self.frames}, fps={self.fps}" if self.frames is not None else ""
        return (
            f"ModelDefaults(steps={self.steps}, guidance={self.guidance}, width={self.width}, "
            f"height={self.height}{video})"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (_defaults_rebuild, self._key())


def _defaults_rebuild(
    steps: int, guidance: float, width: int, height: int, frames: int | None, fps: int | None
) -> ModelDefaults:
    return ModelDefaults(steps, guidance, width, height, frames=frames, fps=fps)


@dataclass(frozen=True)
class MemoryOptions:
    """Memory savers a manifest asks for; None means "auto" (the loader decides by output size)."""

    cpu_offload: bool = False
    vae_slicing: bool | None = None
    vae_tiling: bool | None = None


@dataclass(frozen=True)
class ModelManifest:
    """A model's identity: where its files are, their pinned sha256, and how to load it."""

    name: str
    family: str
    pipeline_class: str
    role: str
    folder: Path
    files: Mapping[str, str] = field(hash=False)
    license: str
    defaults: ModelDefaults
    notes: str
    path: Path
    dtype: str = "auto"
    variant: str | None = None
    memory: MemoryOptions = MemoryOptions()
    options: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}), hash=False)
    ranges: Mapping[str, tuple[float, float]] = field(default_factory=lambda: MappingProxyType({}), hash=False)
    source: str = ""
    hardware: str = ""
    template: bool = False

    @property
    def manifest_hash(self) -> str:
        """sha256 of ``{"files", "name", "pipeline_class"}`` as JSON with sorted keys and no spaces.

        It changes when any pinned file changes, and only then: it is part of an asset's identity.
        """
        canonical = json.dumps(
            {
                "name": self.name,
                "pipeline_class": self.pipeline_class,
                "files": dict(sorted(self.files.items())),
            },
            sort_keys=True,
            separators=(",", ":"),
            ensure_ascii=True,
        )
        return hashlib.sha256(canonical.encode("ascii")).hexdigest()

    @property
    def family_info(self) -> Family:
        """The registry's knowledge of this manifest's family."""
        return FAMILIES[self.family]

    @property
    def is_video(self) -> bool:
        """Whether the model makes clips (``defaults.frames`` and ``defaults.fps`` are set)."""
        return self.role == VIDEO_ROLE

    @property
    def vae_scale_factor(self) -> int:
        """Image pixels per latent cell.

        Computed as diffusers does, from the model's ``vae/config.json``: ``scale_factor_spatial``
        where the VAE states it (Wan), else ``spatial_compression_ratio`` or ``patch_size * 2 **
        (scaling stages)`` for the LTX video VAE, else ``2 ** (len(vae.block_out_channels) - 1)``;
        the family's value when that is unreadable.
        """
        config = self._vae_config()
        try:
            if "scale_factor_spatial" in config:
                return int(config["scale_factor_spatial"])
            if "spatio_temporal_scaling" in config:  # AutoencoderKLLTXVideo
                return int(config.get("spatial_compression_ratio") or _ltx_ratio(config, "patch_size"))
            return int(2 ** (len(config["block_out_channels"]) - 1))
        except (KeyError, TypeError, ValueError):
            return self.family_info.vae_scale

    @property
    def size_multiple(self) -> int:
        """Width and height must be multiples of this: the VAE's scale times the transformer's
        patch (FLUX and Wan turn 2x2 latent cells into one token), and of what the pipeline class
        demands (8 for Stable Diffusion's, even with a VAE that scales by 4)."""
        return math.lcm(self.vae_scale_factor * self.family_info.patch, self.family_info.pipeline_multiple)

    @property
    def temporal_scale_factor(self) -> int | None:
        """Frames per latent frame for a video family (``frames - 1`` must be a multiple); None else."""
        fallback = self.family_info.temporal_scale
        if fallback is None:
            return None
        config = self._vae_config()
        try:
            if "spatio_temporal_scaling" in config:  # AutoencoderKLLTXVideo
                return int(config.get("temporal_compression_ratio") or _ltx_ratio(config, "patch_size_t"))
            return int(config["scale_factor_temporal"])
        except (KeyError, TypeError, ValueError):
            return fallback

    @property
    def load_options(self) -> Mapping[str, Any]:
        """Family options passed to ``from_pretrained`` (e.g. SDXL's ``add_watermarker``)."""
        return self._options_of("load")

    @property
    def call_options(self) -> Mapping[str, Any]:
        """Family options a caller passes to every pipeline call (e.g. FLUX's ``max_sequence_length``)."""
        return self._options_of("call")

    def _options_of(self, kind: str) -> Mapping[str, Any]:
        specs = self.family_info.options
        return MappingProxyType({k: v for k, v in self.options.items() if specs[k].kind == kind})

    @property
    def scheduler_config(self) -> Mapping[str, Any]:
        """The model's shipped ``scheduler/scheduler_config.json`` (empty when there is none or it is
        unreadable, as for a template): what a sampler chosen by name must suit."""
        return self._component_config("scheduler", "scheduler_config.json")

    def _vae_config(self) -> Mapping[str, Any]:
        return self._component_config("vae", "config.json")

    def _component_config(self, component: str, file_name: str) -> Mapping[str, Any]:
        """A component's JSON config (empty for a template or an unreadable file), read once per
        manifest once it has been read: every request is checked against the VAE's scale and the
        scheduler's schedule, and the files are pinned. A missing file is looked for again."""
        if self.template:
            return MappingProxyType({})
        cache: dict[str, Mapping[str, Any]] = self.__dict__.setdefault("_component_configs", {})
        if component not in cache:
            try:
                config = json.loads((self.folder / component / file_name).read_text(encoding="utf-8"))
            except (OSError, ValueError):
                return MappingProxyType({})
            cache[component] = MappingProxyType(config if isinstance(config, dict) else {})
        return cache[component]


def _ltx_ratio(config: Mapping[str, Any], patch_key: str) -> int:
    """The LTX video VAE's compression, as ``AutoencoderKLLTXVideo`` computes it when its config
    does not state it: the patch size times 2 per spatio-temporal scaling stage."""
    return int(config[patch_key]) * 2 ** sum(bool(stage) for stage in config["spatio_temporal_scaling"])


def _templates_dir(manifests_dir: Path | None) -> Path:
    return (MANIFESTS_DIR if manifests_dir is None else manifests_dir) / TEMPLATES_SUBDIR


def manifests_known(*, manifests_dir: Path | None = None) -> list[str]:
    """Names of the models that have a pinned manifest, sorted (templates are not models yet)."""
    directory = MANIFESTS_DIR if manifests_dir is None else manifests_dir
    names = []
    for path in directory.glob("*.yaml"):
        if path.is_file() and not _is_unpinned(_yaml_read_quietly(path)):
            names.append(path.stem)
    return sorted(names)


def templates_known(*, manifests_dir: Path | None = None) -> list[str]:
    """Names of the checkpoint templates (``manifests/templates/*.yaml``), sorted."""
    return sorted(p.stem for p in _templates_dir(manifests_dir).glob("*.yaml") if p.is_file())


def _yaml_read(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ManifestError(path, f"cannot be read as YAML ({exc})") from exc


def _yaml_read_quietly(path: Path) -> Any:
    """The YAML in ``path``, or None when unreadable (listing names must not fail on one bad file)."""
    try:
        return _yaml_read(path)
    except ManifestError:
        return None


def _is_unpinned(data: Any) -> bool:
    return isinstance(data, dict) and (data.get("template") is True or data.get("files") == {})


def _pin_hint(template: str) -> str:
    return f"run `{PIN_COMMAND} {template} <downloaded folder>` to hash its files and write a pinned manifest"


def manifest_load(name: str, *, manifests_dir: Path | None = None) -> ModelManifest:
    """Read and check the pinned manifest of model ``name``; does not hash the model's files.

    Raises ModelNotFoundError for an unknown name, and ManifestError naming the bad field, or
    saying to run the pin command when only an unpinned template of that name exists.
    """
    directory = MANIFESTS_DIR if manifests_dir is None else manifests_dir
    path = directory / f"{name}.yaml"
    if not NAME_RE.match(name) or not path.is_file():
        for template in (_templates_dir(directory) / f"{name}.yaml", _templates_dir(None) / f"{name}.yaml"):
            if NAME_RE.match(name) and template.is_file():
                raise ManifestError(template, f"model {name!r} is a template with no pinned files; {_pin_hint(name)}")
        raise ModelNotFoundError(name, known=manifests_known(manifests_dir=directory))
    data = _yaml_read(path)
    if _is_unpinned(data):
        raise ManifestError(path, f"is an unpinned template (field 'files' is empty); {_pin_hint(display_path(path))}")
    return _manifest_parse(data, path=path, expected_name=name)


def template_load(ref: str | Path, *, manifests_dir: Path | None = None) -> ModelManifest:
    """Read and check a template, by name (``manifests/templates/<name>.yaml``) or by path.

    The result has ``template=True`` and no files; it can be pinned, never loaded. A pinned manifest
    given by path is read as a template too (its pins and folder ignored), for re-pinning.
    """
    path = Path(ref)
    if not (path.suffix in (".yaml", ".yml") or path.is_file()):
        name = str(ref)
        path = _templates_dir(manifests_dir) / f"{name}.yaml"
        if not NAME_RE.match(name) or not path.is_file():
            raise ModelNotFoundError(name, known=templates_known(manifests_dir=manifests_dir), kind="template")
    if not path.is_file():
        raise ModelNotFoundError(str(ref), known=templates_known(manifests_dir=manifests_dir), kind="template")
    return _manifest_parse(_yaml_read(path), path=path, expected_name=path.stem, template=True)


def _manifest_parse(data: Any, *, path: Path, expected_name: str, template: bool = False) -> ModelManifest:
    if not isinstance(data, dict):
        raise ManifestError(path, f"must be a mapping of fields, got {type(data).__name__}")
    required = [key for key in _REQUIRED if not (template and key in _TEMPLATE_NOT_NEEDED)]
    missing = [key for key in required if key not in data]
    if missing:
        raise ManifestError(path, f"field {missing[0]!r} is missing")
    unknown = [key for key in data if key not in _REQUIRED and key not in _OPTIONAL]
    if unknown:
        known = ", ".join((*_REQUIRED, *_OPTIONAL))
        raise ManifestError(path, f"field {unknown[0]!r} is not a manifest field (known: {known})")

    def text(key: str, *, allow_empty: bool = False, default: str | None = None) -> str:
        value = data.get(key, default)
        if not isinstance(value, str) or (not allow_empty and not value.strip()):
            raise ManifestError(path, f"field {key!r} must be a non-empty string, got {value!r}")
        return value

    name = text("name")
    if name != expected_name:
        raise ManifestError(path, f"field 'name' is {name!r} but the file is named {expected_name!r}")
    family = text("family")
    if family not in FAMILIES:
        known = ", ".join(sorted(FAMILIES))
        raise ManifestError(path, f"field 'family' is {family!r}; known families: {known}")
    info = FAMILIES[family]
    pipeline_class = text("pipeline_class")
    if pipeline_class not in info.pipelines:
        raise ManifestError(
            path,
            f"field 'pipeline_class' is {pipeline_class!r}; family {family!r} loads {', '.join(info.pipelines)}",
        )
    role = text("role")
    if role not in ROLES:
        raise ManifestError(path, f"field 'role' is {role!r}; known roles: {', '.join(ROLES)}")
    dtype = text("dtype", default="auto")
    if dtype not in DTYPES:
        raise ManifestError(path, f"field 'dtype' is {dtype!r}; known dtypes: {', '.join(DTYPES)}")
    variant = data.get("variant")
    if variant is not None and (not isinstance(variant, str) or not _VARIANT_RE.match(variant)):
        raise ManifestError(path, f"field 'variant' must be a file variant such as 'fp16', got {variant!r}")
    files: Mapping[str, str] = MappingProxyType({})
    folder = path.parent  # a template has neither: nothing is pinned, its folder is unknown
    if not template:
        folder, files = (path.parent / text("folder")).resolve(), files_parse(data["files"], path=path)
    manifest = ModelManifest(
        name=name,
        family=family,
        pipeline_class=pipeline_class,
        role=role,
        folder=folder,
        files=files,
        license=text("license"),
        defaults=_defaults_parse(data["defaults"], path=path, role=role),
        notes=text("notes", allow_empty=True),
        path=path,
        dtype=dtype,
        variant=variant,
        memory=_memory_parse(data.get("memory", {}), path=path),
        options=_options_parse(data.get("options", {}), path=path, family=family),
        ranges=_ranges_parse(data.get("ranges", {}), path=path),
        source=text("source", allow_empty=True, default=""),
        hardware=text("hardware", allow_empty=True, default=""),
        template=template,
    )
    _manifest_check(manifest)
    return manifest


def _manifest_check(manifest: ModelManifest) -> None:
    """Checks across fields: sizes against the model's geometry, defaults inside their ranges."""
    path, defaults = manifest.path, manifest.defaults
    multiple = manifest.size_multiple
    for key in ("width", "height"):
        value = getattr(defaults, key)
        if value % multiple:
            raise ManifestError(path, f"field 'defaults.{key}' is {value}, not a multiple of {multiple}")
    temporal = manifest.temporal_scale_factor
    if temporal is not None and defaults.frames is not None and (defaults.frames - 1) % temporal:
        raise ManifestError(
            path,
            f"field 'defaults.frames' is {defaults.frames}; family {manifest.family!r} needs "
            f"{temporal} * k + 1 frames (e.g. {(defaults.frames - 1) // temporal * temporal + 1})",
        )
    for key, (low, high) in manifest.ranges.items():
        value = getattr(defaults, key)
        if not low <= value <= high:
            raise ManifestError(path, f"field 'defaults.{key}' is {value}, outside 'ranges.{key}' [{low}, {high}]")


def files_parse(value: Any, *, path: Path) -> Mapping[str, str]:
    """The ``files`` field of a manifest: plain relative paths to lowercase sha256 digests."""
    if not isinstance(value, dict) or not value:
        raise ManifestError(
            path, f"field 'files' must map relative paths to sha256 hex digests (got {value!r}); {_pin_hint(path.stem)}"
        )
    files: dict[str, str] = {}
    for rel, digest in value.items():
        pure = PurePosixPath(str(rel))
        if pure.is_absolute() or ".." in pure.parts or str(pure) != str(rel):
            raise ManifestError(path, f"field 'files' has {rel!r}, not a plain relative path")
        if not isinstance(digest, str) or not _SHA256_RE.match(digest):
            raise ManifestError(path, f"field 'files.{rel}' must be a lowercase sha256 hex digest, got {digest!r}")
        files[str(rel)] = digest
    return MappingProxyType(dict(sorted(files.items())))


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def _defaults_parse(value: Any, *, path: Path, role: str) -> ModelDefaults:
    if not isinstance(value, dict):
        raise ManifestError(path, "field 'defaults' must be a mapping")
    for key in ("steps", "guidance", "width", "height"):
        if key not in value:
            raise ManifestError(path, f"field 'defaults.{key}' is missing")
    unknown = [key for key in value if key not in _DEFAULT_KEYS]
    if unknown:
        known = ", ".join(_DEFAULT_KEYS)
        raise ManifestError(path, f"field 'defaults.{unknown[0]}' is not a default (known: {known})")
    for key in ("steps", "width", "height"):
        if not _positive_int(value[key]):
            raise ManifestError(path, f"field 'defaults.{key}' must be a positive integer, got {value[key]!r}")
    guidance = value["guidance"]
    if isinstance(guidance, bool) or not isinstance(guidance, int | float) or guidance < 0:
        raise ManifestError(path, f"field 'defaults.guidance' must be a number >= 0, got {guidance!r}")
    video = role == VIDEO_ROLE
    for key in ("frames", "fps"):
        if video and key not in value:
            raise ManifestError(path, f"field 'defaults.{key}' is missing; role {role!r} needs frames and fps")
        if not video and key in value:
            raise ManifestError(
                path, f"field 'defaults.{key}' is {value[key]!r} but role {role!r} makes images (no frames or fps)"
            )
        if video and not _positive_int(value[key]):
            raise ManifestError(path, f"field 'defaults.{key}' must be a positive integer, got {value[key]!r}")
    return ModelDefaults(
        steps=value["steps"],
        guidance=float(guidance),
        width=value["width"],
        height=value["height"],
        frames=value.get("frames"),
        fps=value.get("fps"),
    )


def _memory_parse(value: Any, *, path: Path) -> MemoryOptions:
    if not isinstance(value, dict):
        raise ManifestError(path, f"field 'memory' must be a mapping, got {value!r}")
    known = ("cpu_offload", "vae_slicing", "vae_tiling")
    unknown = [key for key in value if key not in known]
    if unknown:
        raise ManifestError(path, f"field 'memory.{unknown[0]}' is not a memory option (known: {', '.join(known)})")
    offload = value.get("cpu_offload", False)
    if not isinstance(offload, bool):
        raise ManifestError(path, f"field 'memory.cpu_offload' must be true or false, got {offload!r}")
    switches: dict[str, bool | None] = {}
    for key in ("vae_slicing", "vae_tiling"):
        setting = value.get(key, "auto")
        if setting != "auto" and not isinstance(setting, bool):
            raise ManifestError(path, f"field 'memory.{key}' must be auto, true or false, got {setting!r}")
        switches[key] = None if setting == "auto" else setting
    return MemoryOptions(cpu_offload=offload, **switches)


def _options_parse(value: Any, *, path: Path, family: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise ManifestError(path, f"field 'options' must be a mapping, got {value!r}")
    specs = FAMILIES[family].options
    options: dict[str, Any] = {}
    for key, option in value.items():
        spec = specs.get(str(key))
        if spec is None:
            known = ", ".join(sorted(specs)) or "none"
            raise ManifestError(path, f"field 'options.{key}' is not an option of family {family!r} (known: {known})")
        bad_type = not isinstance(option, spec.kind_of_value) or (
            spec.kind_of_value is int and isinstance(option, bool)
        )
        out_of_range = not bad_type and (
            (spec.low is not None and option < spec.low) or (spec.high is not None and option > spec.high)
        )
        if bad_type or out_of_range:
            wanted = spec.kind_of_value.__name__
            if spec.low is not None or spec.high is not None:
                wanted += f" in [{spec.low}, {spec.high}]"
            raise ManifestError(path, f"field 'options.{key}' must be {wanted}, got {option!r}")
        if spec.kind == "component-dtype" and option not in DTYPES[1:]:
            raise ManifestError(path, f"field 'options.{key}' is {option!r}; known dtypes: {', '.join(DTYPES[1:])}")
        options[str(key)] = option
    return MappingProxyType(options)


def _ranges_parse(value: Any, *, path: Path) -> Mapping[str, tuple[float, float]]:
    if not isinstance(value, dict):
        raise ManifestError(path, f"field 'ranges' must be a mapping, got {value!r}")
    ranges: dict[str, tuple[float, float]] = {}
    for key, bounds in value.items():
        if key not in _RANGED:
            raise ManifestError(path, f"field 'ranges.{key}' is not a ranged default (known: {', '.join(_RANGED)})")
        ok = (
            isinstance(bounds, list)
            and len(bounds) == 2
            and all(isinstance(b, int | float) and not isinstance(b, bool) for b in bounds)
            and bounds[0] <= bounds[1]
        )
        if not ok:
            raise ManifestError(path, f"field 'ranges.{key}' must be [low, high] with low <= high, got {bounds!r}")
        ranges[str(key)] = (bounds[0], bounds[1])
    return MappingProxyType(ranges)


def sha256_file(path: Path) -> str:
    """The sha256 hex digest of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def manifest_verify(manifest: ModelManifest) -> None:
    """Hash every pinned file; raise ModelIntegrityError for the first missing or differing one.

    Files in the folder that the manifest does not pin are ignored. A template has nothing pinned
    and is refused (ManifestError).
    """
    if manifest.template or not manifest.files:
        raise ManifestError(manifest.path, f"is an unpinned template; {_pin_hint(manifest.name)}")
    files_verify(name=manifest.name, manifest_path=manifest.path, folder=manifest.folder, files=manifest.files)


def files_verify(*, name: str, manifest_path: Path, folder: Path, files: Mapping[str, str]) -> None:
    """Hash every pinned file of ``folder``; raise ModelIntegrityError for the first missing or
    differing one (any model kind: generators here, captioners in ``models.captioner``)."""
    for rel, expected in files.items():
        file_path = folder / rel
        actual = sha256_file(file_path) if file_path.is_file() else None
        if actual != expected:
            raise ModelIntegrityError(
                name=name, manifest_path=manifest_path, file=rel, expected=expected, actual=actual
            )


def model_index_class(folder: Path) -> str:
    """The pipeline class named by ``folder/model_index.json`` (its ``_class_name``).

    Raises ModelFolderError when the folder, the file or the field is missing or unreadable.
    """
    if not folder.is_dir():
        raise ModelFolderError(folder, "is not a folder")
    index = folder / "model_index.json"
    try:
        data = json.loads(index.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelFolderError(folder, "has no model_index.json (not a diffusers pipeline folder)") from None
    except (OSError, ValueError) as exc:
        raise ModelFolderError(folder, f"model_index.json cannot be read as JSON ({exc})") from exc
    name = data.get("_class_name") if isinstance(data, dict) else None
    if not isinstance(name, str) or not name:
        raise ModelFolderError(folder, f"model_index.json has no '_class_name' (got {name!r})")
    return name


def model_index_check(folder: Path, *, pipeline_class: str, what: str) -> None:
    """Refuse a folder whose ``model_index.json`` names another pipeline than ``pipeline_class``."""
    found = model_index_class(folder)
    if found != pipeline_class:
        raise ModelFolderError(
            folder, f"model_index.json '_class_name' is {found!r} but {what} names pipeline_class {pipeline_class!r}"
        )


@contextmanager
def _loading_quietly() -> Iterator[None]:
    """Hide diffusers' and transformers' per-component loading bars and notices, then restore them.

    A worker's log should show its own progress; the settings are process-wide, hence the restore.
    """
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    saved = [
        (lib, lib.is_progress_bar_enabled(), lib.get_verbosity()) for lib in (diffusers_logging, transformers_logging)
    ]
    for lib, _, _ in saved:
        lib.disable_progress_bar()
        lib.set_verbosity_error()
    try:
        yield
    finally:
        for lib, bars_on, verbosity in saved:
            if bars_on:
                lib.enable_progress_bar()
            lib.set_verbosity(verbosity)


_PIPELINES: dict[tuple[str, Path, str, str], tuple[DiffusionPipeline, PipelineSetup]] = {}
_PIPELINES_LOCK = threading.Lock()


def pipeline_cache_clear() -> None:
    """Forget every pipeline loaded in this process (for tests)."""
    with _PIPELINES_LOCK:
        _PIPELINES.clear()


def pipeline_load(manifest: ModelManifest, *, device: str | None = None) -> DiffusionPipeline:
    """Verify and load ``manifest``'s pipeline offline; later calls return the same object.

    ``device`` (else the ``GREENLIGHT_DEVICE`` environment variable, else CUDA when available, else
    CPU) and the dtype are chosen by ``models.device.device_choose``; memory savers are switched on
    as the manifest and output size call for. The files are hashed once, when the pipeline is first
    loaded in this process for that device.
    """
    return _pipeline_entry(manifest, device=device)[0]


def pipeline_setup(manifest: ModelManifest, *, device: str | None = None) -> PipelineSetup:
    """How ``manifest``'s pipeline was set up for ``device`` (dtype, savers, attention), loading it
    first if this process has not."""
    return _pipeline_entry(manifest, device=device)[1]


def _pipeline_entry(manifest: ModelManifest, *, device: str | None) -> tuple[DiffusionPipeline, PipelineSetup]:
    # Before diffusers/huggingface_hub are imported: they read these once, at import.
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    import diffusers

    from models.device import device_choose, pipeline_prepare

    # 1. Everything that can be refused without touching a GPU: the plan, the class, the files.
    plan = device_choose(manifest, device)
    # The folder is part of the key: another copy with the same pins is verified on its own.
    key = (manifest.manifest_hash, manifest.folder, plan.device, plan.dtype)
    with _PIPELINES_LOCK:
        if key in _PIPELINES:
            return _PIPELINES[key]
        pipeline_cls = getattr(diffusers, manifest.pipeline_class, None)
        if not isinstance(pipeline_cls, type) or not issubclass(pipeline_cls, diffusers.DiffusionPipeline):
            raise ManifestError(
                manifest.path,
                f"field 'pipeline_class' is {manifest.pipeline_class!r}, not a diffusers pipeline",
            )
        if manifest.template or not manifest.files:
            raise ManifestError(manifest.path, f"is an unpinned template; {_pin_hint(manifest.name)}")
        model_index_check(
            manifest.folder, pipeline_class=manifest.pipeline_class, what=f"manifest {display_path(manifest.path)}"
        )
        manifest_verify(manifest)
        # 2. Load on the CPU side, offline, in the chosen dtype.
        extra: dict[str, Any] = dict(manifest.load_options)
        if manifest.variant is not None:
            extra["variant"] = manifest.variant
        with _loading_quietly(), warnings.catch_warnings():
            # `torch_dtype` is accepted by every diffusers we allow (>=0.35); `dtype` only by the
            # newest (diffusers PR #14205), which deprecates the old name with a FutureWarning.
            warnings.filterwarnings("ignore", message=".*torch_dtype.*", category=FutureWarning)
            pipe = pipeline_cls.from_pretrained(
                manifest.folder,
                torch_dtype=plan.torch_dtype_argument(),
                local_files_only=True,
                use_safetensors=True,
                **extra,
            )
        # 3. Move to the device (or offload), switch memory savers on, check the attention kernel.
        setup = pipeline_prepare(pipe, manifest, plan)
        pipe.set_progress_bar_config(disable=True)
        logger.info("loaded model %s: %s", manifest.name, "; ".join(setup.lines()))
        _PIPELINES[key] = (pipe, setup)
        return pipe, setup
