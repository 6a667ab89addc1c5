"""A whole run through the plain run functions, with no Prefect anywhere: the shipped model, real
C2PA signing and watermarking, PostgreSQL, files on disk, progress through a callback."""

from __future__ import annotations

import io
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import torch
from PIL import Image

from models import ModelManifest
from pipeline import batches, run
from pipeline.batches import FinalizePlan
from pipeline.config import config_from_settings
from pipeline.errors import RunRequestError
from pipeline.run import assets_generate, campaign_run
from pipeline.summary import RunProgress
from prompt_library.selectors import campaign_plan_get
from prompt_library.services import library_load
from prompt_library.specs import Variant
from provenance.credentials import c2pa_read, reader_context
from provenance.watermark import watermark_read
from review.intake import assets_register
from review.models import Asset
from review.states import AssetState
from tests.fixture_types import SettingsWrapper
from tests.provenance.marks import installation_key

pytestmark = pytest.mark.django_db


def stored_files(root: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()} if root.exists() else {}


def test_a_campaign_runs_into_review_with_signed_files_reporting_each_batch_and_a_rerun_makes_nothing(
    greenlight_settings: SettingsWrapper, library_dir: Path
) -> None:
    library_load()
    config = config_from_settings()
    seen: list[RunProgress] = []
    summary = campaign_run(campaign="demo-spring", batch_size=5, config=config, progress=seen.append)
    assert (summary.label, summary.campaign, summary.variants) == ("campaign demo-spring", "demo-spring", 12)
    assert (summary.generated, summary.already_done, summary.failed, summary.batches) == (12, 0, 0, 3)
    assert summary.failures == () and summary.seconds > 0
    assert summary.line().startswith("campaign demo-spring: 12 variants, 12 generated, 0 already done, 0 failed")
    # The callback saw every batch, in order, as it was handed over.
    assert [(p.batches_done, p.batches_total, p.generated, p.failed) for p in seen] == [
        (1, 3, 5, 0),
        (2, 3, 10, 0),
        (3, 3, 12, 0),
    ]
    assert {p.label for p in seen} == {"campaign demo-spring"} and seen[-1].percent == 100.0
    assert [p.seconds for p in seen] == sorted(p.seconds for p in seen)

    assets = list(Asset.objects.order_by("id"))
    assert len(assets) == 12 and {a.state for a in assets} == {AssetState.IN_REVIEW}
    with reader_context(config.signing) as context:
        for asset in assets:
            data = (config.storage_root / asset.file_path).read_bytes()
            assert (config.storage_root / asset.thumb_path).is_file()
            report = c2pa_read(data, mime="image/png", context=context)
            assert report.state == "trusted", report.validation_codes
            record = report.assertion("org.greenlight.generation")
            assert record is not None and record["seed"] == asset.seed and record["prompt"] == asset.prompt
            image = Image.open(io.BytesIO(data)).convert("RGB")
            assert watermark_read(image, key=installation_key()).serial == asset.mark_id
            assert asset.manifests.filter(kind="master", sha256=asset.file_sha256).exists()
    assert len({a.file_sha256 for a in assets}) == 12

    before = stored_files(config.storage_root)
    again_seen: list[RunProgress] = []
    again = campaign_run(campaign="demo-spring", batch_size=5, config=config, progress=again_seen.append)
    assert (again.generated, again.already_done, again.failed, again.batches) == (0, 12, 0, 0)
    assert again_seen == []
    assert Asset.objects.count() == 12
    assert stored_files(config.storage_root) == before


def test_a_failed_batch_and_a_failed_file_are_recorded_on_their_assets_while_the_rest_go_through(
    greenlight_settings: SettingsWrapper, library_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    library_load()
    config = config_from_settings()
    generated: list[list[str]] = []
    real_generate, real_finalize = run.batch_generate, batches.image_finalize

    def second_batch_fails(manifest: ModelManifest, variants: Sequence[Variant], **kwargs: Any) -> list[Any]:
        generated.append([v.key for v in variants])
        if len(generated) == 2:
            raise RuntimeError("the accelerator fell over")
        return real_generate(manifest, variants, **kwargs)

    first_key = campaign_plan_get(name="demo-spring").variants[0].key

    def first_file_fails(variant: Variant, **kwargs: Any) -> Any:
        if variant.key == first_key:
            raise ValueError("the disk is full")
        return real_finalize(variant, **kwargs)

    monkeypatch.setattr(run, "batch_generate", second_batch_fails)
    monkeypatch.setattr(batches, "image_finalize", first_file_fails)
    seen: list[RunProgress] = []
    summary = campaign_run(campaign="demo-spring", batch_size=5, config=config, progress=seen.append)
    assert (summary.generated, summary.failed, summary.batches) == (6, 6, 3)
    assert summary.failures == ("ValueError: the disk is full", "batch 2/3: RuntimeError: the accelerator fell over")
    assert [(p.batches_done, p.generated, p.failed) for p in seen] == [(1, 4, 1), (2, 4, 6), (3, 6, 6)]

    failed = {a.key: a for a in Asset.objects.filter(state=AssetState.FAILED)}
    assert set(failed) == {first_key, *generated[1]}
    assert failed[first_key].error.startswith("ValueError: the disk is full")
    assert all(failed[key].error.startswith("RuntimeError: the accelerator fell over") for key in generated[1])
    assert all(a.file_path == "" for a in failed.values())
    assert Asset.objects.filter(state=AssetState.IN_REVIEW).count() == 6

    # A second run retries exactly the failed ones (the accelerator and the disk are back).
    monkeypatch.setattr(batches, "image_finalize", real_finalize)
    again = campaign_run(campaign="demo-spring", batch_size=8, config=config)
    assert (again.generated, again.already_done, again.failed, again.batches) == (6, 6, 0, 1)
    assert set(Asset.objects.values_list("state", flat=True)) == {AssetState.IN_REVIEW}
    assert sorted(generated[-1]) == sorted(failed)


def test_registered_assets_are_generated_by_serial_and_those_already_made_are_left_alone(
    greenlight_settings: SettingsWrapper, library_dir: Path
) -> None:
    library_load()
    config = config_from_settings()
    refs = assets_register(variants=campaign_plan_get(name="demo-spring").variants[:3])
    serials = sorted(ref.serial for ref in refs.values())
    seen: list[RunProgress] = []
    summary = assets_generate(serials=serials[:2], batch_size=8, config=config, progress=seen.append)
    assert (summary.variants, summary.generated, summary.already_done, summary.batches) == (2, 2, 0, 1)
    assert summary.label == f"assets {serials[0]}, {serials[1]}" and summary.campaign == ""
    assert [(p.batches_done, p.batches_total, p.generated) for p in seen] == [(1, 1, 2)]
    states = dict(Asset.objects.values_list("id", "state"))
    assert states == {serials[0]: "in_review", serials[1]: "in_review", serials[2]: "pending"}
    again = assets_generate(serials=serials, batch_size=8, config=config)
    assert (again.variants, again.generated, again.already_done) == (3, 1, 2)


def test_a_batch_size_below_one_is_refused_naming_it(greenlight_settings: SettingsWrapper, library_dir: Path) -> None:
    library_load()
    with pytest.raises(RunRequestError, match=r"^batch_size = 0: ") as err:
        campaign_run(campaign="demo-spring", batch_size=0, config=config_from_settings())
    assert (err.value.field, err.value.value) == ("batch_size", 0)
    assert Asset.objects.count() == 0


def test_batches_keep_the_variants_order_and_only_the_last_is_shorter() -> None:
    items = list(range(12))
    chunks = run._chunked(items, 5)
    assert [len(c) for c in chunks] == [5, 5, 2]
    assert [i for c in chunks for i in c] == items
    assert run._chunked(items, 12) == [items]
    assert run._chunked([], 5) == []


@pytest.mark.parametrize(
    "plan",
    [
        FinalizePlan(overlap=False, threads=2, reason="between batches, on two threads"),
        FinalizePlan(overlap=True, threads=2, nice=5, reason="beside generation, two threads at nice 5"),
        FinalizePlan(overlap=True, threads=1, yields=1, reason="beside generation, on a core the model gives up"),
    ],
    ids=["between-batches", "beside-generation-niced", "beside-generation-yielding"],
)
def test_each_post_processing_plan_makes_every_asset_signed_marked_and_reported_in_order(
    plan: FinalizePlan, greenlight_settings: SettingsWrapper, library_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    library_load()
    config = config_from_settings()
    seen: list[RunProgress] = []
    priority = os.getpriority(os.PRIO_PROCESS, 0)  # this thread's, on Linux
    besides: list[object] = []
    judged_on: list[str] = []
    generate, judge = run.batch_generate, run.batch_judge

    def generate_recorded(manifest: ModelManifest, variants: Sequence[Variant], *, beside: Any = None) -> Any:
        besides.append(beside)
        return generate(manifest, variants, beside=beside)

    def judge_recorded(*args: Any) -> Any:
        judged_on.append(threading.current_thread().name)
        return judge(*args)

    finalised_on: list[int] = []
    finalize = run.batch_finalize

    def finalize_recorded(*args: Any, threads: int, **kwargs: Any) -> Any:
        finalised_on.append(threads)
        return finalize(*args, threads=threads, **kwargs)

    monkeypatch.setattr(run, "batch_generate", generate_recorded)
    monkeypatch.setattr(run, "batch_judge", judge_recorded)
    monkeypatch.setattr(run, "batch_finalize", finalize_recorded)
    threads = torch.get_num_threads()
    torch.set_num_threads(2)  # a yielding plan gives one of them up
    try:
        summary = campaign_run(campaign="demo-spring", batch_size=5, config=config, progress=seen.append, finalize=plan)
    finally:
        torch.set_num_threads(threads)

    assert (summary.generated, summary.failed, summary.batches) == (12, 0, 3)
    assert [(p.batches_done, p.generated) for p in seen] == [(1, 5), (2, 10), (3, 12)]
    assets = list(Asset.objects.order_by("id"))
    assert {a.state for a in assets} == {AssetState.IN_REVIEW}
    with reader_context(config.signing) as context:
        for asset in assets:
            data = (config.storage_root / asset.file_path).read_bytes()
            assert c2pa_read(data, mime="image/png", context=context).state == "trusted"
            image = Image.open(io.BytesIO(data)).convert("RGB")
            assert watermark_read(image, key=installation_key()).serial == asset.mark_id
    assert os.getpriority(os.PRIO_PROCESS, 0) == priority  # only the finalising threads were lowered
    # Beside generation, each batch but the first generates beside the finalising of the one
    # before, giving up the cores the plan says; captions and safety are model work, done here.
    if plan.overlap:
        assert besides[0] is None
        assert [(type(b).__name__, getattr(b, "cores", None)) for b in besides[1:]] == [("Beside", plan.yields)] * 2
    else:
        assert besides == [None] * 3
    assert judged_on == [threading.current_thread().name] * 3
    # The last batch, with nothing generating beside it, is finalised on the cores given up too.
    assert finalised_on == [plan.threads, plan.threads, plan.alone if plan.overlap else plan.threads]
