"""Load a manifest's pipeline offline, once per process and device, on the plan ``models.device`` makes.

``pipeline_load`` refuses everything it can before touching a GPU (the pipeline class, an unpinned
template, the folder's class, the sha256 pins), then loads the pipeline with the hub switched off,
moves it to the chosen device and switches on the memory savers. The result is kept per process:
later calls for the same pins, folder, device and dtype return the same object.
"""

from __future__ import annotations

import logging
import os
import threading
import warnings
import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from models.adapters import TEXTUAL_INVERSION, AdapterManifest, adapter_verify
from models.device import PipelineSetup, device_choose, pipeline_prepare
from models.errors import ManifestError, SchedulerError, display_path
from models.integrity import manifest_pins_check, manifest_verify, model_index_check
from models.manifest import ModelManifest
from models.schedulers import DEFAULT, SCHEDULERS, scheduler_unsuited

if TYPE_CHECKING:
    from diffusers import DiffusionPipeline

logger = logging.getLogger("greenlight.models")


@contextmanager
def _loading_quietly() -> Iterator[None]:
    """Hide diffusers' and transformers' per-component loading bars and notices, then restore them.

    A worker's log should show its own progress; the settings are process-wide, hence the restore.
    """
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    saved = [
        (lib, lib.is_progress_bar_enabled(), lib.get_verbosity()) for lib in (diffusers_logging, transformers_logging)
    ]
    for lib, _, _ in saved:
        lib.disable_progress_bar()
        lib.set_verbosity_error()
    try:
        yield
    finally:
        for lib, bars_on, verbosity in saved:
            if bars_on:
                lib.enable_progress_bar()
            lib.set_verbosity(verbosity)


_PIPELINES: dict[tuple[str, Path, str, str], tuple[DiffusionPipeline, PipelineSetup]] = {}
_PIPELINES_LOCK = threading.Lock()


def pipeline_cache_clear() -> None:
    """Forget every pipeline loaded in this process (for tests)."""
    with _PIPELINES_LOCK:
        _PIPELINES.clear()


def pipeline_forget(manifest: ModelManifest) -> int:
    """Drop every pipeline of ``manifest`` this process holds (on any device), so its memory can be
    freed; returns how many were dropped. A later ``pipeline_load`` loads it again."""
    with _PIPELINES_LOCK:
        keys = [key for key in _PIPELINES if key[0] == manifest.manifest_hash and key[1] == manifest.folder]
        for key in keys:
            del _PIPELINES[key]
    return len(keys)


def pipeline_load(manifest: ModelManifest, *, device: str | None = None) -> DiffusionPipeline:
    """Verify and load ``manifest``'s pipeline offline; later calls return the same object.

    ``device`` (else the ``GREENLIGHT_DEVICE`` environment variable, else CUDA when available, else
    CPU) and the dtype are chosen by ``models.device.device_choose``; memory savers are switched on
    as the manifest and output size call for. The files are hashed once, when the pipeline is first
    loaded in this process for that device.
    """
    return _pipeline_entry(manifest, device=device)[0]


def pipeline_setup(manifest: ModelManifest, *, device: str | None = None) -> PipelineSetup:
    """How ``manifest``'s pipeline was set up for ``device`` (dtype, savers, attention), loading it
    first if this process has not."""
    return _pipeline_entry(manifest, device=device)[1]


def _pipeline_entry(manifest: ModelManifest, *, device: str | None) -> tuple[DiffusionPipeline, PipelineSetup]:
    # Before diffusers/huggingface_hub are imported: they read these once, at import.
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    import diffusers

    # 1. Everything that can be refused without touching a GPU: the plan, the class, the files.
    plan = device_choose(manifest, device)
    # The folder is part of the key: another copy with the same pins is verified on its own.
    key = (manifest.manifest_hash, manifest.folder, plan.device, plan.dtype)
    with _PIPELINES_LOCK:
        if key in _PIPELINES:
            return _PIPELINES[key]
        pipeline_cls = getattr(diffusers, manifest.pipeline_class, None)
        if not isinstance(pipeline_cls, type) or not issubclass(pipeline_cls, diffusers.DiffusionPipeline):
            raise ManifestError(
                manifest.path,
                f"field 'pipeline_class' is {manifest.pipeline_class!r}, not a diffusers pipeline",
            )
        manifest_pins_check(manifest)
        model_index_check(
            manifest.folder, pipeline_class=manifest.pipeline_class, what=f"manifest {display_path(manifest.path)}"
        )
        manifest_verify(manifest)
        # 2. Load on the CPU side, offline, in the chosen dtype.
        extra: dict[str, Any] = dict(manifest.load_options)
        if manifest.variant is not None:
            extra["variant"] = manifest.variant
        with _loading_quietly(), warnings.catch_warnings():
            # `torch_dtype` is accepted by every diffusers we allow (>=0.35); `dtype` only by the
            # newest (diffusers PR #14205), which deprecates the old name with a FutureWarning.
            warnings.filterwarnings("ignore", message=".*torch_dtype.*", category=FutureWarning)
            pipe = pipeline_cls.from_pretrained(
                manifest.folder,
                torch_dtype=plan.torch_dtype_argument(),
                local_files_only=True,
                use_safetensors=True,
                **extra,
            )
        # 3. Move to the device (or offload), switch memory savers on, check the attention kernel.
        setup = pipeline_prepare(pipe, manifest, plan)
        pipe.set_progress_bar_config(disable=True)
        logger.info("loaded model %s: %s", manifest.name, "; ".join(setup.lines()))
        _PIPELINES[key] = (pipe, setup)
        return pipe, setup


def scheduler_build(name: str, model_scheduler: Any) -> Any:
    """A new scheduler ``name`` configured from ``model_scheduler``'s config; the model's own for "".

    Raises ``SchedulerError`` for a sampler that does not suit the model's schedule (callers check
    requests with ``scheduler_unsuited`` first, to refuse them before any model work).
    """
    if name == DEFAULT:
        return model_scheduler
    problem = scheduler_unsuited(name, model_scheduler.config)
    if problem:
        raise SchedulerError(name=name, problem=problem)
    import diffusers

    class_name, settings = SCHEDULERS[name]
    cls = getattr(diffusers, class_name)
    config = model_scheduler.config
    # from_config treats values the model's scheduler took by default as unset and may fall back to
    # the new class's own default; the spacing decides where sampling starts, so it is carried over.
    carried = {"timestep_spacing": config["timestep_spacing"]} if "timestep_spacing" in config else {}
    return cls.from_config(config, **carried, **dict(settings))


_ADAPTERS: weakref.WeakKeyDictionary[Any, set[str]] = weakref.WeakKeyDictionary()
_ADAPTERS_LOCK = threading.Lock()


def adapter_key(manifest: AdapterManifest) -> str:
    """The name an adapter is loaded under in a pipeline: its weights' hash, so new weights under
    an old name load anew (and the name suits peft, which forbids dots)."""
    return f"a{manifest.manifest_hash[:20]}"


def adapters_apply(pipe: Any, adapters: Sequence[tuple[AdapterManifest, float]]) -> None:
    """Make ``pipe`` (and the pipelines derived from it, which share its modules) draw with exactly
    ``adapters`` at their scales; no adapters switches every loaded one off.

    Each adapter is verified against its manifest and loaded once per pipeline in this process;
    later batches only set the scales. A batch is one pipeline call, so set it before the call.
    """
    with _ADAPTERS_LOCK:
        loaded = _ADAPTERS.setdefault(pipe, set())
        for manifest, _ in adapters:
            key = adapter_key(manifest)
            if key in loaded:
                continue
            adapter_verify(manifest)
            with _loading_quietly():
                pipe.load_lora_weights(str(manifest.folder), weight_name=manifest.weight_name, adapter_name=key)
            loaded.add(key)
            logger.info("loaded adapter %s (%s) into model pipeline", manifest.name, key)
        if adapters:
            pipe.enable_lora()
            _adapters_activate(pipe, [(adapter_key(m), scale) for m, scale in adapters])
        elif loaded:
            pipe.disable_lora()


def _adapters_activate(pipe: Any, chosen: Sequence[tuple[str, float]]) -> None:
    """Activate ``chosen`` adapters at their scales in each component that holds them.

    What ``pipe.set_adapters`` does, less its per-block scale expansion, which fails on a UNet with
    a different number of layers per block (the embedded model's (1, 2, 1)); one scale per adapter
    needs none of it.
    """
    from diffusers.utils.peft_utils import set_weights_and_activate_adapters

    for name in ("unet", "transformer", "text_encoder", "text_encoder_2"):
        component = getattr(pipe, name, None)
        present = getattr(component, "peft_config", None) or {}
        here = [(key, scale) for key, scale in chosen if key in present]
        if here:
            set_weights_and_activate_adapters(component, [key for key, _ in here], [scale for _, scale in here])


_EMBEDDINGS: weakref.WeakKeyDictionary[Any, set[str]] = weakref.WeakKeyDictionary()
# The two vector sets of an SDXL embedding, by the encoder each belongs to.
_SDXL_EMBEDDING_KEYS = {"clip_l": ("text_encoder", "tokenizer"), "clip_g": ("text_encoder_2", "tokenizer_2")}


def embedding_token(manifest: AdapterManifest) -> str:
    """The token an embedding is loaded under in a pipeline: its weights' hash, so new weights
    under an old name load anew, and no prompt that does not name the embedding can reach it
    (the template's own token is rewritten to this one for the batches that name it)."""
    return f"<gl-ti-{manifest.manifest_hash[:20]}>"


def embeddings_apply(pipe: Any, embeddings: Sequence[AdapterManifest]) -> dict[str, str]:
    """Load each textual inversion into ``pipe``'s tokenizer(s) and text encoder(s), once per
    pipeline in this process (the pipelines derived from it share them); returns each
    embedding's name -> the token it was loaded under (``embedding_token``).

    Each is verified against its manifest before it is read. A Stable Diffusion embedding is one
    tensor (diffusers' ``{token: vectors}`` or A1111's ``string_to_param``); an SDXL one holds
    ``clip_l`` and ``clip_g``, one per text encoder. A file that does not fit the model (vector
    width, the encoders it names) is refused naming its manifest.
    """
    loaded_tokens: dict[str, str] = {}
    with _ADAPTERS_LOCK:
        loaded = _EMBEDDINGS.setdefault(pipe, set())
        for manifest in embeddings:
            if manifest.kind != TEXTUAL_INVERSION:
                raise ManifestError(
                    manifest.path, f"field 'kind' is {manifest.kind!r}; an embedding is kind {TEXTUAL_INVERSION!r}"
                )
            token = embedding_token(manifest)
            loaded_tokens[manifest.name] = token
            if token in loaded:
                continue
            adapter_verify(manifest)
            _embedding_load(pipe, manifest, token)
            loaded.add(token)
            logger.info("loaded textual inversion %s (%s) into model pipeline", manifest.name, token)
    return loaded_tokens


def _embedding_load(pipe: Any, manifest: AdapterManifest, token: str) -> None:
    """Check that every vector set of the file fits its text encoder, then load them all."""
    from safetensors.torch import load_file

    state = load_file(str(manifest.folder / manifest.weight_name))
    two_encoders = getattr(pipe, "text_encoder_2", None) is not None
    holds = ", ".join(sorted(state)) or "nothing"
    if two_encoders and set(state) != set(_SDXL_EMBEDDING_KEYS):
        raise ManifestError(
            manifest.path,
            f"{manifest.weight_name} holds {holds}; an embedding for a model with two text encoders (SDXL) "
            "holds clip_l and clip_g, one per encoder",
        )
    if not two_encoders and len(state) != 1:
        raise ManifestError(
            manifest.path, f"{manifest.weight_name} holds {holds}; an embedding for this model holds one tensor"
        )
    parts = (
        [(state[key], *attributes) for key, attributes in _SDXL_EMBEDDING_KEYS.items()]
        if two_encoders
        else [(next(iter(state.values())), "text_encoder", "tokenizer")]
    )
    for vectors, encoder, _ in parts:
        width = int(getattr(pipe, encoder).get_input_embeddings().weight.shape[-1])
        if vectors.ndim not in (1, 2) or vectors.shape[-1] != width:
            raise ManifestError(
                manifest.path,
                f"{manifest.weight_name} has vectors of shape {tuple(vectors.shape)}; the model's {encoder} "
                f"takes {width}-wide token vectors",
            )
    for vectors, encoder, tokenizer in parts:
        with _loading_quietly():
            pipe.load_textual_inversion(
                vectors, token=token, text_encoder=getattr(pipe, encoder), tokenizer=getattr(pipe, tokenizer)
            )


_CONTROLNETS: dict[tuple[str, Path, str, str], Any] = {}


def controlnet_load(manifest: AdapterManifest, *, pipe: Any) -> Any:
    """A pinned ControlNet, verified and loaded once per process for ``pipe``'s device and dtype."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    import diffusers

    if manifest.kind != "controlnet":
        raise ManifestError(manifest.path, f"field 'kind' is {manifest.kind!r}; a ControlNet is kind 'controlnet'")
    device, dtype = _execution_device(pipe), pipe.unet.dtype
    key = (manifest.manifest_hash, manifest.folder, str(device), str(dtype))
    with _ADAPTERS_LOCK:
        if key not in _CONTROLNETS:
            adapter_verify(manifest)
            with _loading_quietly():
                model = diffusers.ControlNetModel.from_pretrained(
                    manifest.folder, torch_dtype=dtype, local_files_only=True, use_safetensors=True
                )
            _CONTROLNETS[key] = model.to(device).eval()
            logger.info("loaded ControlNet %s", manifest.name)
        return _CONTROLNETS[key]


def _execution_device(pipe: Any) -> Any:
    return getattr(pipe, "_execution_device", None) or pipe.device
