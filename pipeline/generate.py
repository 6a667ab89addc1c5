"""The generation engine: one batched call to a loaded diffusers pipeline per batch of images.

Modes: text-to-image, image-to-image (an init image and a ``strength``) and inpainting (an init
image and a mask: white is repainted; black is kept, the photo's own pixels put back), with
negative prompts, guidance, steps, a sampler chosen by name (``models.schedulers``) and the size
from the output spec; brand adapters (LoRA, and textual inversions whose template token is
rewritten to the token the embedding was loaded under) as the variant's version pinned them.
Prompt weighting takes the common syntax, ``(word:1.3)``, ``(word)`` (x1.1), ``[word]`` (/1.1)
and ``[word:0.5]`` (``prompt_library.weighting``): it is rewritten to compel's syntax and compel
builds the weighted embeddings (Stable Diffusion and SDXL families; other families refuse
weighted prompts rather than read the brackets as words).

Batching: a batch shares model and parameters (it is one pipeline call); every image gets its own
``torch.Generator`` seeded with its seed, and on a CPU the loaded model's layers are batch-invariant
(``models.batch_invariance``), so an image is bit for bit the same alone or in any batch.

Every request is checked before any model work (``request_check``), each refusal naming the field
and the value: an empty prompt, steps outside 1-500, a size the model cannot make, an init image
that is not an image, a mask of another size, an unknown mode or sampler, or a sampler that does
not suit the model's noise schedule.
"""

from __future__ import annotations

import inspect
import io
import logging
import os
import threading
import weakref
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeGuard

import cv2
import numpy as np
import torch
from PIL import Image, ImageFilter, ImageOps, UnidentifiedImageError

from models import DEFAULT_SCHEDULER, SCHEDULERS, ModelManifest, scheduler_names, scheduler_refusal
from models.adapters import CONTROLNET_FAMILIES
from models.loading import adapters_apply, embeddings_apply, scheduler_build
from models.upscaling import images_upscale, upscaler_load, upscaler_manifest_load
from pipeline.errors import GenerationError, GenerationInputError
from pipeline.sources import (
    SourceInput,
    canny_edges,
    tokens_substitute,
    variant_adapters,
    variant_controlnet,
    variant_embeddings,
    variant_sources,
    variant_tokens,
)
from prompt_library.specs import IMAGE_MODES, TEXT_TO_IMAGE, Variant
from prompt_library.weighting import compel_syntax, is_weighted

logger = logging.getLogger("greenlight.pipeline")

MAX_STEPS = 500
MAX_GUIDANCE = 50.0
_FEATHER = 1.0  # px of blur on the mask's edge when the kept pixels are put back
_COMPEL_FAMILIES = ("stable-diffusion", "stable-diffusion-xl")
_AUTO_PIPELINES = {
    "image-to-image": "AutoPipelineForImage2Image",
    "inpainting": "AutoPipelineForInpainting",
}

ImageInput = Image.Image | bytes | Path | str


@dataclass(frozen=True)
class ImageRequest:
    """One image to generate. ``init_image`` and ``mask`` may be images, encoded bytes or paths."""

    prompt: str
    seed: int
    steps: int
    guidance: float
    width: int
    height: int
    negative_prompt: str = ""
    mode: str = "text-to-image"
    strength: float = 0.75
    scheduler: str = DEFAULT_SCHEDULER
    init_image: ImageInput | None = field(default=None, compare=False)
    mask: ImageInput | None = field(default=None, compare=False)
    key: str | None = None  # the variant this request makes, for error messages
    # Structure control: a loaded ControlNetModel, its control image (canny edges, say) and scale.
    controlnet: Any = field(default=None, compare=False)
    control_image: ImageInput | None = field(default=None, compare=False)
    control_scale: float = 1.0

    def batch_signature(self) -> tuple[object, ...]:
        """What must be equal across one batch (one pipeline call)."""
        return (
            self.steps,
            self.guidance,
            self.width,
            self.height,
            self.mode,
            self.strength,
            self.scheduler,
            id(self.controlnet),
            self.control_scale,
        )


# --- checks --------------------------------------------------------------------------------


def request_check(manifest: ModelManifest, request: ImageRequest) -> tuple[Image.Image | None, Image.Image | None]:
    """Refuse a bad request before any model work; returns the decoded init image and mask."""
    key = request.key

    def refuse(name: str, value: object, problem: str) -> GenerationInputError:
        return GenerationInputError(name, value, problem, variant_key=key)

    if request.mode not in IMAGE_MODES:
        raise refuse("mode", request.mode, f"unknown mode for a still (known: {', '.join(IMAGE_MODES)})")
    prompts_check(manifest, prompt=request.prompt, negative_prompt=request.negative_prompt, variant_key=key)
    sampling_check(
        manifest,
        steps=request.steps,
        guidance=request.guidance,
        seed=request.seed,
        width=request.width,
        height=request.height,
        variant_key=key,
    )
    if request.scheduler != DEFAULT_SCHEDULER and request.scheduler not in SCHEDULERS:
        raise refuse("scheduler", request.scheduler, f"unknown sampler (known: {scheduler_names()})")
    refusal = scheduler_refusal(request.scheduler, manifest.scheduler_config, model_name=manifest.name)
    if refusal:
        raise refuse("scheduler", request.scheduler, refusal)
    if request.mode == "text-to-image":
        for name, value in (("init_image", request.init_image), ("mask", request.mask)):
            if value is not None:
                raise refuse(name, value, "only image-to-image and inpainting take it")
        return None, None
    if manifest.family not in _COMPEL_FAMILIES:
        raise refuse("mode", request.mode, f"the {manifest.family} family makes text-to-image only")
    if not is_number(request.strength) or not 0 < request.strength <= 1:
        raise refuse("strength", request.strength, "must be a number above 0 and at most 1")
    if request.init_image is None:
        raise refuse("init_image", None, f"{request.mode} needs an init image")
    init = image_open(request.init_image, field_name="init_image", variant_key=key).convert("RGB")
    if request.mode == "image-to-image":
        if request.mask is not None:
            raise refuse("mask", request.mask, "only inpainting takes a mask")
        return init, None
    if request.mask is None:
        raise refuse("mask", None, "inpainting needs a mask (white: repaint, black: keep)")
    mask = image_open(request.mask, field_name="mask", variant_key=key).convert("L")
    if mask.size != init.size:
        raise refuse("mask", mask, f"must be the init image's size, {init.width}x{init.height}")
    return init, mask


def prompts_check(manifest: ModelManifest, *, prompt: object, negative_prompt: object, variant_key: str | None) -> None:
    """A prompt is required and both are text; weighting only where compel serves the family."""
    if not isinstance(prompt, str) or not prompt.strip():
        raise GenerationInputError("prompt", prompt, "a prompt is required", variant_key=variant_key)
    if not isinstance(negative_prompt, str):
        raise GenerationInputError("negative_prompt", negative_prompt, "must be text", variant_key=variant_key)
    for name, text in (("prompt", prompt), ("negative_prompt", negative_prompt)):
        if _weighted(text) and manifest.family not in _COMPEL_FAMILIES:
            raise GenerationInputError(
                name,
                text,
                f"prompt weighting is not supported for the {manifest.family} family "
                f"(only {', '.join(_COMPEL_FAMILIES)})",
                variant_key=variant_key,
            )


def sampling_check(
    manifest: ModelManifest,
    *,
    steps: object,
    guidance: object,
    seed: object,
    width: object,
    height: object,
    variant_key: str | None = None,
) -> None:
    """What every request to a model needs, images and clips alike: steps from 1 to 500, guidance
    from 0 to 50, a non-negative integer seed, and a size the model can draw."""

    def refuse(name: str, value: object, problem: str) -> GenerationInputError:
        return GenerationInputError(name, value, problem, variant_key=variant_key)

    if not is_integer(steps) or not 1 <= steps <= MAX_STEPS:
        raise refuse("steps", steps, f"must be an integer from 1 to {MAX_STEPS}")
    if not is_number(guidance) or not 0 <= guidance <= MAX_GUIDANCE:
        raise refuse("guidance", guidance, f"must be a number from 0 to {MAX_GUIDANCE:g}")
    if not is_integer(seed) or seed < 0:
        raise refuse("seed", seed, "must be a non-negative integer")
    factor = manifest.size_multiple
    for name, side in (("width", width), ("height", height)):
        if not is_integer(side) or side < factor or side % factor:
            raise refuse(name, side, f"must be a positive multiple of {factor} for model '{manifest.name}'")


def image_open(value: ImageInput, *, field_name: str, variant_key: str | None = None) -> Image.Image:
    """Decode an image given as an image, bytes or a path, or refuse it naming the field."""
    if isinstance(value, Image.Image):
        return value
    try:
        if isinstance(value, bytes):
            image = Image.open(io.BytesIO(value))
        elif isinstance(value, str | Path):
            image = Image.open(Path(value))
        else:
            raise GenerationInputError(field_name, value, "must be an image, encoded bytes or a path")
        image.load()
    except FileNotFoundError as exc:
        raise GenerationInputError(field_name, value, "no such file", variant_key=variant_key) from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise GenerationInputError(
            field_name, value, f"is not a readable image ({type(exc).__name__})", variant_key=variant_key
        ) from exc
    return image


def is_integer(value: object) -> TypeGuard[int]:
    """An int that is not a bool (YAML and JSON give both)."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: object) -> TypeGuard[int | float]:
    """An int or float that is not a bool."""
    return isinstance(value, int | float) and not isinstance(value, bool)


# --- prompt weighting ------------------------------------------------------------------------


def _weighted(*prompts: str) -> bool:
    return is_weighted(*prompts)


_compel_cache: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def _compel_for(pipe: Any) -> Any:
    """compel for the pipeline's text encoder(s), built once per loaded pipeline.

    Prompts are truncated at the tokenizer's length, as the pipeline itself does, so every
    prompt's embedding has one length and does not depend on the others in its batch.
    """
    with _lock:
        built = _compel_cache.get(pipe)
        if built is None:
            from compel import Compel, ReturnedEmbeddingsType

            if getattr(pipe, "text_encoder_2", None) is not None:  # SDXL: two encoders, pooled from the second
                built = Compel(
                    tokenizer=[pipe.tokenizer, pipe.tokenizer_2],
                    text_encoder=[pipe.text_encoder, pipe.text_encoder_2],
                    returned_embeddings_type=ReturnedEmbeddingsType.PENULTIMATE_HIDDEN_STATES_NON_NORMALIZED,
                    requires_pooled=[False, True],
                    truncate_long_prompts=True,
                    device=str(_execution_device(pipe)),
                )
            else:
                built = Compel(
                    tokenizer=pipe.tokenizer,
                    text_encoder=pipe.text_encoder,
                    truncate_long_prompts=True,
                    device=str(_execution_device(pipe)),
                )
            _compel_cache[pipe] = built
        return built


def _execution_device(pipe: Any) -> Any:
    """Where the text encoder runs: with model CPU offload the pipeline sits on the CPU and
    executes on the GPU (diffusers' ``_execution_device``)."""
    return getattr(pipe, "_execution_device", None) or pipe.device


def prompt_arguments(pipe: Any, prompts: Sequence[str], negatives: Sequence[str], *, guided: bool) -> dict[str, Any]:
    """The prompt arguments of a pipeline call: text, or compel's embeddings when weighted (the
    family was checked by ``prompts_check``)."""
    prompts, negatives = list(prompts), list(negatives)
    if not _weighted(*prompts, *(negatives if guided else [])):
        return {"prompt": prompts, "negative_prompt": negatives if guided else None}
    compel = _compel_for(pipe)
    with torch.inference_mode():
        conditioning = compel([compel_syntax(_vectors_spelled(pipe, p)) for p in prompts])
        negative = compel([compel_syntax(_vectors_spelled(pipe, n)) for n in negatives]) if guided else None
    if isinstance(conditioning, tuple):  # SDXL: (embeddings, pooled)
        arguments = {"prompt_embeds": conditioning[0], "pooled_prompt_embeds": conditioning[1]}
        if negative is not None:
            arguments |= {"negative_prompt_embeds": negative[0], "negative_pooled_prompt_embeds": negative[1]}
        return arguments
    arguments = {"prompt_embeds": conditioning}
    if negative is not None:
        arguments["negative_prompt_embeds"] = negative
    return arguments


def _vectors_spelled(pipe: Any, prompt: str) -> str:
    """A prompt with each multi-vector textual inversion token spelled as its vectors' tokens, as
    the pipeline does for plain text (diffusers' ``maybe_convert_prompt``): compel reads the text
    itself."""
    convert = getattr(pipe, "maybe_convert_prompt", None)
    return str(convert(prompt, pipe.tokenizer)) if convert is not None else prompt


# --- the call --------------------------------------------------------------------------------

_derived: weakref.WeakKeyDictionary[Any, dict[tuple[str, str], Any]] = weakref.WeakKeyDictionary()


def derived_pipeline(
    pipe: Any, class_name: str = "", *, scheduler: str = DEFAULT_SCHEDULER, controlnet: Any = None
) -> Any:
    """Another pipeline class (a diffusers name; "" for the loaded one's own) and sampler on the
    loaded pipeline's components: image-to-image, inpainting, image-to-video, or a ControlNet
    pipeline with ``controlnet`` added.

    Built once per (pipeline, class, sampler, ControlNet) with ``from_pipe``: no weights are
    loaded or copied, and the loaded pipeline's own scheduler is never swapped under another caller.
    """
    if not class_name and scheduler == DEFAULT_SCHEDULER:
        return pipe
    with _lock:
        cache = _derived.setdefault(pipe, {})
        key = (class_name, scheduler) if controlnet is None else (class_name, f"{scheduler}+{id(controlnet)}")
        derived = cache.get(key)
        if derived is None:
            import diffusers

            cls = getattr(diffusers, class_name) if class_name else type(pipe)
            extra = {} if controlnet is None else {"controlnet": controlnet}
            derived = cls.from_pipe(pipe, scheduler=scheduler_build(scheduler, pipe.scheduler), **extra)
            derived.set_progress_bar_config(disable=True)
            cache[key] = derived
        return derived


def engine_generate(
    pipe: Any,
    manifest: ModelManifest,
    requests: Sequence[ImageRequest],
    *,
    call_options: Mapping[str, Any] | None = None,
    beside: Beside | None = None,
) -> list[Image.Image]:
    """Generate one RGB image per request in a single pipeline call, at the requests' size.

    All requests are checked first (``request_check``); they must share ``batch_signature``.
    ``call_options`` are the family's extra call arguments from the manifest (FLUX's
    ``max_sequence_length``, say). ``beside``: work running beside this call (``Beside``), to
    which it gives up torch threads until that work is done.
    """
    if not requests:
        raise GenerationError("a batch needs at least one request")
    inputs = [request_check(manifest, request) for request in requests]
    first = requests[0]
    for request in requests[1:]:
        if request.batch_signature() != first.batch_signature():
            raise GenerationError(
                f"request {request.key or request.prompt!r} has other parameters than the first of its batch; "
                "batch requests by model and parameters",
                variant_key=request.key,
            )
    guided = first.guidance > 1
    arguments: dict[str, Any] = {
        "num_inference_steps": first.steps,
        "guidance_scale": first.guidance,
        "width": first.width,
        "height": first.height,
        "generator": [torch.Generator(device="cpu").manual_seed(r.seed) for r in requests],
        "output_type": "pil",
        **dict(call_options or {}),
    }
    if first.mode != "text-to-image":
        size = (first.width, first.height)
        if first.mode == "image-to-image":  # the size comes from the init image
            del arguments["width"], arguments["height"]
        arguments["image"] = [init.resize(size, Image.Resampling.LANCZOS) for init, _ in inputs if init]
        arguments["strength"] = first.strength
        if first.mode == "inpainting":
            arguments["mask_image"] = [mask.resize(size, Image.Resampling.NEAREST) for _, mask in inputs if mask]
    if first.controlnet is not None:  # the structure of each request's control image
        controls = [
            image_open(r.control_image, field_name="control_image", variant_key=r.key).convert("RGB")
            for r in requests
            if r.control_image is not None
        ]
        if len(controls) != len(requests):
            raise GenerationInputError(
                "control_image", None, "a ControlNet needs a control image", variant_key=first.key
            )
        controls = [c.resize((first.width, first.height), Image.Resampling.BILINEAR) for c in controls]
        arguments["controlnet_conditioning_scale"] = first.control_scale
        arguments["control_image" if first.mode == "image-to-image" else "image"] = controls
    runner = derived_pipeline(
        pipe, _pipeline_class(manifest, first), scheduler=first.scheduler, controlnet=first.controlnet
    )
    with torch.inference_mode():
        arguments |= prompt_arguments(
            runner, [r.prompt for r in requests], [r.negative_prompt for r in requests], guided=guided
        )
        with _threads_yielded(runner, arguments, beside) as step_end:
            if step_end is not None:
                arguments["callback_on_step_end"] = step_end
            result = runner(**arguments)
    images: list[Image.Image] = [image.convert("RGB") for image in result.images]
    if len(images) != len(requests):
        raise GenerationError(f"pipeline returned {len(images)} images for {len(requests)} requests")
    if first.mode == "inpainting":  # what the mask keeps stays the photo's own pixels, not a VAE round trip
        images = [
            Image.composite(image, init, mask.filter(ImageFilter.GaussianBlur(_FEATHER)))
            for image, init, mask in zip(images, arguments["image"], arguments["mask_image"], strict=True)
        ]
    return images


@dataclass(frozen=True)
class Beside:
    """Work that runs beside a generation until ``future`` is done (the previous batch's
    finalising), on ``cores`` of the cores its torch threads use (0: on cores of its own).

    The call gives those threads up while the work runs and takes them back at the first
    denoising step after it is done (``_threads_yielded``). Measured on 2 cores (embedded model,
    batches of 8 drawn in 20 steps and finalised at 512², one finalising process), per batch,
    alternated in one process: a denoising step took 79 ms on 2 threads alone and 107 ms on 1
    thread beside the finalising, which took 252 ms on one process there against 153 ms on two
    between batches; a batch's whole cycle (generation, resize, finalising) took 1,906 ms
    between batches and 1,679 ms beside (medians of 20 and 15)."""

    future: Future[Any]
    cores: int

    def wait(self) -> None:
        """Until the work is done (its outcome is its owner's to collect)."""
        wait([self.future])


# Whether a pipeline's call, up to its latents, gives the same bits on fewer threads, by
# (batch size, width, height, guided, init images' sizes, prompt embeddings' shape, fewer
# threads, threads): ``_threads_invariant``.
_invariant: weakref.WeakKeyDictionary[Any, dict[tuple[object, ...], bool]] = weakref.WeakKeyDictionary()


@contextmanager
def _threads_yielded(runner: Any, arguments: dict[str, Any], beside: Beside | None) -> Iterator[Any]:
    """Run the call inside on fewer torch threads while ``beside`` runs, and on all of them from
    the first step that ends after it is done; yields the step callback that takes them back (None
    where the call runs on all threads).

    An image must not depend on when the work beside it ended, so threads are given up only
    where that cannot change a bit: the pipeline reports its steps (``callback_on_step_end``,
    ``num_timesteps``), the VAE always decodes on all threads (taken back at the last step
    whatever the work beside is doing), and this call's shape gave the same latents on both
    thread counts when first seen (``_threads_invariant``). Otherwise the work beside is waited
    for and the call has every thread, as between batches."""
    if beside is None or not beside.cores or beside.future.done():
        yield None
        return
    full = torch.get_num_threads()
    fewer = full - beside.cores
    if fewer < 1 or not _reports_steps(runner) or not _threads_invariant(runner, arguments, fewer, full):
        beside.wait()
        yield None
        return

    def step_end(pipe: Any, step: int, timestep: Any, tensors: dict[str, Any]) -> dict[str, Any]:
        if beside.future.done() or step >= pipe.num_timesteps - 1:
            torch.set_num_threads(full)
        return tensors

    torch.set_num_threads(fewer)
    try:
        yield step_end
    finally:
        torch.set_num_threads(full)


def _reports_steps(runner: Any) -> bool:
    """Whether the pipeline calls a step callback, can be stopped from it, and knows its steps."""
    parameters = inspect.signature(runner.__call__).parameters
    return "callback_on_step_end" in parameters and all(
        isinstance(getattr(type(runner), name, None), property) for name in ("interrupt", "num_timesteps")
    )


def _threads_invariant(runner: Any, arguments: dict[str, Any], fewer: int, full: int) -> bool:
    """Whether this call gives bit-identical latents on ``fewer`` threads as on ``full``, found
    once per pipeline and shape by running its first step both ways (latents out, no decoding;
    every step runs the same kernels on the same shapes). Some kernels split their sums by
    thread (oneDNN's 1x1 convolutions, at some shapes), so another model or size can differ
    where the shipped one does not."""
    images = arguments.get("image")
    key = (
        len(arguments["generator"]),
        arguments.get("width"),
        arguments.get("height"),
        arguments["guidance_scale"] > 1,
        tuple(getattr(image, "size", None) for image in images) if isinstance(images, list) else None,
        tuple(embeds.shape) if isinstance(embeds := arguments.get("prompt_embeds"), torch.Tensor) else None,
        fewer,
        full,
    )
    with _lock:
        known = _invariant.setdefault(runner, {}).get(key)
    if known is not None:
        return known
    states = [generator.get_state() for generator in arguments["generator"]]

    def one_step(pipe: Any, step: int, timestep: Any, tensors: dict[str, Any]) -> dict[str, Any]:
        pipe._interrupt = True  # diffusers' own stop: the remaining steps are skipped
        return tensors

    latents = []
    try:
        for threads in (fewer, full):
            torch.set_num_threads(threads)
            generators = [torch.Generator(device="cpu").set_state(state) for state in states]
            probe = arguments | {"generator": generators, "output_type": "latent", "callback_on_step_end": one_step}
            latents.append(runner(**probe).images)
    finally:
        torch.set_num_threads(full)
    same = all(isinstance(one, torch.Tensor) for one in latents) and torch.equal(latents[0], latents[1])
    if not same:
        logger.info("%s on %d threads differs from %d: it generates on all threads", type(runner).__name__, fewer, full)
    with _lock:
        _invariant.setdefault(runner, {})[key] = same
    return same


_CONTROLNET_PIPELINES = {"text-to-image": "{}ControlNetPipeline", "image-to-image": "{}ControlNetImg2ImgPipeline"}


def _pipeline_class(manifest: ModelManifest, request: ImageRequest) -> str:
    """The diffusers class a request runs on: the loaded one's own, an AutoPipeline for the image
    modes, or the family's ControlNet pipeline for the mode."""
    if request.controlnet is None:
        return _AUTO_PIPELINES.get(request.mode, "")
    prefix = CONTROLNET_FAMILIES.get(manifest.family)
    if prefix is None or request.mode not in _CONTROLNET_PIPELINES:
        raise GenerationInputError(
            "controlnet",
            request.mode,
            f"ControlNet draws text-to-image and image-to-image for {', '.join(CONTROLNET_FAMILIES)} models",
            variant_key=request.key,
        )
    return _CONTROLNET_PIPELINES[request.mode].format(prefix)


# --- variants --------------------------------------------------------------------------------


def batch_check(variants: Sequence[Variant]) -> None:
    """A batch must share model and parameters: they are one call to the pipeline."""
    if not variants:
        raise GenerationError("a batch needs at least one variant", variant_key=None)
    first = variants[0]
    for v in variants[1:]:
        if (v.model_manifest_hash, v.params, v.output) != (first.model_manifest_hash, first.params, first.output):
            raise GenerationError(
                f"variant {v.key[:12]} has other model or parameters than {first.key[:12]}; "
                "batch variants by model and parameters",
                variant_key=v.key,
            )


def variant_request(
    variant: Variant,
    sources: SourceInput | None = None,
    *,
    controlnet: Any = None,
    tokens: Mapping[str, str] | None = None,
) -> ImageRequest:
    """The engine request that makes ``variant``'s image at the model's native size (from
    ``sources``, its photo and mask, in image-to-image and inpainting, and the ControlNet's
    control image made from the photo; ``tokens`` maps its template's textual inversion tokens to
    the tokens they were loaded under)."""
    params = variant.params
    controlled = controlnet is not None and sources is not None and bool(params.controlnet)
    return ImageRequest(
        controlnet=controlnet if controlled else None,
        control_image=canny_edges(sources.photo) if controlled and sources is not None else None,
        control_scale=params.controlnet[3] if params.controlnet else 1.0,
        prompt=tokens_substitute(variant.prompt, tokens or {}),
        negative_prompt=tokens_substitute(variant.negative_prompt, tokens or {}),
        seed=variant.seed,
        steps=params.steps,
        guidance=params.guidance,
        width=params.width,
        height=params.height,
        scheduler=params.scheduler,
        mode=variant.mode,
        strength=variant.strength if variant.strength is not None else 0.75,
        init_image=sources.photo if sources and variant.mode != TEXT_TO_IMAGE else None,
        mask=sources.mask if sources else None,
        key=variant.key,
    )


def images_fit(images: Sequence[Image.Image], size: tuple[int, int]) -> list[Image.Image]:
    """Each image resampled to ``size`` (Lanczos), cropped at the centre where the aspect ratios
    differ (one already at ``size`` passed through), several at once: Pillow and OpenCV let go of
    the GIL while they resample, and this runs on the model's thread after each batch is drawn.

    An enlargement at the same aspect ratio (a small model's drawing to the output's size, the
    usual case) is OpenCV's Lanczos (8x8 taps): eight 64 px drawings to 512 px, measured on 2
    cores one after another, took 18.1 ms with Pillow's Lanczos and 9.6 ms with OpenCV's (13.4 and
    about 5 ms on two threads). A reduction or a crop stays Pillow's, whose Lanczos widens its
    kernel with the reduction (OpenCV's would alias) and takes fractional crop boxes."""

    def fit(image: Image.Image) -> Image.Image:
        if image.size == size:
            return image
        (width, height), (out_w, out_h) = image.size, size
        if image.mode == "RGB" and out_w >= width and out_h >= height and out_w * height == out_h * width:
            return Image.fromarray(cv2.resize(np.asarray(image), size, interpolation=cv2.INTER_LANCZOS4))
        return ImageOps.fit(image, size, Image.Resampling.LANCZOS)

    workers = min(sum(image.size != size for image in images), len(os.sched_getaffinity(0)))
    if workers <= 1:
        return [fit(image) for image in images]
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="image-fit") as pool:
        return list(pool.map(fit, images))


def images_generate(
    pipe: Any, manifest: ModelManifest, variants: Sequence[Variant], *, beside: Beside | None = None
) -> list[Image.Image]:
    """Generate one image per variant in a single pipeline call, at the output spec's size,
    giving threads up to the work ``beside`` it while that runs (``engine_generate``).

    The model draws at its native size; the output spec's upscaler (if it names one) enlarges
    the drawing; the result is resampled to the output size (Lanczos),
    cropped at the centre where the aspect ratios differ (never stretched). In inpainting, what
    the mask keeps is then the source photo's own pixels at the output size, not the model's
    small drawing of them.
    """
    batch_check(variants)
    loaded: dict[tuple[str, str], SourceInput | None] = {}  # a batch shares its template's source
    sources = [loaded.setdefault((v.source_image, v.mask), variant_sources(v)) for v in variants]
    controlnet = variant_controlnet(manifest, variants[0], pipe)
    adapters_apply(pipe, variant_adapters(manifest, variants[0]))
    tokens = variant_tokens(variants[0], embeddings_apply(pipe, variant_embeddings(manifest, variants[0])))
    requests = [
        variant_request(v, source, controlnet=controlnet, tokens=tokens)
        for v, source in zip(variants, sources, strict=True)
    ]
    images = engine_generate(pipe, manifest, requests, call_options=manifest.call_options, beside=beside)
    if variants[0].params.upscaler:  # the output spec's upscaler enlarges the drawing first
        name, pinned = variants[0].params.upscaler
        upscaler = upscaler_load(upscaler_manifest_load(name, manifests_dir=manifest.path.parent, pinned=pinned))
        images = images_upscale(
            upscaler,
            images,
            prompts=[v.prompt for v in variants],
            seeds=[v.seed for v in variants],
            steps=variants[0].params.steps,
        )
    fitted = images_fit(images, (variants[0].output.width, variants[0].output.height))
    return [
        Image.composite(image, source.photo, source.mask.filter(ImageFilter.GaussianBlur(_FEATHER)))
        if source is not None and source.mask is not None
        else image
        for image, source in zip(fitted, sources, strict=True)
    ]
