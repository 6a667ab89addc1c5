"""The generation engine on the shipped embedded model: batching, modes, weighting, samplers, bad input."""

from __future__ import annotations

import io
import random
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from diffusers import StableDiffusionPipeline
from PIL import Image, ImageFilter, ImageOps

from models import ModelManifest, manifest_load, template_load
from models.loading import pipeline_load
from models.training.catalog_domain import Combo, catalog_draw, image_judge
from pipeline.errors import GenerationError, GenerationInputError
from pipeline.generate import (
    Beside,
    ImageRequest,
    compel_syntax,
    engine_generate,
    images_fit,
    images_generate,
    request_check,
    variant_request,
)
from prompt_library.specs import GenerationParams, OutputSpec, Variant

STEPS = 20  # the manifest's: the shipped sampler loses colours at 12 (models/embedded/README.md)


@pytest.fixture(scope="module")
def manifest() -> ModelManifest:
    return manifest_load("embedded")


@pytest.fixture(scope="module")
def pipe(manifest: ModelManifest) -> Any:
    return pipeline_load(manifest, device="cpu")


def request(prompt: str, seed: int, /, **changes: Any) -> ImageRequest:
    base = ImageRequest(prompt=prompt, seed=seed, steps=STEPS, guidance=7.0, width=64, height=64)
    return replace(base, **changes)


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image, dtype=np.int16)


PROMPTS = [
    "a red mug on a wooden table",
    "a blue bottle on a white studio background",
    "a green lamp outdoor on grass",
    "a yellow t-shirt on a gradient background",
    "a black sneaker box on a wooden table",
    "a white bottle on a gradient background",
    "a (red:1.4) lamp on a white studio background",
    "a blue mug outdoor on grass",
]


# --- batching --------------------------------------------------------------------------------


def test_an_image_is_bit_identical_alone_and_inside_a_batch_of_eight(pipe: Any, manifest: ModelManifest) -> None:
    batch = engine_generate(pipe, manifest, [request(p, 100 + i) for i, p in enumerate(PROMPTS)])
    for index in (0, 3, 6):  # first, middle, and the weighted prompt
        alone = engine_generate(pipe, manifest, [request(PROMPTS[index], 100 + index)])[0]
        assert alone.tobytes() == batch[index].tobytes(), PROMPTS[index]


def test_seeds_are_per_image_so_two_seeds_in_one_batch_differ(pipe: Any, manifest: ModelManifest) -> None:
    one, two = engine_generate(pipe, manifest, [request(PROMPTS[0], 1), request(PROMPTS[0], 2)])
    assert one.tobytes() != two.tobytes()
    again = engine_generate(pipe, manifest, [request(PROMPTS[0], 1)])[0]
    assert again.tobytes() == one.tobytes()


# --- sharing the cores with the work beside a generation -------------------------------------


@pytest.fixture
def two_torch_threads() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(threads)


def threads_seen(module: torch.nn.Module, seen: list[int], then: Any = None) -> Any:
    """Record torch's thread count at each call of ``module`` (and call ``then(len(seen))``)."""

    def record(*_: object) -> None:
        seen.append(torch.get_num_threads())
        if then is not None:
            then(len(seen))

    return module.register_forward_pre_hook(record)


def test_a_generation_gives_a_thread_up_to_the_work_beside_it_until_that_work_is_done(
    pipe: Any, manifest: ModelManifest, two_torch_threads: None
) -> None:
    requests = [request(PROMPTS[i], 300 + i) for i in (0, 1)]
    plain = engine_generate(pipe, manifest, requests)
    unet: list[int] = []
    decoder: list[int] = []
    hooks = [threads_seen(pipe.unet, unet), threads_seen(pipe.vae.decoder, decoder)]
    try:
        # Work that outlasts the call: every step on one thread, the decoding on both.
        running: Future[None] = Future()
        kept = engine_generate(pipe, manifest, requests, beside=Beside(running, cores=1))
        running.set_result(None)
        assert unet[-STEPS:] == [1] * STEPS and decoder == [2, 2]
        assert torch.get_num_threads() == 2
        # Work that ends during the third step: the thread is taken back at the next one.
        for hook in hooks:
            hook.remove()
        unet.clear()
        ending: Future[None] = Future()

        def end_in_third_step(calls: int) -> None:
            if calls == 3:
                ending.set_result(None)

        hooks = [threads_seen(pipe.unet, unet, end_in_third_step)]
        handed_back = engine_generate(pipe, manifest, requests, beside=Beside(ending, cores=1))
        assert unet == [1, 1, 1] + [2] * (STEPS - 3)
    finally:
        for hook in hooks:
            hook.remove()
    # Whenever the work beside ended, the images are the same bits.
    assert [i.tobytes() for i in kept] == [i.tobytes() for i in plain]
    assert [i.tobytes() for i in handed_back] == [i.tobytes() for i in plain]


def test_a_weighted_prompt_gives_the_same_bits_on_the_thread_it_is_left(
    pipe: Any, manifest: ModelManifest, two_torch_threads: None
) -> None:
    requests = [request(PROMPTS[6], 330)]  # "(red:1.4)": compel's embeddings, not the prompt's text
    plain = engine_generate(pipe, manifest, requests)
    running: Future[None] = Future()
    unet: list[int] = []
    hook = threads_seen(pipe.unet, unet)
    try:
        made = engine_generate(pipe, manifest, requests, beside=Beside(running, cores=1))
    finally:
        hook.remove()
        running.set_result(None)
    assert unet[-STEPS:] == [1] * STEPS
    assert made[0].tobytes() == plain[0].tobytes()


def test_work_on_cores_of_its_own_leaves_the_generation_every_thread(
    pipe: Any, manifest: ModelManifest, two_torch_threads: None
) -> None:
    unet: list[int] = []
    hook = threads_seen(pipe.unet, unet)
    try:
        engine_generate(pipe, manifest, [request(PROMPTS[2], 310)], beside=Beside(Future(), cores=0))
    finally:
        hook.remove()
    assert unet == [2] * STEPS


def test_a_model_whose_latents_change_with_its_threads_waits_for_the_work_beside_it_and_keeps_them(
    manifest: ModelManifest, two_torch_threads: None
) -> None:
    # The folder's layers as diffusers builds them, without the batch-invariant rewrite: oneDNN's
    # 1x1 convolutions split their sums by thread, so one thread gives other latents than two.
    stock = StableDiffusionPipeline.from_pretrained(manifest.folder, safety_checker=None)
    stock.set_progress_bar_config(disable=True)
    requests = [request(PROMPTS[3], 320)]
    plain = engine_generate(stock, manifest, requests)
    work_ended: list[float] = []
    first_step: list[float] = []
    unet: list[int] = []

    running: Future[None] = Future()

    def slow_work() -> None:
        time.sleep(0.5)
        work_ended.append(time.perf_counter())
        running.set_result(None)

    probe_calls = 2  # one step on each thread count, when the shape is first seen

    def first_step_timed(calls: int) -> None:
        if calls == probe_calls + 1:
            first_step.append(time.perf_counter())

    threading.Thread(target=slow_work).start()
    hook = threads_seen(stock.unet, unet, first_step_timed)
    try:
        made = engine_generate(stock, manifest, requests, beside=Beside(running, cores=1))
    finally:
        hook.remove()

    assert unet[:probe_calls] == [1, 2]  # the probe
    assert unet[probe_calls:] == [2] * STEPS  # the call itself, after the work beside it
    assert first_step[0] >= work_ended[0]
    assert made[0].tobytes() == plain[0].tobytes()


def test_a_batch_with_mixed_parameters_is_refused(pipe: Any, manifest: ModelManifest) -> None:
    with pytest.raises(GenerationError, match="other parameters"):
        engine_generate(pipe, manifest, [request(PROMPTS[0], 1), request(PROMPTS[0], 2, steps=STEPS + 1)])


# --- the modes -------------------------------------------------------------------------------


def _judged_right(images: list[Image.Image], combo: Combo) -> int:
    return sum(all(image_judge(image).matches(combo)) for image in images)


def test_text_to_image_draws_what_the_prompt_says(pipe: Any, manifest: ModelManifest) -> None:
    combo = Combo("bottle", "blue", "studio")
    images = engine_generate(pipe, manifest, [request(combo.caption, seed) for seed in range(6)])
    assert _judged_right(images, combo) >= 3


def test_image_to_image_moves_a_product_photo_into_a_new_scene(pipe: Any, manifest: ModelManifest) -> None:
    photo = catalog_draw(Combo("mug", "blue", "studio"), rng=random.Random(3))
    target = Combo("mug", "blue", "wooden table")
    requests = [
        request(target.caption, seed, mode="image-to-image", init_image=photo, strength=0.8) for seed in range(6)
    ]
    images = engine_generate(pipe, manifest, requests)
    scenes = [image_judge(image).scene for image in images]
    assert scenes.count("wooden table") >= 4, scenes
    # A low strength keeps the photo almost as it was.
    kept = engine_generate(pipe, manifest, [replace(requests[0], strength=0.1)])[0]
    assert np.abs(pixels(kept) - pixels(photo)).mean() < np.abs(pixels(images[0]) - pixels(photo)).mean()


def test_inpainting_repaints_the_white_of_the_mask_and_keeps_the_black(pipe: Any, manifest: ModelManifest) -> None:
    photo = catalog_draw(Combo("lamp", "red", "studio"), rng=random.Random(4))
    mask = Image.new("L", photo.size, 0)
    mask.paste(255, (0, 0, 64, 20))  # repaint the top band only
    requests = [
        request("a red lamp outdoor on grass", seed, mode="inpainting", init_image=photo, mask=mask, strength=1.0)
        for seed in range(3)
    ]
    for image in engine_generate(pipe, manifest, requests):
        change = np.abs(pixels(image) - pixels(photo)).mean(axis=2)
        assert change[:18].mean() > 10  # the band was repainted
        assert not change[23:].any()  # below the mask's feathered edge, the photo's own pixels


def test_init_image_and_mask_may_be_bytes_or_paths(pipe: Any, manifest: ModelManifest, tmp_path: Path) -> None:
    photo = catalog_draw(Combo("mug", "red", "studio"), rng=random.Random(5))
    buffer = io.BytesIO()
    photo.save(buffer, format="PNG")
    path = tmp_path / "photo.png"
    photo.save(path)
    base = request("a red mug on a wooden table", 7, mode="image-to-image", strength=0.5)
    from_bytes = engine_generate(pipe, manifest, [replace(base, init_image=buffer.getvalue())])[0]
    from_path = engine_generate(pipe, manifest, [replace(base, init_image=str(path))])[0]
    from_image = engine_generate(pipe, manifest, [replace(base, init_image=photo)])[0]
    assert from_bytes.tobytes() == from_path.tobytes() == from_image.tobytes()


# --- prompt weighting ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "compel"),
    [
        ("a (red:1.3) mug", "a (red)1.3 mug"),
        ("a (red) mug", "a (red)1.1 mug"),
        ("a [red] mug", "a (red)0.9091 mug"),
        ("a ((red)) mug", "a ((red)1.1)1.1 mug"),
        ("a (red mug:0.5) on (a table:1.2)", "a (red mug)0.5 on (a table)1.2"),
        ("a red mug", "a red mug"),
        (r"a \(literal\) mug", r"a \(literal\) mug"),
    ],
)
def test_common_weighting_syntax_is_rewritten_for_compel(written: str, compel: str) -> None:
    assert compel_syntax(written) == compel


def test_a_weight_changes_the_image_and_plain_prompts_are_untouched(pipe: Any, manifest: ModelManifest) -> None:
    plain = engine_generate(pipe, manifest, [request("a red mug on a wooden table", 11)])[0]
    heavy = engine_generate(pipe, manifest, [request("a (red:1.8) mug on a wooden table", 11)])[0]
    light = engine_generate(pipe, manifest, [request("a (red:1.0) mug on a wooden table", 11)])[0]
    assert heavy.tobytes() != plain.tobytes()
    assert light.tobytes() == plain.tobytes()  # weight 1 is the plain prompt


def test_square_bracket_weight_draws_as_the_same_weight_in_parentheses(pipe: Any, manifest: ModelManifest) -> None:
    squared = engine_generate(pipe, manifest, [request("a [red:0.5] mug on a wooden table", 11)])[0]
    round_ = engine_generate(pipe, manifest, [request("a (red:0.5) mug on a wooden table", 11)])[0]
    plain = engine_generate(pipe, manifest, [request("a red mug on a wooden table", 11)])[0]
    assert squared.tobytes() == round_.tobytes()  # the weight is read, not left in the prompt as ":0.5"
    assert squared.tobytes() != plain.tobytes()


# --- samplers --------------------------------------------------------------------------------


# Not dpm++-karras: the embedded model's zero-terminal-SNR schedule refuses it (below).
@pytest.mark.parametrize("scheduler", ["dpm++", "unipc"])
def test_another_sampler_draws_the_prompt_too(pipe: Any, manifest: ModelManifest, scheduler: str) -> None:
    combo = Combo("bottle", "blue", "studio")
    default = engine_generate(pipe, manifest, [request(combo.caption, 0)])[0]
    images = engine_generate(pipe, manifest, [request(combo.caption, seed, scheduler=scheduler) for seed in range(4)])
    assert images[0].tobytes() != default.tobytes()
    assert _judged_right(images, combo) >= 2
    assert type(pipe.scheduler).__name__ == "EulerDiscreteScheduler"  # the loaded pipeline kept its own


def test_karras_spacing_is_refused_on_the_zero_terminal_snr_schedule(manifest: ModelManifest) -> None:
    assert manifest.scheduler_config["rescale_betas_zero_snr"] is True
    with pytest.raises(GenerationInputError) as caught:
        engine_generate(None, manifest, [request("a red mug on a wooden table", 0, scheduler="dpm++-karras")])
    assert caught.value.field == "scheduler"
    message = str(caught.value)
    assert message.startswith("scheduler = 'dpm++-karras': Karras spacing does not suit a zero-terminal-SNR schedule")
    assert "model 'embedded' has; choose one of (empty: the model's own), dpm++, euler," in message
    assert "dpm++-karras" not in message.split("choose one of")[1]


# --- bad input, refused before any model work (the pipeline is not even passed) ---------------


@pytest.mark.parametrize(
    ("changes", "field", "value"),
    [
        ({"prompt": ""}, "prompt", "''"),
        ({"prompt": "   "}, "prompt", "'   '"),
        ({"steps": 0}, "steps", "0"),
        ({"steps": -3}, "steps", "-3"),
        ({"steps": 501}, "steps", "501"),
        ({"guidance": 80.0}, "guidance", "80.0"),
        ({"width": 66}, "width", "66"),
        ({"height": 0}, "height", "0"),
        ({"seed": -1}, "seed", "-1"),
        ({"mode": "outpainting"}, "mode", "'outpainting'"),
        ({"scheduler": "heun-fast"}, "scheduler", "'heun-fast'"),
        ({"mode": "image-to-image"}, "init_image", "(none)"),
        ({"mode": "image-to-image", "init_image": b"not an image"}, "init_image", "<12 bytes>"),
        ({"mode": "image-to-image", "init_image": b""}, "init_image", "<0 bytes>"),
        ({"mode": "image-to-image", "init_image": "/nowhere/photo.png"}, "init_image", "'/nowhere/photo.png'"),
        ({"mode": "image-to-image", "init_image": Image.new("RGB", (64, 64)), "strength": 0.0}, "strength", "0.0"),
        ({"mode": "inpainting", "init_image": Image.new("RGB", (64, 64))}, "mask", "(none)"),
        (
            {"mode": "inpainting", "init_image": Image.new("RGB", (64, 64)), "mask": Image.new("L", (32, 64))},
            "mask",
            "<L image 32x64>",
        ),
        ({"mask": Image.new("L", (64, 64))}, "mask", "<L image 64x64>"),
    ],
)
def test_bad_input_is_refused_naming_the_field_and_the_value(
    manifest: ModelManifest, changes: dict[str, Any], field: str, value: str
) -> None:
    bad = request("a red mug on a wooden table", 1, **changes)
    with pytest.raises(GenerationInputError) as caught:
        engine_generate(None, manifest, [request("a red mug on a wooden table", 0), bad])
    assert caught.value.field == field
    assert str(caught.value).startswith(f"{field} = {value}: ")


def test_a_truncated_init_image_is_refused(manifest: ModelManifest) -> None:
    buffer = io.BytesIO()
    catalog_draw(Combo("mug", "red", "studio"), rng=random.Random(0)).save(buffer, format="PNG")
    truncated = buffer.getvalue()[: len(buffer.getvalue()) // 2]
    with pytest.raises(GenerationInputError, match=r"init_image = <\d+ bytes>: is not a readable image"):
        request_check(manifest, request("a mug", 0, mode="image-to-image", init_image=truncated))


def test_weighting_and_image_modes_are_refused_for_a_family_that_lacks_them() -> None:
    flux = template_load("flux-schnell")
    with pytest.raises(GenerationInputError, match=r"^prompt = .*weighting is not supported for the flux family"):
        request_check(flux, request("a (red:1.2) mug", 0, width=32, height=32))
    photo = Image.new("RGB", (32, 32))
    with pytest.raises(GenerationInputError, match=r"^mode = 'image-to-image': the flux family makes text-to-image"):
        request_check(flux, request("a mug", 0, width=32, height=32, mode="image-to-image", init_image=photo))
    with pytest.raises(GenerationInputError, match=r"^width = 40: must be a positive multiple of 16"):
        request_check(flux, request("a mug", 0, width=40, height=32))


def test_a_wide_output_is_drawn_wide_and_resampled_to_the_output_size(pipe: Any, manifest: ModelManifest) -> None:
    wide = Variant(
        campaign="wide",
        template="banner",
        template_version=1,
        template_hash="0" * 64,
        variables=(),
        prompt="a red mug on a wooden table",
        negative_prompt="",
        seed=3,
        params=GenerationParams(steps=STEPS, guidance=7.0, width=88, height=48),  # 16:9 at the model's area
        output=OutputSpec(width=1024, height=576),
        model_name="embedded",
        model_manifest_hash=manifest.manifest_hash,
    )
    drawn = engine_generate(pipe, manifest, [variant_request(wide)])[0]
    assert drawn.size == (88, 48)
    (master,) = images_generate(pipe, manifest, [wide])
    assert master.size == (1024, 576) and master.mode == "RGB"


def test_images_are_fitted_in_threads_to_the_same_pixels_in_their_order() -> None:
    rng = np.random.default_rng(5)
    drawings = [Image.fromarray(rng.integers(0, 256, (48, 88, 3), dtype=np.uint8)) for _ in range(7)]
    already = Image.fromarray(rng.integers(0, 256, (288, 512, 3), dtype=np.uint8))
    images = [*drawings[:3], already, *drawings[3:]]
    fitted = images_fit(images, (512, 288))
    expected = [ImageOps.fit(image, (512, 288), Image.Resampling.LANCZOS) for image in drawings]
    assert fitted[3] is already  # at the output size: passed through, not resampled
    assert [image.tobytes() for image in fitted[:3] + fitted[4:]] == [image.tobytes() for image in expected]
    square = images_fit(drawings[:2], (64, 64))  # another aspect: cropped at the centre, never stretched
    assert [image.size for image in square] == [(64, 64)] * 2
    assert square[1].tobytes() == ImageOps.fit(drawings[1], (64, 64), Image.Resampling.LANCZOS).tobytes()


def test_a_drawing_enlarged_at_its_aspect_ratio_is_lanczos_resampled_close_to_pillows() -> None:
    """The usual case, a small model's square drawing to a square output: OpenCV's Lanczos, within
    a few levels of Pillow's and keeping the picture (its mean and its edges)."""
    rng = np.random.default_rng(6)
    drawing = Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).filter(ImageFilter.SMOOTH)
    (fitted,) = images_fit([drawing], (512, 512))
    pillow = np.asarray(drawing.resize((512, 512), Image.Resampling.LANCZOS), dtype=float)
    pixels = np.asarray(fitted, dtype=float)
    assert fitted.size == (512, 512) and fitted.mode == "RGB"
    assert np.abs(pixels - pillow).mean() < 2.0
    assert abs(pixels.mean() - np.asarray(drawing, dtype=float).mean()) < 1.0
    # Every output pixel stays near its source pixel's value (no shift, no stretch).
    nearest = np.asarray(drawing.resize((512, 512), Image.Resampling.NEAREST), dtype=float)
    assert np.abs(pixels - nearest).mean() < np.abs(pixels - np.roll(nearest, 8, axis=1)).mean()
