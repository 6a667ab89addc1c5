"""Adapters: LoRA weights (brand adapters) and ControlNets (structure control) for a model family,
pinned by a manifest like the models are.

An adapter manifest lives in ``models/manifests/adapters/<name>.yaml`` beside the model manifests
and pins the sha256 of every file of its folder; loading refuses a missing or changed file::

    name: brand-red
    kind: lora
    family: stable-diffusion
    folder: ../../adapters/brand-red
    weight_name: pytorch_lora_weights.safetensors
    license: proprietary
    files: {pytorch_lora_weights.safetensors: <sha256>}

A template names adapters with a scale (``lora: [{name: brand-red, scale: 0.8}]``); the adapter's
``manifest_hash`` enters each asset's key and generation record, so new weights make new assets.
``adapters_apply`` (in ``models.loading``'s world: torch) loads an adapter into a loaded pipeline
once per worker and sets the scales a batch asks for. ``python -m models.adapters pin NAME FOLDER
--family F --license L`` hashes a folder and writes the manifest. Nothing is downloaded.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from models.errors import ManifestError, ModelNotFoundError
from models.families import FAMILIES
from models.integrity import files_verify
from models.pin import folder_hashes
from models.registry import MANIFESTS_DIR, NAME_RE, files_parse

ADAPTERS_SUBDIR = "adapters"
ADAPTER_KINDS = ("lora", "controlnet", "safety", "upscaler")  # + models.safety's classifier and upscaler
# Kinds that stand beside any model family: what their ``family`` field must say (models.safety).
STANDALONE_FAMILIES = {"safety": "image-classification", "upscaler": "stable-diffusion-upscale"}
CONTROLNET_FAMILIES = {"stable-diffusion": "StableDiffusion", "stable-diffusion-xl": "StableDiffusionXL"}
ADAPTER_FAMILIES = ("stable-diffusion", "stable-diffusion-xl", "flux")  # diffusers loads LoRA for these
MAX_ADAPTER_SCALE = 4.0
_FIELDS = ("name", "kind", "family", "folder", "weight_name", "license", "files", "notes", "source")
_REQUIRED = ("name", "kind", "family", "folder", "weight_name", "license", "files")


@dataclass(frozen=True)
class AdapterManifest:
    """A pinned adapter (LoRA) for one model family."""

    name: str
    kind: str
    family: str
    folder: Path
    weight_name: str
    files: Mapping[str, str] = field(hash=False)
    license: str
    path: Path
    notes: str = ""
    source: str = ""

    @property
    def manifest_hash(self) -> str:
        """sha256 of its name, kind, weight file and pinned files: it changes when the weights do."""
        canonical = json.dumps(
            {"name": self.name, "kind": self.kind, "weight_name": self.weight_name, "files": dict(self.files)},
            sort_keys=True,
            separators=(",", ":"),
        )
        return hashlib.sha256(canonical.encode()).hexdigest()


def adapters_dir(manifests_dir: Path | None = None) -> Path:
    return (MANIFESTS_DIR if manifests_dir is None else manifests_dir) / ADAPTERS_SUBDIR


def adapters_known(*, manifests_dir: Path | None = None) -> list[str]:
    directory = adapters_dir(manifests_dir)
    return sorted(p.stem for p in directory.glob("*.yaml")) if directory.is_dir() else []


def adapter_manifest_load(name: str, *, manifests_dir: Path | None = None) -> AdapterManifest:
    """Read and check ``adapters/<name>.yaml``; every problem names the file and the field."""
    path = adapters_dir(manifests_dir) / f"{name}.yaml"
    if not isinstance(name, str) or not NAME_RE.match(name) or not path.is_file():
        raise ModelNotFoundError(str(name), known=adapters_known(manifests_dir=manifests_dir), kind="adapter")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ManifestError(path, f"cannot be read as YAML ({exc})") from exc
    if not isinstance(data, dict):
        raise ManifestError(path, "must be a mapping of fields")
    missing = [key for key in _REQUIRED if key not in data]
    if missing:
        raise ManifestError(path, f"field {missing[0]!r} is missing")
    unknown = [key for key in data if key not in _FIELDS]
    if unknown:
        raise ManifestError(path, f"field {unknown[0]!r} is not an adapter field (known: {', '.join(_FIELDS)})")
    for key in ("name", "kind", "family", "folder", "weight_name", "license", "notes", "source"):
        if key in data and not isinstance(data[key], str):
            raise ManifestError(path, f"field {key!r} must be text, got {data[key]!r}")
    if data["name"] != name:
        raise ManifestError(path, f"field 'name' is {data['name']!r} but the file is named {name!r}")
    if data["kind"] not in ADAPTER_KINDS:
        raise ManifestError(path, f"field 'kind' is {data['kind']!r}; known: {', '.join(ADAPTER_KINDS)}")
    standalone = STANDALONE_FAMILIES.get(data["kind"])
    if standalone is not None and data["family"] != standalone:
        raise ManifestError(path, f"field 'family' is {data['family']!r}; a {data['kind']} is {standalone!r}")
    if standalone is None and (data["family"] not in FAMILIES or data["family"] not in ADAPTER_FAMILIES):
        raise ManifestError(
            path, f"field 'family' is {data['family']!r}; adapters load for: {', '.join(ADAPTER_FAMILIES)}"
        )
    files = files_parse(data["files"], path=path)
    if data["weight_name"] not in files:
        raise ManifestError(path, f"field 'weight_name' is {data['weight_name']!r}, which 'files' does not pin")
    return AdapterManifest(
        name=name,
        kind=data["kind"],
        family=data["family"],
        folder=(path.parent / data["folder"]).resolve(),
        weight_name=data["weight_name"],
        files=files,
        license=data["license"],
        path=path,
        notes=data.get("notes", "") or "",
        source=data.get("source", "") or "",
    )


def adapter_verify(manifest: AdapterManifest) -> None:
    """Hash every pinned file; raise ModelIntegrityError for the first missing or differing one."""
    files_verify(name=manifest.name, manifest_path=manifest.path, folder=manifest.folder, files=manifest.files)


def adapter_pin(
    name: str,
    folder: Path,
    *,
    family: str,
    license_name: str,
    kind: str = "lora",
    weight_name: str = "pytorch_lora_weights.safetensors",
    manifests_dir: Path | None = None,
    notes: str = "",
    source: str = "",
) -> AdapterManifest:
    """Hash ``folder`` and write ``adapters/<name>.yaml``; returns the manifest as loaded back."""
    if not NAME_RE.match(name):
        raise ManifestError(Path(f"{name}.yaml"), f"field 'name' {name!r} must be lowercase letters, digits, . _ -")
    directory = adapters_dir(manifests_dir)
    directory.mkdir(parents=True, exist_ok=True)
    folder = folder.resolve()
    data: dict[str, Any] = {
        "name": name,
        "kind": kind,
        "family": family,
        "folder": os.path.relpath(folder, directory),
        "weight_name": weight_name,
        "license": license_name,
        "source": source,
        "notes": notes,
        "files": dict(sorted(folder_hashes(folder).items())),
    }
    header = "# Written by `python -m models.adapters pin`; re-pin, do not edit.\n"
    (directory / f"{name}.yaml").write_text(header + yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return adapter_manifest_load(name, manifests_dir=manifests_dir)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m models.adapters", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    pin = commands.add_parser("pin", help="hash an adapter folder and write its manifest")
    pin.add_argument("name")
    pin.add_argument("folder", type=Path)
    pin.add_argument("--family", required=True, choices=(*ADAPTER_FAMILIES, *STANDALONE_FAMILIES.values()))
    pin.add_argument("--license", dest="license_name", required=True)
    pin.add_argument("--kind", default="lora", choices=ADAPTER_KINDS)
    pin.add_argument("--weight-name", help="default: the kind's diffusers file name")
    args = parser.parse_args(argv)
    default_weights = (
        "pytorch_lora_weights.safetensors" if args.kind == "lora" else "diffusion_pytorch_model.safetensors"
    )
    manifest = adapter_pin(
        args.name,
        args.folder,
        family=args.family,
        license_name=args.license_name,
        kind=args.kind,
        weight_name=args.weight_name or default_weights,
    )
    print(f"Wrote {manifest.path} (manifest hash {manifest.manifest_hash})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
