"""Captioning models for alt text: a transformers image-to-text model, pinned by a manifest.

Every asset's alt text starts from its template (``Variant.alt_text``: the template's ``alt_text``
rendered with the variant's values, else its prompt). A deployment with a GPU can add what a
captioning model sees in the image itself: set ``GREENLIGHT_CAPTIONER`` to the name of a manifest in
``models/manifests/captioners/<name>.yaml`` and each generated asset's alt text gets the model's
caption after the template's description.

A captioner manifest pins its folder like a generator's (the sha256 of every file; loading refuses
a missing or changed file) and names the transformers class that loads it::

    name: blip-base
    model_class: BlipForConditionalGeneration
    folder: /models/blip-base
    license: bsd-3-clause
    source: <where the folder was downloaded from>
    defaults: {max_new_tokens: 30, num_beams: 3}
    prompt: ""                 # optional text the caption continues (BLIP: "a photography of")
    notes: ...
    files: {config.json: <sha256>, ...}

``python -m models.captioner pin NAME FOLDER --class CLASS --license LICENSE`` hashes a downloaded
folder and writes the manifest. Nothing is ever downloaded: loading is offline.
"""

from __future__ import annotations

import argparse
import os
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from models.errors import ManifestError, ModelNotFoundError
from models.integrity import files_verify
from models.pin import folder_hashes
from models.registry import MANIFESTS_DIR, NAME_RE, files_parse

CAPTIONERS_SUBDIR = "captioners"
CAPTIONER_CLASSES = (
    "VisionEncoderDecoderModel",
    "BlipForConditionalGeneration",
    "Blip2ForConditionalGeneration",
    "GitForCausalLM",
)
_FIELDS = ("name", "model_class", "folder", "license", "files", "defaults", "prompt", "notes", "source")
_REQUIRED = ("name", "model_class", "folder", "license", "files")
_DEFAULT_KEYS = {"max_new_tokens": (1, 200), "num_beams": (1, 16)}


@dataclass(frozen=True)
class CaptionerManifest:
    """A pinned captioning model."""

    name: str
    model_class: str
    folder: Path
    files: Mapping[str, str] = field(hash=False)
    license: str
    path: Path
    defaults: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}), hash=False)
    prompt: str = ""
    notes: str = ""
    source: str = ""

    @property
    def max_new_tokens(self) -> int:
        return int(self.defaults.get("max_new_tokens", 30))

    @property
    def num_beams(self) -> int:
        return int(self.defaults.get("num_beams", 1))


def captioners_dir(manifests_dir: Path | None = None) -> Path:
    return (MANIFESTS_DIR if manifests_dir is None else manifests_dir) / CAPTIONERS_SUBDIR


def captioners_known(*, manifests_dir: Path | None = None) -> list[str]:
    directory = captioners_dir(manifests_dir)
    return sorted(p.stem for p in directory.glob("*.yaml")) if directory.is_dir() else []


def captioner_manifest_load(name: str, *, manifests_dir: Path | None = None) -> CaptionerManifest:
    """Read and check ``captioners/<name>.yaml``; every problem names the file and the field."""
    path = captioners_dir(manifests_dir) / f"{name}.yaml"
    if not NAME_RE.match(name) or not path.is_file():
        raise ModelNotFoundError(name, known=captioners_known(manifests_dir=manifests_dir), kind="captioner")
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
        raise ManifestError(path, f"field {unknown[0]!r} is not a captioner field (known: {', '.join(_FIELDS)})")
    for key in ("name", "model_class", "folder", "license", "prompt", "notes", "source"):
        if key in data and not isinstance(data[key], str):
            raise ManifestError(path, f"field {key!r} must be text, got {data[key]!r}")
    if data["name"] != name:
        raise ManifestError(path, f"field 'name' is {data['name']!r} but the file is named {name!r}")
    if data["model_class"] not in CAPTIONER_CLASSES:
        raise ManifestError(
            path, f"field 'model_class' is {data['model_class']!r}; known: {', '.join(CAPTIONER_CLASSES)}"
        )
    defaults = data.get("defaults", {}) or {}
    if not isinstance(defaults, dict):
        raise ManifestError(path, f"field 'defaults' must be a mapping, got {defaults!r}")
    for key, value in defaults.items():
        if key not in _DEFAULT_KEYS:
            raise ManifestError(
                path, f"field 'defaults.{key}' is not a captioner default (known: max_new_tokens, num_beams)"
            )
        low, high = _DEFAULT_KEYS[key]
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            raise ManifestError(path, f"field 'defaults.{key}' must be an integer from {low} to {high}, got {value!r}")
    return CaptionerManifest(
        name=name,
        model_class=data["model_class"],
        folder=(path.parent / data["folder"]).resolve(),
        files=files_parse(data["files"], path=path),
        license=data["license"],
        path=path,
        defaults=MappingProxyType(dict(defaults)),
        prompt=data.get("prompt", "") or "",
        notes=data.get("notes", "") or "",
        source=data.get("source", "") or "",
    )


def captioner_verify(manifest: CaptionerManifest) -> None:
    """Hash every pinned file; raise ModelIntegrityError for the first missing or differing one."""
    files_verify(name=manifest.name, manifest_path=manifest.path, folder=manifest.folder, files=manifest.files)


def captioner_pin(
    name: str,
    folder: Path,
    *,
    model_class: str,
    license_name: str,
    manifests_dir: Path | None = None,
    defaults: Mapping[str, int] | None = None,
    prompt: str = "",
    notes: str = "",
    source: str = "",
) -> CaptionerManifest:
    """Hash ``folder`` and write ``captioners/<name>.yaml``; returns the manifest as loaded back."""
    if not NAME_RE.match(name):
        raise ManifestError(Path(f"{name}.yaml"), f"field 'name' {name!r} must be lowercase letters, digits, . _ -")
    directory = captioners_dir(manifests_dir)
    directory.mkdir(parents=True, exist_ok=True)
    folder = folder.resolve()
    files = folder_hashes(folder)
    data: dict[str, Any] = {
        "name": name,
        "model_class": model_class,
        "folder": os.path.relpath(folder, directory),
        "license": license_name,
        "source": source,
        "defaults": dict(defaults or {"max_new_tokens": 30, "num_beams": 1}),
        "prompt": prompt,
        "notes": notes,
        "files": dict(sorted(files.items())),
    }
    header = "# Written by `python -m models.captioner pin`; re-pin, do not edit.\n"
    (directory / f"{name}.yaml").write_text(header + yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return captioner_manifest_load(name, manifests_dir=manifests_dir)


class Captioner:
    """A loaded captioning model: ``captions(images)`` returns one caption per image (batched)."""

    def __init__(self, manifest: CaptionerManifest, *, device: str | None = None) -> None:
        os.environ["HF_HUB_OFFLINE"] = "1"
        os.environ["TRANSFORMERS_OFFLINE"] = "1"
        import torch
        import transformers

        captioner_verify(manifest)
        self.manifest = manifest
        self.device = device or os.environ.get("GREENLIGHT_DEVICE") or ("cuda" if torch.cuda.is_available() else "cpu")
        dtype = torch.float16 if self.device.startswith("cuda") else torch.float32
        model_cls = getattr(transformers, manifest.model_class)
        self.model = model_cls.from_pretrained(manifest.folder, local_files_only=True, torch_dtype=dtype)
        self.model.to(self.device).eval()
        self.image_processor = transformers.AutoImageProcessor.from_pretrained(manifest.folder, local_files_only=True)
        self.tokenizer = transformers.AutoTokenizer.from_pretrained(manifest.folder, local_files_only=True)
        self.dtype = dtype

    def captions(self, images: Sequence[Any]) -> list[str]:
        """Greedy or beam-search captions (the manifest's defaults), one per image, stripped."""
        import torch

        if not images:
            return []
        pixels = self.image_processor(images=[image.convert("RGB") for image in images], return_tensors="pt")
        arguments: dict[str, Any] = {
            "pixel_values": pixels.pixel_values.to(self.device, self.dtype),
            "max_new_tokens": self.manifest.max_new_tokens,
            "num_beams": self.manifest.num_beams,
            "do_sample": False,
        }
        if self.manifest.prompt:
            prompt = self.tokenizer([self.manifest.prompt] * len(images), return_tensors="pt")
            arguments["input_ids"] = prompt.input_ids.to(self.device)
        with torch.inference_mode():
            output = self.model.generate(**arguments)
        texts = self.tokenizer.batch_decode(output, skip_special_tokens=True)
        return [" ".join(text.split()) for text in texts]


_LOADED: dict[tuple[str, Path], Captioner] = {}
_LOCK = threading.Lock()


def captioner_load(name: str, *, manifests_dir: Path | None = None) -> Captioner:
    """The captioner ``name``, verified and loaded once per process."""
    manifest = captioner_manifest_load(name, manifests_dir=manifests_dir)
    with _LOCK:
        key = (name, manifest.path)
        if key not in _LOADED:
            _LOADED[key] = Captioner(manifest)
        return _LOADED[key]


def alt_text_compose(description: str, caption: str) -> str:
    """The template's description, then what the captioning model saw (when it saw anything)."""
    caption = caption.strip()
    if not caption:
        return description
    sentence = caption[:1].upper() + caption[1:]
    if not sentence.endswith((".", "!", "?")):
        sentence += "."
    return f"{description.rstrip('.')}. {sentence}"


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m models.captioner pin NAME FOLDER --class CLASS --license LICENSE``."""
    parser = argparse.ArgumentParser(description="Pin a captioning model folder for alt text.")
    sub = parser.add_subparsers(dest="command", required=True)
    pin = sub.add_parser("pin", help="hash a folder and write models/manifests/captioners/NAME.yaml")
    pin.add_argument("name")
    pin.add_argument("folder", type=Path)
    pin.add_argument("--class", dest="model_class", required=True, choices=CAPTIONER_CLASSES)
    pin.add_argument("--license", dest="license_name", required=True)
    pin.add_argument("--source", default="")
    pin.add_argument("--prompt", default="")
    pin.add_argument("--max-new-tokens", type=int, default=30)
    pin.add_argument("--num-beams", type=int, default=1)
    args = parser.parse_args(argv)
    manifest = captioner_pin(
        args.name,
        args.folder,
        model_class=args.model_class,
        license_name=args.license_name,
        source=args.source,
        prompt=args.prompt,
        defaults={"max_new_tokens": args.max_new_tokens, "num_beams": args.num_beams},
    )
    print(f"{manifest.path}: {len(manifest.files)} files pinned")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
