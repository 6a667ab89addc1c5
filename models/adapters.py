"""Adapters: LoRA weights and textual inversions (brand adapters) and ControlNets (structure
control) for a model family, pinned by a manifest like the models are.

An adapter manifest lives in ``models/manifests/adapters/<name>.yaml`` beside the model manifests
and pins the sha256 of every file of its folder; loading refuses a missing or changed file::

    name: brand-red
    kind: lora
    family: stable-diffusion
    folder: ../../adapters/brand-red
    weight_name: pytorch_lora_weights.safetensors
    license: proprietary
    files: {pytorch_lora_weights.safetensors: <sha256>}

A template names adapters with a scale (``lora: [{name: brand-red, scale: 0.8}]``), and
textual inversions (``kind: textual-inversion``, an embedding file such as diffusers' training
writes, ``learned_embeds.safetensors``) with the token its prompts use (``embeddings: [{name:
brand-style, token: "<brand-style>"}]``). The adapter's ``manifest_hash`` enters each asset's key
and generation record, so new weights make new assets. ``adapters_apply`` and
``embeddings_apply`` (in ``models.loading``'s world: torch) load one into a loaded pipeline once
per worker. ``python -m models.adapters pin NAME FOLDER --family F --license L`` hashes a folder
and writes the manifest. Nothing is downloaded.
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

from models.errors import ManifestError
from models.families import FAMILIES, TEXTUAL_INVERSION_FAMILIES
from models.integrity import files_verify
from models.pin import folder_hashes
from models.pinned import pinned_dir, pinned_known, pinned_read, pinned_write
from models.registry import files_parse

ADAPTERS_SUBDIR = "adapters"
TEXTUAL_INVERSION = "textual-inversion"
# + models.safety's classifier and models.upscaling's upscaler
ADAPTER_KINDS = ("lora", TEXTUAL_INVERSION, "controlnet", "safety", "upscaler")
# The file each kind's diffusers folder holds, as its training or save_pretrained writes it.
DEFAULT_WEIGHT_NAMES = {
    "lora": "pytorch_lora_weights.safetensors",
    TEXTUAL_INVERSION: "learned_embeds.safetensors",
}
# Kinds that stand beside any model family: what their ``family`` field must say (models.safety).
STANDALONE_FAMILIES = {"safety": "image-classification", "upscaler": "stable-diffusion-upscale"}
CONTROLNET_FAMILIES = {"stable-diffusion": "StableDiffusion", "stable-diffusion-xl": "StableDiffusionXL"}
ADAPTER_FAMILIES = ("stable-diffusion", "stable-diffusion-xl", "flux")  # diffusers loads LoRA for these
MAX_ADAPTER_SCALE = 4.0
_FIELDS = ("name", "kind", "family", "folder", "weight_name", "license", "files", "notes", "source")
_REQUIRED = ("name", "kind", "family", "folder", "weight_name", "license", "files")
_TEXT_FIELDS = ("name", "kind", "family", "folder", "weight_name", "license", "notes", "source")


@dataclass(frozen=True)
class AdapterManifest:
    """A pinned adapter (a LoRA, a textual inversion, a ControlNet; or a safety classifier or an
    upscaler, which stand beside any model)."""

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
    return pinned_dir(ADAPTERS_SUBDIR, manifests_dir)


def adapters_known(*, manifests_dir: Path | None = None) -> list[str]:
    return pinned_known(ADAPTERS_SUBDIR, manifests_dir)


def adapter_manifest_load(name: str, *, manifests_dir: Path | None = None) -> AdapterManifest:
    """Read and check ``adapters/<name>.yaml``; every problem names the file and the field."""
    path, data = pinned_read(
        name,
        subdir=ADAPTERS_SUBDIR,
        kind="adapter",
        fields=_FIELDS,
        required=_REQUIRED,
        text_fields=_TEXT_FIELDS,
        manifests_dir=manifests_dir,
    )
    if data["kind"] not in ADAPTER_KINDS:
        raise ManifestError(path, f"field 'kind' is {data['kind']!r}; known: {', '.join(ADAPTER_KINDS)}")
    standalone = STANDALONE_FAMILIES.get(data["kind"])
    if standalone is not None and data["family"] != standalone:
        raise ManifestError(path, f"field 'family' is {data['family']!r}; a {data['kind']} is {standalone!r}")
    if data["kind"] == TEXTUAL_INVERSION and data["family"] not in TEXTUAL_INVERSION_FAMILIES:
        raise ManifestError(
            path,
            f"field 'family' is {data['family']!r}; textual inversions load for the families whose text "
            f"encoders take them: {', '.join(TEXTUAL_INVERSION_FAMILIES)}",
        )
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
    weight_name: str | None = None,
    manifests_dir: Path | None = None,
    notes: str = "",
    source: str = "",
) -> AdapterManifest:
    """Hash ``folder`` and write ``adapters/<name>.yaml``; returns the manifest as loaded back.
    ``weight_name`` defaults to the file the kind's diffusers folder holds."""
    folder = folder.resolve()
    data: dict[str, Any] = {
        "name": name,
        "kind": kind,
        "family": family,
        "folder": os.path.relpath(folder, adapters_dir(manifests_dir)),
        "weight_name": weight_name or _default_weight_name(kind),
        "license": license_name,
        "source": source,
        "notes": notes,
        "files": dict(sorted(folder_hashes(folder).items())),
    }
    pinned_write(
        name, data, subdir=ADAPTERS_SUBDIR, command="python -m models.adapters pin", manifests_dir=manifests_dir
    )
    return adapter_manifest_load(name, manifests_dir=manifests_dir)


def _default_weight_name(kind: str) -> str:
    return DEFAULT_WEIGHT_NAMES.get(kind, "diffusion_pytorch_model.safetensors")


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
    manifest = adapter_pin(
        args.name,
        args.folder,
        family=args.family,
        license_name=args.license_name,
        kind=args.kind,
        weight_name=args.weight_name,
    )
    print(f"Wrote {manifest.path} (manifest hash {manifest.manifest_hash})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
