"""Check that a model folder is what its manifest pins: every file's sha256, and its pipeline class.

Nothing is loaded here: ``manifest_verify`` hashes the pinned files (files the manifest does not
pin are ignored), ``model_index_check`` reads the class a diffusers folder names. Both run before
any weights are read, so a changed or swapped checkpoint is refused by name.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path

from models.errors import ManifestError, ModelFolderError, ModelIntegrityError
from models.manifest import ModelManifest, pin_hint


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
    manifest_pins_check(manifest)
    files_verify(name=manifest.name, manifest_path=manifest.path, folder=manifest.folder, files=manifest.files)


def manifest_pins_check(manifest: ModelManifest) -> None:
    """Refuse an unpinned template (ManifestError, with the command that pins it)."""
    if manifest.template or not manifest.files:
        raise ManifestError(manifest.path, f"is an unpinned template; {pin_hint(manifest.name)}")


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
