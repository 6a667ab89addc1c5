"""Video generation: clips from video models, keyframe clips from image models, and H.264 MP4.

Two paths, one request type (``VideoRequest``), one entry point (``video_make``):

- Video models (role ``video-generator``) draw the clip themselves: text-to-video with the loaded
  pipeline (``WanPipeline``, ``LTXPipeline``) and image-to-video (a template's ``mode:
  image-to-video``: its source photo is the first frame's condition) with the family's
  image-to-video class built from the same components (``LTXImageToVideoPipeline.from_pipe``: no
  second copy of the weights). Frame counts must be ``temporal_scale * k + 1`` and sizes
  multiples of the model's ``size_multiple``.
- Image models (the embedded model on any CPU) make ``keyframes`` stills in ONE batched call whose
  starting noises lie on a spherical path between seeds derived from the request's seed, so
  consecutive keyframes are related; optical flow (OpenCV DIS) then warps both neighbours toward
  each in-between time and blends them, up to ``frames`` frames, upscaled (Lanczos) to the output
  size (by default the smallest whole multiple of the model's size whose short side is at least
  ``CLIP_MIN_SIDE``, 512 px: twice what the watermark needs, so a copy re-encoded at half size,
  as sharing sites do, still carries it).

Every request is checked before any model work (``video_request_check``), each refusal naming the
field and the value, as the image engine does (``pipeline.errors.GenerationInputError``).
The noise path and the optical-flow in-betweens are plain array functions in ``pipeline.frames``;
MP4 encoding is provenance's (``provenance.mp4``). ``clips_generate`` makes a batch of campaign variants whose output is
a video, one ``Clip`` per variant (``variant_video_request`` maps a variant to its request).
Progress goes to the ``greenlight.pipeline`` log and to an optional callback.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from PIL import Image, ImageOps

from models import ModelManifest
from models.families import IMAGE_TO_VIDEO_PIPELINES
from pipeline.errors import GenerationError, GenerationInputError
from pipeline.frames import RgbArray, frame_between, keyframe_seeds, optical_flows, slerp
from pipeline.generate import (
    ImageInput,
    batch_check,
    derived_pipeline,
    image_open,
    is_integer,
    is_number,
    prompt_arguments,
    prompts_check,
    sampling_check,
)
from pipeline.sources import variant_source_photo
from prompt_library.specs import IMAGE_TO_VIDEO, GenerationParams, OutputSpec, Variant
from provenance.media import MAX_CLIP_FRAMES, MAX_FPS, MAX_KEYFRAMES, MAX_VIDEO_SIDE, MIN_FPS, WATERMARK_MIN_SIDE
from provenance.mp4 import Clip

logger = logging.getLogger("greenlight.pipeline")

MIN_FRAMES = 2
_FRAME_RATE_FAMILIES = ("ltx-video",)  # the transformer's positions depend on the frame rate


@dataclass(frozen=True)
class VideoProgress:
    """One step of a clip's making: ``stage`` is "denoise", "keyframes", "interpolate" or
    "upscale"; ``done`` of ``total`` units of that stage are finished."""

    stage: str
    done: int
    total: int
    key: str | None = None


ProgressCallback = Callable[[VideoProgress], None]


@dataclass(frozen=True)
class VideoRequest:
    """One clip to generate.

    ``width`` and ``height`` are the size the model draws at; ``output_width`` and
    ``output_height`` the size of the frames returned (None: the drawn size for a video model; for
    an image model the drawn size times the smallest whole factor that reaches ``CLIP_MIN_SIDE``,
    512 px, on both sides: a copy shared at half the size keeps the watermark's 256 px).
    ``frames`` at ``fps`` fix the duration (``clip_frames`` computes
    ``frames`` from seconds). ``init_image`` (an image, encoded bytes or a path) makes it
    image-to-video. ``keyframes`` and ``motion`` only shape the keyframe path of image models:
    ``motion`` is how far each keyframe's starting noise moves along the path of seeds (0.25: a
    quarter of the way to the next seed's noise; 1: a new seed per keyframe).
    """

    prompt: str
    seed: int
    steps: int
    guidance: float
    width: int
    height: int
    frames: int
    fps: int
    negative_prompt: str = ""
    init_image: ImageInput | None = field(default=None, compare=False)
    keyframes: int = 4
    motion: float = 0.25
    output_width: int | None = None
    output_height: int | None = None
    key: str | None = None  # the variant this request makes, for error messages

    @property
    def seconds(self) -> float:
        """How long the clip plays."""
        return self.frames / self.fps


def clip_frames(seconds: float, fps: int, *, temporal_scale: int | None = None) -> int:
    """Frames for a clip of ``seconds`` at ``fps``: ``round(seconds * fps)``, raised to the next
    ``temporal_scale * k + 1`` when a video family needs that shape (``manifest.temporal_scale_factor``)."""
    frames = max(MIN_FRAMES, round(seconds * fps))
    if temporal_scale:
        frames = math.ceil((frames - 1) / temporal_scale) * temporal_scale + 1
    return frames


# --- checks --------------------------------------------------------------------------------


def video_request_check(manifest: ModelManifest, request: VideoRequest) -> Image.Image | None:
    """Refuse a bad request before any model work; returns the decoded init image (RGB) or None."""

    def refuse(name: str, value: object, problem: str) -> GenerationInputError:
        return GenerationInputError(name, value, problem, variant_key=request.key)

    # 1. What every clip needs (weighted prompts on image models, as for their stills).
    prompts_check(manifest, prompt=request.prompt, negative_prompt=request.negative_prompt, variant_key=request.key)
    sampling_check(
        manifest,
        steps=request.steps,
        guidance=request.guidance,
        seed=request.seed,
        width=request.width,
        height=request.height,
        variant_key=request.key,
    )
    if not is_integer(request.fps) or not MIN_FPS <= request.fps <= MAX_FPS:
        raise refuse("fps", request.fps, f"must be an integer from {MIN_FPS} to {MAX_FPS}")
    if not is_integer(request.frames) or not MIN_FRAMES <= request.frames <= MAX_CLIP_FRAMES:
        raise refuse("frames", request.frames, f"must be an integer from {MIN_FRAMES} to {MAX_CLIP_FRAMES}")
    for name, out in (("output_width", request.output_width), ("output_height", request.output_height)):
        if out is not None and (not is_integer(out) or not 16 <= out <= MAX_VIDEO_SIDE or out % 2):
            raise refuse(name, out, f"must be an even integer from 16 to {MAX_VIDEO_SIDE} (H.264 needs even sides)")
    if not is_integer(request.keyframes) or not 2 <= request.keyframes <= MAX_KEYFRAMES:
        raise refuse("keyframes", request.keyframes, f"must be an integer from 2 to {MAX_KEYFRAMES}")

    # 2. What the model's kind needs.
    if manifest.is_video:
        temporal = manifest.temporal_scale_factor or 1
        if (request.frames - 1) % temporal:
            below = (request.frames - 1) // temporal * temporal + 1
            nearest = " or ".join(str(n) for n in (below, below + temporal) if MIN_FRAMES <= n <= MAX_CLIP_FRAMES)
            raise refuse(
                "frames",
                request.frames,
                f"model '{manifest.name}' ({manifest.family}) needs {temporal} * k + 1 frames (e.g. {nearest})",
            )
        if request.init_image is None:
            return None
        if manifest.family not in IMAGE_TO_VIDEO_PIPELINES:
            with_it = ", ".join(sorted(IMAGE_TO_VIDEO_PIPELINES))
            raise refuse(
                "init_image",
                request.init_image,
                f"the {manifest.family} family has no image-to-video pipeline here (families with one: {with_it})",
            )
        return image_open(request.init_image, field_name="init_image", variant_key=request.key).convert("RGB")
    if request.keyframes > request.frames:
        raise refuse("keyframes", request.keyframes, f"more keyframes than frames ({request.frames})")
    if not is_number(request.motion) or not 0 < request.motion <= 1:
        raise refuse("motion", request.motion, "must be a number above 0 and at most 1")
    if request.init_image is not None:
        raise refuse(
            "init_image",
            request.init_image,
            f"model '{manifest.name}' makes images: its keyframe clips start from text only "
            "(image-to-video needs a video model of the families " + ", ".join(sorted(IMAGE_TO_VIDEO_PIPELINES)) + ")",
        )
    return None


# The least short side of a keyframe clip's frames by default: twice the watermark's minimum, so
# that a copy shared at half the size still carries the mark. A video model draws at its own size.
CLIP_MIN_SIDE = 2 * WATERMARK_MIN_SIDE


def output_size(manifest: ModelManifest, request: VideoRequest) -> tuple[int, int]:
    """The (width, height) of the frames a request returns (see ``VideoRequest``)."""
    width, height = request.width, request.height
    if request.output_width is not None and request.output_height is not None:
        return request.output_width, request.output_height
    if not manifest.is_video:
        scale = max(1, math.ceil(CLIP_MIN_SIDE / min(width, height)))
        width, height = width * scale, height * scale
    if request.output_width is not None:  # one side given: keep the drawn aspect, even sides
        return request.output_width, _even(request.output_width * height / width)
    if request.output_height is not None:
        return _even(request.output_height * width / height), request.output_height
    return width, height


def _even(value: float) -> int:
    return max(2, round(value / 2) * 2)


# --- progress ------------------------------------------------------------------------------


def _report(progress: ProgressCallback | None, request: VideoRequest, stage: str, done: int, total: int) -> None:
    logger.info("video %s: %s %d/%d", request.key or request.prompt[:40], stage, done, total)
    if progress is not None:
        progress(VideoProgress(stage=stage, done=done, total=total, key=request.key))


def _step_callback(progress: ProgressCallback | None, request: VideoRequest) -> Callable[..., dict[str, Any]]:
    """A diffusers ``callback_on_step_end`` that reports each denoising step (the callback only:
    the log gets the stage's start and end, not every step)."""

    def on_step_end(_pipe: Any, step: int, _timestep: Any, tensors: dict[str, Any]) -> dict[str, Any]:
        if progress is not None:
            progress(VideoProgress(stage="denoise", done=step + 1, total=request.steps, key=request.key))
        return tensors

    return on_step_end


# --- video models --------------------------------------------------------------------------


def video_generate(
    pipe: Any,
    manifest: ModelManifest,
    request: VideoRequest,
    *,
    progress: ProgressCallback | None = None,
) -> list[Image.Image]:
    """One clip from a video model: text-to-video, or image-to-video when ``init_image`` is set.

    Returns ``request.frames`` RGB frames at ``output_size``. The starting noise comes from a CPU
    ``torch.Generator`` seeded with ``request.seed``, so a seed gives the same clip on any device
    of the same kind. The init image is fitted to the drawn size (scaled to cover, centre-cropped).
    """
    if not manifest.is_video:
        raise GenerationError(
            f"model '{manifest.name}' has role {manifest.role!r}; video_generate needs a video model "
            "(keyframe_video makes clips from image models)",
            variant_key=request.key,
        )
    init = video_request_check(manifest, request)
    arguments: dict[str, Any] = {
        "prompt": request.prompt,
        "negative_prompt": request.negative_prompt,
        "width": request.width,
        "height": request.height,
        "num_frames": request.frames,
        "num_inference_steps": request.steps,
        "guidance_scale": request.guidance,
        "generator": torch.Generator(device="cpu").manual_seed(request.seed),
        "output_type": "np",
        "callback_on_step_end": _step_callback(progress, request),
        **dict(manifest.call_options),
    }
    if manifest.family in _FRAME_RATE_FAMILIES:
        arguments["frame_rate"] = request.fps
    runner = pipe
    if init is not None:
        arguments["image"] = ImageOps.fit(init, (request.width, request.height), Image.Resampling.LANCZOS)
        runner = derived_pipeline(pipe, IMAGE_TO_VIDEO_PIPELINES[manifest.family])
    _report(progress, request, "denoise", 0, request.steps)
    with torch.inference_mode():
        result = runner(**arguments)
    _report(progress, request, "denoise", request.steps, request.steps)
    frames = [Image.fromarray(array) for array in _frames_uint8(result.frames)]
    if len(frames) != request.frames:
        raise GenerationError(
            f"pipeline returned {len(frames)} frames for {request.frames} requested", variant_key=request.key
        )
    return _resized(frames, output_size(manifest, request))


def _frames_uint8(frames: Any) -> list[RgbArray]:
    """The first clip of a pipeline's ``np`` output (clips x frames x H x W x 3, floats in [0, 1])."""
    clip = np.asarray(frames[0], dtype=np.float32)
    if clip.ndim != 4 or clip.shape[-1] != 3:
        raise GenerationError(f"pipeline returned frames of shape {clip.shape}, expected (frames, H, W, 3)")
    return list((clip.clip(0, 1) * 255).round().astype(np.uint8))


def _resized(frames: Sequence[Image.Image], size: tuple[int, int]) -> list[Image.Image]:
    if all(frame.size == size for frame in frames):
        return list(frames)
    return [ImageOps.fit(frame, size, Image.Resampling.LANCZOS) for frame in frames]


# --- keyframe clips from image models --------------------------------------------------------


def keyframe_latents(pipe: Any, request: VideoRequest) -> torch.Tensor:
    """The starting noise of each keyframe: keyframe k at ``k * motion`` along a path through
    anchor noises (one per seed of ``keyframe_seeds``), slerped between its two nearest anchors."""
    denoiser = getattr(pipe, "unet", None) or pipe.transformer
    channels = int(denoiser.config.in_channels)
    scale = int(pipe.vae_scale_factor)
    shape = (1, channels, request.height // scale, request.width // scale)
    positions = [k * request.motion for k in range(request.keyframes)]
    anchors = [
        torch.randn(shape, generator=torch.Generator(device="cpu").manual_seed(seed), dtype=torch.float32)
        for seed in keyframe_seeds(request.seed, int(positions[-1]) + 2)
    ]
    latents = []
    for position in positions:
        index = int(position)
        latents.append(slerp(anchors[index], anchors[index + 1], position - index))
    return torch.cat(latents).to(dtype=denoiser.dtype)


def keyframe_video(
    pipe: Any,
    manifest: ModelManifest,
    request: VideoRequest,
    *,
    progress: ProgressCallback | None = None,
) -> list[Image.Image]:
    """A clip from an image model: keyframes, optical-flow in-betweens, Lanczos upscaling.

    The ``keyframes`` stills are one batched pipeline call with precomputed starting noise
    (``keyframe_latents``) and one prompt, so they share the prompt embedding and drift smoothly;
    they are spread evenly over the ``frames`` frames (first on the first frame, last on the last).
    Returns ``request.frames`` RGB frames at ``output_size``.
    """
    if manifest.is_video:
        raise GenerationError(
            f"model '{manifest.name}' is a video model; video_generate makes its clips", variant_key=request.key
        )
    video_request_check(manifest, request)
    count = request.keyframes

    # 1. Keyframes: one pipeline call, every still from its own point on the noise path.
    _report(progress, request, "keyframes", 0, count)
    guided = request.guidance > 1
    with torch.inference_mode():
        result = pipe(
            **prompt_arguments(pipe, [request.prompt] * count, [request.negative_prompt] * count, guided=guided),
            num_inference_steps=request.steps,
            guidance_scale=request.guidance,
            width=request.width,
            height=request.height,
            latents=keyframe_latents(pipe, request),
            # Only stochastic samplers draw from these; the starting noise is the latents above.
            generator=[torch.Generator(device="cpu").manual_seed(s) for s in keyframe_seeds(request.seed, count)],
            output_type="pil",
            callback_on_step_end=_step_callback(progress, request),
            **dict(manifest.call_options),
        )
    stills: list[Image.Image] = [image.convert("RGB") for image in result.images]
    if len(stills) != count:
        raise GenerationError(f"pipeline returned {len(stills)} keyframes for {count}", variant_key=request.key)
    _report(progress, request, "keyframes", count, count)

    # 2. Upscale the keyframes first: the in-betweens are then warped at full size (sharper edges,
    # and keyframes-many resamplings instead of frames-many).
    size = output_size(manifest, request)
    keys = [np.asarray(frame) for frame in _resized(stills, size)]
    _report(progress, request, "upscale", count, count)

    # 3. In-betweens: frame j sits at keyframe position j * (count - 1) / (frames - 1).
    frames: list[Image.Image] = []
    flows: dict[int, tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]] = {}
    last = request.frames - 1
    for j in range(request.frames):
        position = j * (count - 1) / last
        index = min(int(position), count - 2)
        t = position - index
        if t < 1e-9 or t > 1 - 1e-9:
            frames.append(Image.fromarray(keys[index + round(t)]))
            continue
        if index not in flows:
            flows[index] = optical_flows(keys[index], keys[index + 1])
            _report(progress, request, "interpolate", index + 1, count - 1)
        forward, backward = flows[index]
        frames.append(Image.fromarray(frame_between(keys[index], keys[index + 1], forward, backward, t)))
    return frames


# --- one entry point -----------------------------------------------------------------------


def video_make(
    pipe: Any,
    manifest: ModelManifest,
    request: VideoRequest,
    *,
    progress: ProgressCallback | None = None,
) -> list[Image.Image]:
    """One clip from any model: ``video_generate`` for video models, ``keyframe_video`` for image
    models."""
    if manifest.is_video:
        return video_generate(pipe, manifest, request, progress=progress)
    return keyframe_video(pipe, manifest, request, progress=progress)


# --- variants --------------------------------------------------------------------------------


def variant_video_request(variant: Variant, manifest: ModelManifest) -> VideoRequest:
    """The request that makes ``variant``'s clip (see ``video_request_build``); an image-to-video
    variant's stored source photo is its init image."""
    init_image = None
    if variant.mode == IMAGE_TO_VIDEO:
        init_image = variant_source_photo(variant)
        if init_image is None:
            raise GenerationInputError(
                "source_image", "", "image-to-video needs a source photo", variant_key=variant.key
            )
    return video_request_build(
        prompt=variant.prompt,
        negative_prompt=variant.negative_prompt,
        seed=variant.seed,
        params=variant.params,
        output=variant.output,
        manifest=manifest,
        key=variant.key,
        init_image=init_image,
    )


def video_request_build(
    *,
    prompt: str,
    negative_prompt: str,
    seed: int,
    params: GenerationParams,
    output: OutputSpec,
    manifest: ModelManifest,
    key: str | None = None,
    init_image: ImageInput | None = None,
) -> VideoRequest:
    """A clip request from a template's parameters and video output: drawn at the model's native
    size (``params``), ``fps x seconds`` frames shaped for the model's family, returned at the
    output size; from ``init_image`` (image-to-video) when given."""
    if not output.is_video or output.fps is None or output.seconds is None:
        raise GenerationError(f"output format {output.format!r} is not a video", variant_key=key)
    temporal = manifest.temporal_scale_factor if manifest.is_video else None
    return VideoRequest(
        prompt=prompt,
        negative_prompt=negative_prompt,
        seed=seed,
        steps=params.steps,
        guidance=params.guidance,
        width=params.width,
        height=params.height,
        frames=clip_frames(output.seconds, output.fps, temporal_scale=temporal),
        fps=output.fps,
        keyframes=output.keyframes if output.keyframes is not None else VideoRequest.keyframes,
        output_width=output.width,
        output_height=output.height,
        key=key,
        init_image=init_image,
    )


def clips_generate(
    pipe: Any,
    manifest: ModelManifest,
    variants: Sequence[Variant],
    *,
    progress: ProgressCallback | None = None,
) -> list[Clip]:
    """One clip per variant of a batch (a batch shares model and parameters), each logged as it
    is done. Every request is checked before the first clip is drawn."""
    batch_check(variants)
    requests = [variant_video_request(v, manifest) for v in variants]
    for request in requests:
        video_request_check(manifest, request)
    clips = []
    for index, request in enumerate(requests):
        started = time.perf_counter()
        frames = video_make(pipe, manifest, request, progress=progress)
        clips.append(Clip(frames=tuple(frames), fps=request.fps))
        width, height = frames[0].size
        logger.info(
            "clip %d/%d (%s): %d frames %dx%d at %d fps in %.1f s",
            index + 1,
            len(requests),
            (request.key or "")[:12],
            len(frames),
            width,
            height,
            request.fps,
            time.perf_counter() - started,
        )
    return clips
