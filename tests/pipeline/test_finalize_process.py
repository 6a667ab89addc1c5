"""What a finalising pool's process does with one job: the file and the paths to sync, or the
asset's error text with nothing left to sync."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from models.training.catalog_domain import Combo, catalog_draw
from pipeline import finalize_process
from pipeline.config import config_from_settings
from pipeline.finalize_process import SharedPixels, StillJob, process_start, still_finalize
from prompt_library.selectors import campaign_plan_get
from prompt_library.services import library_load
from provenance.watermark_keys import watermark_keys_load
from review.intake import GeneratedFile
from tests.fixture_types import SettingsWrapper

pytestmark = pytest.mark.django_db


@pytest.fixture
def started(greenlight_settings: SettingsWrapper, library_dir: Path) -> Iterator[None]:
    """This process set up as a pool's process is (signer, trust context, storage)."""
    process_start(config_from_settings())
    try:
        yield
    finally:
        finalize_process._STATE["signer"].close()
        finalize_process._STATE["context"].close()
        finalize_process._STATE.clear()


def test_a_job_comes_back_with_its_file_and_the_two_files_written(started: None) -> None:
    library_load()
    variant = campaign_plan_get(name="demo-catalog").variants[0]
    image = catalog_draw(Combo("mug", "red", "studio"), rng=random.Random(1)).resize((256, 256))
    config = config_from_settings()
    mark_key = watermark_keys_load(config.watermark_keys).current

    key, outcome, written = still_finalize(StillJob(variant, 701, 9701, image, {}), mark_key)

    assert key == variant.key and isinstance(outcome, GeneratedFile)
    root = config.storage_root
    assert sorted(written) == sorted(str(root / path) for path in (outcome.file_path, outcome.thumb_path))
    assert all(Path(path).is_file() for path in written)


def test_a_job_that_fails_comes_back_as_its_error_with_nothing_to_sync(started: None) -> None:
    library_load()
    variant = campaign_plan_get(name="demo-catalog").variants[1]
    mark_key = watermark_keys_load(config_from_settings().watermark_keys).current

    key, outcome, written = still_finalize(StillJob(variant, 702, 9702, Image.new("RGB", (100, 100)), {}), mark_key)

    assert key == variant.key and isinstance(outcome, str) and "100" in outcome and written == []


def test_a_job_whose_pixels_are_gone_comes_back_as_its_error(started: None) -> None:
    library_load()
    variant = campaign_plan_get(name="demo-catalog").variants[2]
    mark_key = watermark_keys_load(config_from_settings().watermark_keys).current
    gone = SharedPixels(block="greenlight-no-such-block", offset=0, mode="RGB", size=(256, 256))

    key, outcome, written = still_finalize(StillJob(variant, 703, 9703, gone, {}), mark_key)

    assert key == variant.key and isinstance(outcome, str) and "FileNotFoundError" in outcome and written == []
