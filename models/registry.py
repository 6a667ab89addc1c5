"""Find, pin and load the diffusion models Greenlight generates with.

A model is a folder of diffusers files plus a manifest, ``models/manifests/<name>.yaml``, that pins
the sha256 of every file. ``manifest_load`` reads and checks a manifest (cheap, no torch);
``manifest_verify`` hashes the files; ``pipeline_load`` verifies, then loads the pipeline fully
offline, once per process and device.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import yaml

from models.errors import ManifestError, ModelIntegrityError, ModelNotFoundError

if TYPE_CHECKING:
    from diffusers import DiffusionPipeline

MANIFESTS_DIR = Path(__file__).parent / "manifests"

# Pixels per latent cell for families whose VAE config cannot be read (diffusers' own fallback).
_FAMILY_VAE_SCALE: dict[str, int] = {"stable-diffusion": 8}
_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
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


@dataclass(frozen=True)
class ModelDefaults:
    """Generation settings a model is meant to be used with unless a request says otherwise."""

    steps: int
    guidance: float
    width: int
    height: int


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
    def vae_scale_factor(self) -> int:
        """Image pixels per latent cell; width and height must be multiples of it.

        Computed as diffusers does, ``2 ** (len(vae.block_out_channels) - 1)``, from the model's
        ``vae/config.json``; the family's value (8 for Stable Diffusion) when that is unreadable.
        """
        try:
            config = json.loads((self.folder / "vae" / "config.json").read_text(encoding="utf-8"))
            return int(2 ** (len(config["block_out_channels"]) - 1))
        except (OSError, ValueError, KeyError, TypeError):
            return _FAMILY_VAE_SCALE[self.family]


def manifests_known(*, manifests_dir: Path | None = None) -> list[str]:
    """Names of the models that have a manifest, sorted."""
    directory = MANIFESTS_DIR if manifests_dir is None else manifests_dir
    return sorted(p.stem for p in directory.glob("*.yaml") if p.is_file())


def manifest_load(name: str, *, manifests_dir: Path | None = None) -> ModelManifest:
    """Read and check the manifest of model ``name``; does not touch the model's files.

    Raises ModelNotFoundError for an unknown name and ManifestError naming the bad field.
    """
    directory = MANIFESTS_DIR if manifests_dir is None else manifests_dir
    path = directory / f"{name}.yaml"
    if not _NAME_RE.match(name) or not path.is_file():
        raise ModelNotFoundError(name, known=manifests_known(manifests_dir=directory))
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ManifestError(path, f"cannot be read as YAML ({exc})") from exc
    return _manifest_parse(data, path=path, expected_name=name)


def _manifest_parse(data: Any, *, path: Path, expected_name: str) -> ModelManifest:
    if not isinstance(data, dict):
        raise ManifestError(path, f"must be a mapping of fields, got {type(data).__name__}")
    missing = [key for key in _REQUIRED if key not in data]
    if missing:
        raise ManifestError(path, f"field {missing[0]!r} is missing")

    def text(key: str, *, allow_empty: bool = False) -> str:
        value = data[key]
        if not isinstance(value, str) or (not allow_empty and not value.strip()):
            raise ManifestError(path, f"field {key!r} must be a non-empty string, got {value!r}")
        return value

    name = text("name")
    if name != expected_name:
        raise ManifestError(path, f"field 'name' is {name!r} but the file is named {expected_name!r}")
    family = text("family")
    if family not in _FAMILY_VAE_SCALE:
        known = ", ".join(sorted(_FAMILY_VAE_SCALE))
        raise ManifestError(path, f"field 'family' is {family!r}; known families: {known}")
    folder = (path.parent / text("folder")).resolve()
    manifest = ModelManifest(
        name=name,
        family=family,
        pipeline_class=text("pipeline_class"),
        role=text("role"),
        folder=folder,
        files=_files_parse(data["files"], path=path),
        license=text("license"),
        defaults=_defaults_parse(data["defaults"], path=path),
        notes=text("notes", allow_empty=True),
        path=path,
    )
    scale = manifest.vae_scale_factor
    for key in ("width", "height"):
        value = getattr(manifest.defaults, key)
        if value % scale:
            raise ManifestError(path, f"field 'defaults.{key}' is {value}, not a multiple of {scale}")
    return manifest


def _files_parse(value: Any, *, path: Path) -> Mapping[str, str]:
    if not isinstance(value, dict) or not value:
        raise ManifestError(path, "field 'files' must map relative paths to sha256 hex digests")
    files: dict[str, str] = {}
    for rel, digest in value.items():
        pure = PurePosixPath(str(rel))
        if pure.is_absolute() or ".." in pure.parts or str(pure) != str(rel):
            raise ManifestError(path, f"field 'files' has {rel!r}, not a plain relative path")
        if not isinstance(digest, str) or not _SHA256_RE.match(digest):
            raise ManifestError(path, f"field 'files.{rel}' must be a lowercase sha256 hex digest, got {digest!r}")
        files[str(rel)] = digest
    return MappingProxyType(dict(sorted(files.items())))


def _defaults_parse(value: Any, *, path: Path) -> ModelDefaults:
    if not isinstance(value, dict):
        raise ManifestError(path, "field 'defaults' must be a mapping")
    for key in ("steps", "guidance", "width", "height"):
        if key not in value:
            raise ManifestError(path, f"field 'defaults.{key}' is missing")
    for key in ("steps", "width", "height"):
        number = value[key]
        if isinstance(number, bool) or not isinstance(number, int) or number < 1:
            raise ManifestError(path, f"field 'defaults.{key}' must be a positive integer, got {number!r}")
    guidance = value["guidance"]
    if isinstance(guidance, bool) or not isinstance(guidance, int | float) or guidance < 0:
        raise ManifestError(path, f"field 'defaults.guidance' must be a number >= 0, got {guidance!r}")
    return ModelDefaults(steps=value["steps"], guidance=float(guidance), width=value["width"], height=value["height"])


def sha256_file(path: Path) -> str:
    """The sha256 hex digest of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def manifest_verify(manifest: ModelManifest) -> None:
    """Hash every pinned file; raise ModelIntegrityError for the first missing or differing one.

    Files in the folder that the manifest does not pin are ignored.
    """
    for rel, expected in manifest.files.items():
        file_path = manifest.folder / rel
        actual = sha256_file(file_path) if file_path.is_file() else None
        if actual != expected:
            raise ModelIntegrityError(
                name=manifest.name,
                manifest_path=manifest.path,
                file=rel,
                expected=expected,
                actual=actual,
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


_PIPELINES: dict[tuple[str, Path, str], DiffusionPipeline] = {}
_PIPELINES_LOCK = threading.Lock()


def pipeline_cache_clear() -> None:
    """Forget every pipeline loaded in this process (for tests)."""
    with _PIPELINES_LOCK:
        _PIPELINES.clear()


def pipeline_load(manifest: ModelManifest, *, device: str | None = None) -> DiffusionPipeline:
    """Verify and load ``manifest``'s pipeline offline; later calls return the same object.

    ``device`` defaults to CUDA (float16) when available, else CPU (float32). The files are hashed
    once, when the pipeline is first loaded in this process for that device.
    """
    # Before diffusers/huggingface_hub are imported: they read these once, at import.
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    import diffusers
    import torch

    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    # The folder is part of the key: another copy with the same pins is verified on its own.
    key = (manifest.manifest_hash, manifest.folder, device)
    with _PIPELINES_LOCK:
        if key in _PIPELINES:
            return _PIPELINES[key]
        pipeline_cls = getattr(diffusers, manifest.pipeline_class, None)
        if not isinstance(pipeline_cls, type) or not issubclass(pipeline_cls, diffusers.DiffusionPipeline):
            raise ManifestError(
                manifest.path,
                f"field 'pipeline_class' is {manifest.pipeline_class!r}, not a diffusers pipeline",
            )
        manifest_verify(manifest)
        dtype = torch.float16 if torch.device(device).type == "cuda" else torch.float32
        with _loading_quietly(), warnings.catch_warnings():
            # `torch_dtype` is accepted by every diffusers we allow (>=0.35); `dtype` only by the
            # newest (diffusers PR #14205), which deprecates the old name with a FutureWarning.
            warnings.filterwarnings("ignore", message=".*torch_dtype.*", category=FutureWarning)
            pipe = pipeline_cls.from_pretrained(
                manifest.folder, torch_dtype=dtype, local_files_only=True, use_safetensors=True
            )
        pipe.to(device)
        pipe.set_progress_bar_config(disable=True)
        _PIPELINES[key] = pipe
        return pipe
