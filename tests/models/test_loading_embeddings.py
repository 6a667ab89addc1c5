"""Textual inversions loaded into a pipeline's text encoders (``models.loading.embeddings_apply``):
once per pipeline, under a token of their own hash; an SDXL embedding into both encoders; a file
shaped for another kind of model refused, naming its manifest."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import pytest

from models import MANIFESTS_DIR, ModelManifest
from models.adapters import AdapterManifest, adapter_pin
from models.errors import ManifestError
from models.loading import embedding_token, embeddings_apply, pipeline_load
from models.pin import manifest_pin
from tests.models import tiny_pipelines


@pytest.fixture(scope="module")
def sdxl(tmp_path_factory: pytest.TempPathFactory) -> ModelManifest:
    """A tiny random SDXL of its own (two CLIP text encoders), pinned."""
    root = tmp_path_factory.mktemp("sdxl-embeddings")
    folder = tiny_pipelines.pipeline_save(tiny_pipelines.stable_diffusion_xl_build(), root / "tiny-sdxl")
    return manifest_pin(MANIFESTS_DIR / "templates" / "sdxl-turbo.yaml", folder, name="tiny-sdxl", manifests_dir=root)


def _embedding(tmp_path: Path, name: str, family: str, **shape: object) -> AdapterManifest:
    folder = tiny_pipelines.tiny_embedding_save(tmp_path / "weights" / name, **shape)  # type: ignore[arg-type]
    return adapter_pin(name, folder, family=family, kind="textual-inversion", license_name="x", manifests_dir=tmp_path)


def _image(manifest: ModelManifest, prompt: str) -> bytes:
    """The pipeline's own call, as it reads a prompt (diffusers spells a multi-vector token out)."""
    import torch

    pipe = cast(Any, pipeline_load(manifest, device="cpu"))
    result = pipe(
        prompt=prompt,
        num_inference_steps=2,
        guidance_scale=3.0,
        width=64,
        height=64,
        generator=torch.Generator().manual_seed(3),
        output_type="np",
    )
    return bytes(result.images[0].tobytes())


def test_an_sdxl_embedding_loads_into_both_text_encoders_once(sdxl: ModelManifest, tmp_path: Path) -> None:
    pipe = cast(Any, pipeline_load(sdxl, device="cpu"))
    embedding = _embedding(tmp_path, "xl-style", "stable-diffusion-xl", seed=4, sdxl=True)
    before = _image(sdxl, "a red mug")
    tokens = embeddings_apply(pipe, [embedding])
    token = tokens["xl-style"]
    assert token == embedding_token(embedding)
    for tokenizer in (pipe.tokenizer, pipe.tokenizer_2):  # two vectors: the token and token_1, in each
        assert {token, f"{token}_1"} <= set(tokenizer.get_vocab())
    assert embeddings_apply(pipe, [embedding]) == tokens  # loaded once: the second call finds it
    assert _image(sdxl, "a red mug") == before  # a prompt without the token is drawn as before
    assert _image(sdxl, f"a red mug {token}") != before


def test_an_embedding_shaped_for_the_other_family_is_refused(sdxl: ModelManifest, tmp_path: Path) -> None:
    one_encoder = _embedding(tmp_path, "sd-style", "stable-diffusion-xl", seed=5)
    with pytest.raises(ManifestError, match=r"sd-style.yaml: .* holds <brand-style>; .* holds clip_l and clip_g"):
        embeddings_apply(pipeline_load(sdxl, device="cpu"), [one_encoder])
    sd_dir = tmp_path / "sd"
    folder = tiny_pipelines.pipeline_save(tiny_pipelines.stable_diffusion_build(), sd_dir / "tiny-sd")
    sd = manifest_pin(MANIFESTS_DIR / "templates" / "sd-turbo.yaml", folder, name="tiny-sd", manifests_dir=sd_dir)
    two_encoders = _embedding(tmp_path, "xl-only", "stable-diffusion", seed=6, sdxl=True)
    with pytest.raises(ManifestError, match=r"xl-only.yaml: .* holds clip_g, clip_l; .* holds one tensor"):
        embeddings_apply(pipeline_load(sd, device="cpu"), [two_encoders])


def test_a_lora_is_not_loaded_as_an_embedding(sdxl: ModelManifest, tmp_path: Path) -> None:
    folder = tiny_pipelines.tiny_embedding_save(tmp_path / "weights" / "x", seed=7, sdxl=True)
    lora = adapter_pin(
        "x",
        folder,
        family="stable-diffusion-xl",
        license_name="x",
        weight_name="learned_embeds.safetensors",
        manifests_dir=tmp_path,
    )
    with pytest.raises(ManifestError, match="field 'kind' is 'lora'; an embedding is kind 'textual-inversion'"):
        embeddings_apply(pipeline_load(sdxl, device="cpu"), [lora])
