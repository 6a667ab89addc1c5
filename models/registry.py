"""Find and read model manifests by name: ``models/manifests/<name>.yaml`` and its templates.

``manifest_load`` reads and checks a pinned manifest (cheap, no torch, the files not hashed), naming
the field and value it refuses; ``template_load`` reads a template,
``models/manifests/templates/<name>.yaml``: everything about a checkpoint except its files.
``python -m models.pin <template> <folder>`` hashes a downloaded folder and writes the pinned
manifest; a template itself is never loaded.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from types import MappingProxyType
from typing import Any

import yaml

from models.errors import ManifestError, ModelNotFoundError, display_path
from models.families import FAMILIES
from models.manifest import DTYPES, ROLES, VIDEO_ROLE, MemoryOptions, ModelDefaults, ModelManifest, pin_hint

MANIFESTS_DIR = Path(__file__).parent / "manifests"
TEMPLATES_SUBDIR = "templates"

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
                raise ManifestError(template, f"model {name!r} is a template with no pinned files; {pin_hint(name)}")
        raise ModelNotFoundError(name, known=manifests_known(manifests_dir=directory))
    data = _yaml_read(path)
    if _is_unpinned(data):
        raise ManifestError(path, f"is an unpinned template (field 'files' is empty); {pin_hint(display_path(path))}")
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
            path, f"field 'files' must map relative paths to sha256 hex digests (got {value!r}); {pin_hint(path.stem)}"
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
