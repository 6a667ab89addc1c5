"""What a model manifest says: a model's identity, its pinned files, and how it is meant to run.

A model is a folder of diffusers files plus a manifest that pins the sha256 of every file
(``models.registry`` finds and reads manifests; ``models.integrity`` checks the pins). A
``ModelManifest`` is the checked record: its family's knowledge (``models.families``), its
defaults, and the geometry read from the model's own component configs. A template is a manifest
with nothing pinned yet; ``python -m models.pin`` turns it into one that is.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, cast

from models.families import FAMILIES, Family

DTYPES = ("auto", "float16", "bfloat16", "float32")
ROLES = ("generator", "video-generator")
VIDEO_ROLE = "video-generator"
PIN_COMMAND = "python -m models.pin"


def pin_hint(template: str) -> str:
    """What to run to turn ``template`` into a pinned manifest, for refusals of an unpinned one."""
    return f"run `{PIN_COMMAND} {template} <downloaded folder>` to hash its files and write a pinned manifest"


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
        """What the family table (``models.families``) knows of this manifest's family."""
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
