"""An image safety classifier, pinned by a manifest like the adapters are, loaded once per worker.

A safety classifier is a ``transformers`` image-classification folder (``save_pretrained`` of
the model and its image processor) pinned in ``models/manifests/adapters/<name>.yaml`` with
``kind: safety`` and ``family: image-classification``::

    python -m models.adapters pin nsfw-check path/to/folder --kind safety \\
        --family image-classification --license apache-2.0 --weight-name model.safetensors

Its labels (``config.id2label``) must include at least one of ``UNSAFE_LABELS``; an image's score
is the probability the classifier gives those labels together, from 0 (safe) to 1. A template
names it with a threshold (``safety: {name: nsfw-check, threshold: 0.5}``); an image scoring at or
above it is flagged for review. Nothing is downloaded.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from models.adapters import AdapterManifest, adapter_manifest_load, adapter_verify
from models.errors import ManifestError

logger = logging.getLogger("greenlight.models")

UNSAFE_LABELS = ("nsfw", "unsafe", "explicit", "porn", "hentai", "sexy")


@dataclass(frozen=True)
class SafetyClassifier:
    """A loaded classifier and the indices of its unsafe labels."""

    manifest: AdapterManifest
    model: Any
    processor: Any
    unsafe: tuple[int, ...]

    def scores(self, images: Sequence[Image.Image]) -> list[float]:
        """Each image's unsafe probability, in one batch (0 for none)."""
        if not images:
            return []
        import torch

        inputs = self.processor(images=[image.convert("RGB") for image in images], return_tensors="pt")
        with _LOCK, torch.inference_mode():
            logits = self.model(**inputs).logits.float()
        probabilities = logits.softmax(dim=-1)[:, list(self.unsafe)].sum(dim=-1)
        return [round(float(p), 6) for p in probabilities]


_LOCK = threading.Lock()
_LOADED: dict[tuple[str, Path], SafetyClassifier] = {}


def safety_classifier_load(name: str, *, manifests_dir: Path, pinned: str | None = None) -> SafetyClassifier:
    """The classifier ``name`` (beside the model manifests), verified and loaded once per process;
    ``pinned`` refuses a manifest whose hash changed since the template version was loaded."""
    manifest = adapter_manifest_load(name, manifests_dir=manifests_dir)
    if manifest.kind != "safety":
        raise ManifestError(manifest.path, f"field 'kind' is {manifest.kind!r}; a safety classifier is kind 'safety'")
    if pinned is not None and manifest.manifest_hash != pinned:
        raise ManifestError(
            manifest.path,
            f"manifest hash is {manifest.manifest_hash[:12]}… but the template version was loaded with "
            f"{pinned[:12]}…; load a new template version for the new classifier",
        )
    key = (manifest.manifest_hash, manifest.folder)
    with _LOCK:
        loaded = _LOADED.get(key)
        if loaded is None:
            loaded = _classifier_build(manifest)
            _LOADED[key] = loaded
            logger.info("loaded safety classifier %s", manifest.name)
        return loaded


def _classifier_build(manifest: AdapterManifest) -> SafetyClassifier:
    adapter_verify(manifest)
    os.environ["HF_HUB_OFFLINE"] = "1"
    from transformers import AutoImageProcessor, AutoModelForImageClassification

    folder = str(manifest.folder)
    model = AutoModelForImageClassification.from_pretrained(folder, local_files_only=True).eval()
    processor = AutoImageProcessor.from_pretrained(folder, local_files_only=True)
    labels = {int(i): str(label).lower() for i, label in model.config.id2label.items()}
    unsafe = tuple(sorted(i for i, label in labels.items() if label in UNSAFE_LABELS))
    if not unsafe:
        raise ManifestError(
            manifest.path,
            f"classifier labels {sorted(labels.values())} name none of {', '.join(UNSAFE_LABELS)}: "
            "a safety classifier needs an unsafe label",
        )
    return SafetyClassifier(manifest=manifest, model=model, processor=processor, unsafe=unsafe)
