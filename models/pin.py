"""Pin a downloaded checkpoint: hash its folder against a template and write a manifest.

    python -m models.pin <template-name-or-path> <folder> [--name NAME] [--out PATH] [--force]

The folder is what ``huggingface-cli download <repo> --local-dir <folder>`` (or a copy of a hub
snapshot) leaves: a diffusers pipeline folder with ``model_index.json``. Every file is hashed except
git and hub-cache bookkeeping (``.git/``, ``.cache/``, ``*.lock``). The folder must name the
template's pipeline class, and hold a folder for every component ``model_index.json`` lists. The
manifest goes to ``models/manifests/<name>.yaml`` unless ``--out`` says otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import yaml

from models.errors import ManifestError, ModelError, ModelFolderError, display_path
from models.integrity import model_index_check, sha256_file
from models.manifest import ModelManifest
from models.registry import MANIFESTS_DIR, NAME_RE, manifest_load, template_load

SKIPPED_DIRS = frozenset({".git", ".cache"})
SKIPPED_SUFFIXES = (".lock",)
# Fields copied from the template to the manifest, in this order; name, folder and files are added.
_COPIED = ("family", "pipeline_class", "role")
_COPIED_AFTER = (
    "license",
    "source",
    "dtype",
    "variant",
    "defaults",
    "ranges",
    "memory",
    "options",
    "hardware",
    "notes",
)


def folder_files(folder: Path) -> Iterator[Path]:
    """Every file under ``folder`` that a pipeline may read, sorted; bookkeeping is skipped."""
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if any(part in SKIPPED_DIRS for part in rel.parts) or path.name.endswith(SKIPPED_SUFFIXES):
            continue
        if path.is_file():  # follows symlinks: a hub snapshot links into its blob store
            yield path


def folder_hashes(folder: Path) -> dict[str, str]:
    """The sha256 of every file ``folder_files`` yields, by path relative to ``folder``."""
    return {path.relative_to(folder).as_posix(): sha256_file(path) for path in folder_files(folder)}


def _components_check(folder: Path) -> None:
    """Every component ``model_index.json`` lists (other than an absent optional one) has a folder."""
    index = json.loads((folder / "model_index.json").read_text(encoding="utf-8"))
    for component, spec in sorted(index.items()):
        if component.startswith("_") or not isinstance(spec, list) or spec in ([None, None], []):
            continue
        sub = folder / component
        if not sub.is_dir() or not any(sub.iterdir()):
            raise ModelFolderError(
                folder, f"model_index.json lists component {component!r} ({spec[-1]}) but {component}/ is missing"
            )


def _folder_text(folder: Path, manifest_dir: Path) -> str:
    """Relative to the manifest when the folder lies inside the project's models/, else absolute."""
    folder, manifest_dir = folder.resolve(), manifest_dir.resolve()
    if folder.is_relative_to(manifest_dir.parent):
        return Path(os.path.relpath(folder, manifest_dir)).as_posix()
    return folder.as_posix()


def _manifest_data(raw: dict[str, Any], *, name: str, folder: str) -> dict[str, Any]:
    data: dict[str, Any] = {"name": name}
    data.update({key: raw[key] for key in _COPIED if key in raw})
    data["folder"] = folder
    data.update({key: raw[key] for key in _COPIED_AFTER if key in raw})
    return data


def manifest_pin(
    template: str | Path,
    folder: Path,
    *,
    name: str | None = None,
    out: Path | None = None,
    manifests_dir: Path | None = None,
    force: bool = False,
) -> ModelManifest:
    """Hash ``folder`` against ``template`` and write the pinned manifest; return it, loaded back.

    Refuses (ModelFolderError) a folder without ``model_index.json``, one naming another pipeline
    class, or one missing a listed component; refuses (ManifestError) to overwrite a manifest
    unless ``force``, since a new manifest hash orphans prompt versions pinned to the old one.
    """
    # 1. The template, the name and where the manifest goes.
    spec = template_load(template)  # templates ship with the code; manifests_dir is where pins go
    name = name or (out.stem if out is not None else spec.name)
    directory = MANIFESTS_DIR if manifests_dir is None else manifests_dir
    out = out if out is not None else directory / f"{name}.yaml"
    if not NAME_RE.match(name):
        raise ManifestError(out, f"name {name!r} must be lowercase letters, digits, '.', '_' or '-'")
    if out.stem != name:
        raise ManifestError(out, f"a manifest's file must be named after its model: {name}.yaml")
    if out.exists() and not force:
        raise ManifestError(
            out, "exists; pass --force to replace it (prompt versions pinned to it will need re-pinning)"
        )

    # 2. The folder: a pipeline of the template's class, complete.
    folder = folder.resolve()
    model_index_check(folder, pipeline_class=spec.pipeline_class, what=f"template {spec.name!r}")
    _components_check(folder)

    # 3. Hash and write.
    raw = yaml.safe_load(spec.path.read_text(encoding="utf-8"))
    data = _manifest_data(raw, name=name, folder=_folder_text(folder, out.parent))
    data["files"] = folder_hashes(folder)
    header = (
        f"# Pinned by `python -m models.pin` from {display_path(spec.path)} and {folder}.\n"
        "# Re-pin rather than edit: the hashes are the model's identity.\n"
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    body = yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=120, default_flow_style=False)
    out.write_text(header + body, encoding="utf-8")
    # 4. Read it back through the same checks every loader uses.
    return manifest_load(name, manifests_dir=out.parent)


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; prints the manifest written, or the error, and returns the status."""
    parser = argparse.ArgumentParser(prog="python -m models.pin", description=__doc__.splitlines()[0])
    parser.add_argument("template", help="a template name (models/manifests/templates/<name>.yaml) or a path")
    parser.add_argument("folder", type=Path, help="the downloaded diffusers pipeline folder")
    parser.add_argument("--name", help="the model's name (default: the template's)")
    parser.add_argument("--out", type=Path, help="where to write the manifest (default: models/manifests/<name>.yaml)")
    parser.add_argument("--force", action="store_true", help="replace an existing manifest")
    args = parser.parse_args(argv)
    try:
        manifest = manifest_pin(args.template, args.folder, name=args.name, out=args.out, force=args.force)
    except ModelError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"Wrote {display_path(manifest.path)}: {len(manifest.files)} files pinned")
    print(f"manifest_hash {manifest.manifest_hash}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
