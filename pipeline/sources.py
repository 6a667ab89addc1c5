"""What a variant draws with besides its prompt: its source photo and mask, its brand adapters
(LoRA and textual inversions) and its ControlNet, each loaded as its version pinned it; and the
photo's credit in the signed file.

Inpainting keeps the photo's own pixels where the mask is black: the photo is a ``componentOf``
ingredient. Image-to-image redraws all of it from the photo, and image-to-video animates it: an
``inputTo`` ingredient. A mask file is an ``inputTo`` ingredient too; a mask made from the photo's
transparency is the photo's.
"""

from __future__ import annotations

import io
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from PIL import Image, ImageOps

from models import ModelManifest
from models.adapters import TEXTUAL_INVERSION, AdapterManifest, adapter_manifest_load
from models.families import TEXTUAL_INVERSION_FAMILIES
from models.loading import controlnet_load
from pipeline.errors import GenerationError, GenerationInputError
from prompt_library.errors import SourceImageError
from prompt_library.sources import ALPHA_MASK, mask_from_alpha, source_image_load
from prompt_library.specs import Variant
from provenance.credentials import Ingredient

RELATIONSHIPS = {"inpainting": "componentOf", "image-to-image": "inputTo", "image-to-video": "inputTo"}


def source_ingredients(variant: Variant) -> tuple[Ingredient, ...]:
    """The C2PA ingredients of ``variant``'s master: none without a source photo. The sources were
    read as the batch was generated (``source_image_load`` keeps them), so the signing thread
    does not go back to the database."""
    if not variant.source_image:
        return ()
    photo = source_image_load(sha256=variant.source_image)
    # A ControlNet's photo (text-to-image) gave the structure: an input, like image-to-image's.
    relationship = RELATIONSHIPS.get(variant.mode, "inputTo")
    made = [Ingredient(data=photo.data, mime=photo.mime, title=photo.name, relationship=relationship)]
    if variant.mask and variant.mask != ALPHA_MASK:
        mask = source_image_load(sha256=variant.mask, field="mask")
        made.append(Ingredient(data=mask.data, mime=mask.mime, title=mask.name, relationship="inputTo"))
    return tuple(made)


def canny_edges(image: Image.Image, *, low: int = 100, high: int = 200) -> Image.Image:
    """A ControlNet's canny conditioning: the photo's edges, white on black, as RGB."""
    import cv2
    import numpy as np

    edges = cv2.Canny(np.asarray(image.convert("L")), low, high)
    return Image.fromarray(edges).convert("RGB")


@dataclass(frozen=True)
class SourceInput:
    """A variant's source photo and mask at the output's size: the photo on white where it is
    transparent, and the mask (white: repaint, black: keep; None for image-to-image)."""

    photo: Image.Image
    mask: Image.Image | None


def variant_sources(variant: Variant) -> SourceInput | None:
    """The stored source image (and mask) ``variant`` draws from, fitted to its output size
    (cropped at the centre, never stretched); None for text-to-image."""
    if not variant.source_image:
        return None
    size = (variant.output.width, variant.output.height)
    try:
        photo = _decoded(source_image_load(sha256=variant.source_image).data)
        photo = ImageOps.fit(photo.convert("RGBA"), size, Image.Resampling.LANCZOS)
        mask: Image.Image | None = None
        if variant.mask == ALPHA_MASK:
            mask = mask_from_alpha(photo)
        elif variant.mask:
            stored = _decoded(source_image_load(sha256=variant.mask, field="mask").data)
            mask = ImageOps.fit(stored.convert("L"), size, Image.Resampling.NEAREST)
    except SourceImageError as exc:
        raise GenerationInputError(exc.field, exc.value, exc.problem, variant_key=variant.key) from exc
    backdrop = Image.new("RGBA", size, (255, 255, 255, 255))
    return SourceInput(photo=Image.alpha_composite(backdrop, photo).convert("RGB"), mask=mask)


def variant_source_photo(variant: Variant) -> Image.Image | None:
    """The stored source photo ``variant`` animates (image-to-video), whole and as uploaded, on
    white where it is transparent; the video engine fits it to the size the model draws. None
    without a source."""
    if not variant.source_image:
        return None
    try:
        photo = _decoded(source_image_load(sha256=variant.source_image).data).convert("RGBA")
    except SourceImageError as exc:
        raise GenerationInputError(exc.field, exc.value, exc.problem, variant_key=variant.key) from exc
    backdrop = Image.new("RGBA", photo.size, (255, 255, 255, 255))
    return Image.alpha_composite(backdrop, photo).convert("RGB")


def _decoded(data: bytes) -> Image.Image:
    """A stored source image (checked as an image when it was stored), decoded."""
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def variant_adapters(manifest: ModelManifest, variant: Variant) -> list[tuple[AdapterManifest, float]]:
    """The adapter manifests (beside the model's) and scales ``variant`` draws with, each still
    pinned to the weights its version was loaded with."""
    adapters = []
    for name, pinned, scale in variant.params.adapters:
        adapter = adapter_manifest_load(name, manifests_dir=manifest.path.parent)
        if adapter.manifest_hash != pinned:
            raise GenerationError(
                f"adapter '{name}' has manifest hash {adapter.manifest_hash[:12]}… but template "
                f"'{variant.template}' v{variant.template_version} was loaded with {pinned[:12]}…; "
                "load a new template version for the new weights",
                variant_key=variant.key,
            )
        adapters.append((adapter, scale))
    return adapters


def variant_embeddings(manifest: ModelManifest, variant: Variant) -> list[AdapterManifest]:
    """The textual inversion manifests (beside the model's) ``variant`` draws with, each still
    pinned to the embedding its version was loaded with, for a family whose text encoder takes them."""
    if not variant.params.embeddings:
        return []
    if manifest.family not in TEXTUAL_INVERSION_FAMILIES:
        raise GenerationError(
            f"model '{manifest.name}' ({manifest.family}) has no text encoder that takes textual inversions "
            f"(families that do: {', '.join(TEXTUAL_INVERSION_FAMILIES)})",
            variant_key=variant.key,
        )
    embeddings = []
    for name, pinned, _ in variant.params.embeddings:
        embedding = adapter_manifest_load(name, manifests_dir=manifest.path.parent)
        if embedding.manifest_hash != pinned or embedding.kind != TEXTUAL_INVERSION:
            raise GenerationError(
                f"embedding '{name}' has manifest hash {embedding.manifest_hash[:12]}… ({embedding.kind}) but "
                f"template '{variant.template}' v{variant.template_version} was loaded with {pinned[:12]}…; "
                "load a new template version for the new embedding",
                variant_key=variant.key,
            )
        embeddings.append(embedding)
    return embeddings


def tokens_substitute(text: str, tokens: Mapping[str, str]) -> str:
    """``text`` with each template token (``tokens``: template token -> loaded token) replaced
    where it stands as a word of its own, so ``<brand>`` is replaced and ``<brand>s`` is not."""
    for token, loaded in tokens.items():
        text = re.sub(rf"(?<![\w<>-]){re.escape(token)}(?![\w<>-])", loaded.replace("\\", r"\\"), text)
    return text


def variant_tokens(variant: Variant, loaded: Mapping[str, str]) -> dict[str, str]:
    """The template's tokens mapped to the tokens their embeddings were loaded under
    (``loaded``: embedding name -> loaded token, from ``models.loading.embeddings_apply``)."""
    return {token: loaded[name] for name, _, token in variant.params.embeddings}


def variant_controlnet(manifest: ModelManifest, variant: Variant, pipe: Any) -> Any:
    """The loaded ControlNet ``variant`` draws with (beside the model's manifests, still pinned as
    its version was loaded), or None."""
    if not variant.params.controlnet:
        return None
    name, pinned, _, _ = variant.params.controlnet
    control = adapter_manifest_load(name, manifests_dir=manifest.path.parent)
    if control.manifest_hash != pinned:
        raise GenerationError(
            f"controlnet '{name}' has manifest hash {control.manifest_hash[:12]}… but template "
            f"'{variant.template}' v{variant.template_version} was loaded with {pinned[:12]}…",
            variant_key=variant.key,
        )
    return controlnet_load(control, pipe=pipe)
