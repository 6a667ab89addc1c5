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

from models.errors import ManifestError
from models.integrity import files_verify
from models.pin import folder_hashes
from models.pinned import pinned_dir, pinned_known, pinned_read, pinned_write
from models.registry import files_parse

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
    return pinned_dir(CAPTIONERS_SUBDIR, manifests_dir)


def captioners_known(*, manifests_dir: Path | None = None) -> list[str]:
    return pinned_known(CAPTIONERS_SUBDIR, manifests_dir)


def captioner_manifest_load(name: str, *, manifests_dir: Path | None = None) -> CaptionerManifest:
    """Read and check ``captioners/<name>.yaml``; every problem names the file and the field."""
    path, data = pinned_read(
        name,
        subdir=CAPTIONERS_SUBDIR,
        kind="captioner",
        fields=_FIELDS,
        required=_REQUIRED,
        text_fields=("name", "model_class", "folder", "license", "prompt", "notes", "source"),
        manifests_dir=manifests_dir,
    )
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
    folder = folder.resolve()
    data: dict[str, Any] = {
        "name": name,
        "model_class": model_class,
        "folder": os.path.relpath(folder, captioners_dir(manifests_dir)),
        "license": license_name,
        "source": source,
        "defaults": dict(defaults or {"max_new_tokens": 30, "num_beams": 1}),
        "prompt": prompt,
        "notes": notes,
        "files": dict(sorted(folder_hashes(folder).items())),
    }
    pinned_write(
        name, data, subdir=CAPTIONERS_SUBDIR, command="python -m models.captioner pin", manifests_dir=manifests_dir
    )
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
