"""Manifests that pin a folder beside the model manifests: adapters (``adapters/<name>.yaml``) and
captioners (``captioners/<name>.yaml``).

Each kind has its own fields and checks; what they share lives here once: finding the file by
name, reading it as a mapping, refusing a missing, unknown or non-text field and a name that is
not the file's, and writing a pinned manifest with its header. Hashing a folder is
``models.pin.folder_hashes``; checking it, ``models.integrity.files_verify``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from models.errors import ManifestError, ModelNotFoundError
from models.registry import MANIFESTS_DIR, NAME_RE


def pinned_dir(subdir: str, manifests_dir: Path | None = None) -> Path:
    """The folder of one kind's manifests: ``<manifests>/<subdir>``."""
    return (MANIFESTS_DIR if manifests_dir is None else manifests_dir) / subdir


def pinned_known(subdir: str, manifests_dir: Path | None = None) -> list[str]:
    """The names of one kind's manifests, sorted."""
    directory = pinned_dir(subdir, manifests_dir)
    return sorted(p.stem for p in directory.glob("*.yaml")) if directory.is_dir() else []


def pinned_read(
    name: object,
    *,
    subdir: str,
    kind: str,
    fields: Iterable[str],
    required: Iterable[str],
    text_fields: Iterable[str],
    manifests_dir: Path | None = None,
) -> tuple[Path, dict[str, Any]]:
    """Find ``<subdir>/<name>.yaml`` and read it as a mapping whose fields are all ``fields``, with
    every one of ``required``, the ``text_fields`` as text and ``name`` the file's own; returns the
    path and the mapping. Each refusal names the file and the field (``kind``: "adapter", say)."""
    path = pinned_dir(subdir, manifests_dir) / f"{name}.yaml"
    if not isinstance(name, str) or not NAME_RE.match(name) or not path.is_file():
        raise ModelNotFoundError(str(name), known=pinned_known(subdir, manifests_dir), kind=kind)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ManifestError(path, f"cannot be read as YAML ({exc})") from exc
    if not isinstance(data, dict):
        raise ManifestError(path, "must be a mapping of fields")
    known = tuple(fields)
    missing = [key for key in required if key not in data]
    if missing:
        raise ManifestError(path, f"field {missing[0]!r} is missing")
    unknown = [key for key in data if key not in known]
    if unknown:
        article = "an" if kind[:1] in "aeiou" else "a"
        raise ManifestError(path, f"field {unknown[0]!r} is not {article} {kind} field (known: {', '.join(known)})")
    for key in text_fields:
        if key in data and not isinstance(data[key], str):
            raise ManifestError(path, f"field {key!r} must be text, got {data[key]!r}")
    if data["name"] != name:
        raise ManifestError(path, f"field 'name' is {data['name']!r} but the file is named {name!r}")
    return path, data


def pinned_write(
    name: str, data: Mapping[str, Any], *, subdir: str, command: str, manifests_dir: Path | None = None
) -> Path:
    """Write ``data`` as ``<subdir>/<name>.yaml`` under a header naming the ``command`` that
    re-pins it; returns the path. The name is checked first: it is the file's name."""
    if not NAME_RE.match(name):
        raise ManifestError(Path(f"{name}.yaml"), f"field 'name' {name!r} must be lowercase letters, digits, . _ -")
    directory = pinned_dir(subdir, manifests_dir)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.yaml"
    header = f"# Written by `{command}`; re-pin, do not edit.\n"
    path.write_text(header + yaml.safe_dump(dict(data), sort_keys=False), encoding="utf-8")
    return path
