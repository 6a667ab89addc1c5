"""One batch: one clip per variant from a video model (a tiny random-weight Wan pipeline, pinned
like a downloaded checkpoint), and alt text extended by a captioning model as files are finalised."""

from __future__ import annotations

import io
import random
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from models import VIDEO_ROLE, ModelManifest
from models.captioner import alt_text_compose, captioner_load
from models.training.catalog_domain import Combo, catalog_draw
from pipeline import batches as batches_module
from pipeline.batches import batch_finalize, batch_generate, finalize_plan, worker_warm
from pipeline.config import config_from_settings
from pipeline.preflight import version_preflight
from prompt_library.selectors import campaign_plan_get, prompt_version_get
from prompt_library.services import library_load
from prompt_library.specs import Variant
from provenance import storage as storage_module
from provenance.credentials import c2pa_read, reader_context
from provenance.mp4 import Clip
from provenance.storage import LocalStorage
from provenance.watermark import watermark_read
from tests.factories import clip_campaign_write
from tests.fixture_types import SettingsWrapper
from tests.pipeline.tiny_wan import WAN_CLIP, WAN_PARAMS
from tests.provenance.marks import installation_key

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_torch_thread: None) -> None:
    """Every test here runs on one torch thread (tests/conftest.py)."""


def _mugs(colours: tuple[str, ...], side: int) -> tuple[tuple[Variant, ...], list[Image.Image]]:
    """The library loaded, and the first demo-catalog variants with a mug drawn in each colour."""
    library_load()
    variants = campaign_plan_get(name="demo-catalog").variants[: len(colours)]
    images = [
        catalog_draw(Combo("mug", colour, "studio"), rng=random.Random(i)).resize((side, side))
        for i, colour in enumerate(colours)
    ]
    return variants, images


def test_a_clip_template_on_a_video_model_passes_preflight_and_makes_one_clip_per_variant(
    wan_library: Path,
) -> None:
    clip_campaign_write(wan_library, model="tiny-wan", params=WAN_PARAMS, output=WAN_CLIP, seeds=(1, 2))
    library_load(root=wan_library)
    manifest = version_preflight(prompt_version_get(template="test-clip", number=1), config_from_settings())
    assert manifest.role == VIDEO_ROLE
    variants = campaign_plan_get(name="test-clips").variants[:2]
    clips = [clip for clip in batch_generate(manifest, variants) if isinstance(clip, Clip)]
    assert len(clips) == 2
    for clip in clips:
        # 1 s at 8 fps is 8 frames, shaped to Wan's 4k + 1; drawn at 16 px, returned at the output size.
        assert (len(clip.frames), clip.fps, clip.size) == (9, 8, (256, 256))
    first, second = clips
    assert first.frames[0].tobytes() != second.frames[0].tobytes()  # the seeds differ


def test_a_captioner_adds_what_it_sees_after_the_templates_alt_text(
    greenlight_settings: SettingsWrapper, library_dir: Path, captioner_dir: Path
) -> None:
    variants, images = _mugs(("red", "blue", "green"), 512)
    config = replace(config_from_settings(), models_dir=captioner_dir, captioner="tiny-captioner")
    done, failed = batch_finalize(variants, [101, 102, 103], images, config, mark_ids=[9101, 9102, 9103])
    assert failed == []
    captions = captioner_load("tiny-captioner", manifests_dir=captioner_dir).captions(images)
    for file, variant, caption in zip(done, variants, captions, strict=True):
        assert file.alt_text == alt_text_compose(variant.alt_text, caption)
        assert file.alt_text.startswith("Catalog photo: a ")
    # Without a captioner the variant's own alt text stands.
    plain, _ = batch_finalize(variants[:1], [104], images[:1], replace(config, captioner=""), mark_ids=[9104])
    assert plain[0].alt_text == ""


@pytest.mark.parametrize(
    ("device", "cores", "threads", "overlap", "finalisers", "yields"),
    [
        ("cuda:0", 8, 2, True, 7, 0),  # an accelerator: the cores it does not need finalise meanwhile
        ("cpu", 8, 2, True, 6, 0),  # a CPU with cores the model does not use: those finalise meanwhile
        ("cpu", 2, 2, True, 1, 1),  # every core runs the model: it gives one up to the batch before
        ("cpu", 8, 8, True, 1, 1),
        ("cpu", 1, 4, False, 1, 0),  # one core: finalise between batches
        ("cpu", 4, 1, True, 3, 0),
    ],
)
def test_the_post_processing_plan_gives_generation_its_cores_and_finalising_the_rest(
    device: str, cores: int, threads: int, overlap: bool, finalisers: int, yields: int
) -> None:
    plan = finalize_plan(device=device, cores=cores, generation_threads=threads)

    assert (plan.overlap, plan.threads, plan.yields) == (overlap, finalisers, yields)
    assert plan.reason.startswith(device.split(":")[0])


def test_a_batch_finalised_on_two_threads_keeps_its_order_and_every_master_verifies(
    greenlight_settings: SettingsWrapper, library_dir: Path
) -> None:
    variants, images = _mugs(("red", "blue", "green", "yellow", "white"), 512)
    images[3] = Image.new("RGB", (100, 100))  # too small to carry the mark: fails alone
    config = config_from_settings()

    done, failed = batch_finalize(
        variants, [201, 202, 203, 204, 205], images, config, mark_ids=[9201, 9202, 9203, 9204, 9205], threads=2
    )

    assert [file.key for file in done] == [v.key for i, v in enumerate(variants) if i != 3]
    assert [key for key, _ in failed] == [variants[3].key] and "100" in failed[0][1]
    storage = LocalStorage(config.storage_root)
    key = installation_key()
    with reader_context(config.signing) as context:
        for file, mark_id in zip(done, [9201, 9202, 9203, 9205], strict=True):
            master = storage.read(file.file_path)
            assert c2pa_read(master, mime="image/png", context=context).state == "trusted"
            assert watermark_read(Image.open(io.BytesIO(master)).convert("RGB"), key=key).serial == mark_id


def test_a_slow_asset_does_not_hold_back_the_rest_of_its_batch(
    greenlight_settings: SettingsWrapper, library_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    variants, images = _mugs(("red", "blue", "green", "yellow", "white"), 256)
    others_done = threading.Event()
    finished: list[int] = []
    by_thread: dict[int, list[int]] = {}
    finalize = batches_module.image_finalize

    def timed(variant: Any, *, serial: int, **kwargs: Any) -> Any:
        by_thread.setdefault(threading.get_ident(), []).append(serial)
        if serial == 401:  # the first asset is slow: the other thread makes the rest meanwhile
            assert others_done.wait(120), f"only {finished} were made beside the slow asset"
        made = finalize(variant, serial=serial, **kwargs)
        finished.append(serial)
        if set(finished) >= {402, 403, 404, 405}:
            others_done.set()
        return made

    monkeypatch.setattr(batches_module, "image_finalize", timed)
    done, failed = batch_finalize(
        variants,
        [401, 402, 403, 404, 405],
        images,
        config_from_settings(),
        mark_ids=[9401, 9402, 9403, 9404, 9405],
        threads=2,
    )

    assert failed == [] and [file.key for file in done] == [v.key for v in variants]  # the batch's order
    assert sorted(by_thread.values()) == [[401], [402, 403, 404, 405]]


def test_a_batch_whose_files_cannot_be_synced_hands_none_of_them_over(
    greenlight_settings: SettingsWrapper, library_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    variants, images = _mugs(("red", "blue"), 512)

    def failing(root: Path) -> bool:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(storage_module, "_syncfs", failing)
    done, failed = batch_finalize(variants, [301, 302], images, config_from_settings(), mark_ids=[9301, 9302])

    assert done == []
    assert [key for key, _ in failed] == [v.key for v in variants]
    assert all("cannot sync 4 files" in text and "No space left on device" in text for _, text in failed)


def test_finalising_needs_at_least_one_thread(greenlight_settings: SettingsWrapper) -> None:
    with pytest.raises(ValueError, match="threads = 0"):
        batch_finalize([], [], [], config_from_settings(), mark_ids=[], threads=0)


def test_a_warmed_worker_holds_its_model_and_gets_the_plan_for_its_device(
    greenlight_settings: SettingsWrapper, embedded: tuple[Any, ModelManifest]
) -> None:
    pipe, manifest = embedded

    plan = worker_warm([manifest], config_from_settings())

    assert plan == finalize_plan(device="cpu")
    assert batches_module.pipeline_load(manifest) is pipe  # loaded once, kept for the process
