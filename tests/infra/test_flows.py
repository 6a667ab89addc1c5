"""The campaign-run flow end to end: real Prefect (local mode), the shipped model, real C2PA
signing and watermarking, PostgreSQL, files on disk."""

from __future__ import annotations

import io
import logging
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import torch
from PIL import Image

import pipeline.run
from infra.orchestration import assets_generate_local, campaign_run_local
from models import ModelIntegrityError, ModelManifest
from pipeline.config import config_from_settings
from pipeline.errors import RunFailedError, RunRequestError
from prompt_library.services import library_load
from prompt_library.specs import Variant
from provenance.credentials import c2pa_read, reader_context
from provenance.errors import SigningError
from provenance.mp4 import mp4_decode
from provenance.watermark import watermark_read, watermark_read_frames
from review.models import Asset
from review.states import AssetState
from tests.factories import clip_campaign_write
from tests.fixture_types import SettingsWrapper
from tests.provenance.marks import installation_key

pytestmark = pytest.mark.django_db(transaction=True)
TRAINED = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"


def stored_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def generated_files(root: Path) -> list[Path]:
    """Stored files a run made (the library's source photos are stored when it loads)."""
    return [p for p in stored_files(root) if p.relative_to(root).parts[0] != "sources"]


def test_demo_campaign_runs_end_to_end_and_a_rerun_duplicates_nothing(
    greenlight_settings: SettingsWrapper, library_dir: Path
) -> None:
    library_load()
    summary = campaign_run_local(campaign="demo-spring", batch_size=5)
    assert (summary.variants, summary.generated, summary.failed, summary.batches) == (12, 12, 0, 3)

    assets = list(Asset.objects.order_by("id"))
    assert len(assets) == 12
    assert {a.state for a in assets} == {AssetState.IN_REVIEW}
    config = config_from_settings()
    with reader_context(config.signing) as context:
        reports = {
            a.pk: c2pa_read((config.storage_root / a.file_path).read_bytes(), mime="image/png", context=context)
            for a in assets
        }
    for asset in assets:
        data = (config.storage_root / asset.file_path).read_bytes()
        assert (config.storage_root / asset.thumb_path).is_file()
        report = reports[asset.pk]
        assert report.state == "trusted", report.validation_codes
        # The embedded model draws smaller than the template's 512 px: the Lanczos step is recorded.
        assert report.actions()[:3] == ["c2pa.created", "c2pa.resized", "c2pa.watermarked"]
        actions = report.assertion("c2pa.actions.v2") or report.assertion("c2pa.actions")
        assert actions is not None
        assert actions["actions"][1]["parameters"]["method"] == "lanczos"
        created = actions["actions"][0]
        assert created["digitalSourceType"] == TRAINED
        assert created["softwareAgent"]["name"] == "embedded-tiny"
        record = report.assertion("org.greenlight.generation")
        assert record is not None
        assert record["prompt"] == asset.prompt and record["seed"] == asset.seed
        assert record["negative_prompt"] == asset.negative_prompt
        assert record["model_manifest_hash"] == asset.model_manifest_hash
        assert record["template_hash"] == asset.prompt_version.content_hash
        assert (record["campaign"], record["steps"], record["guidance"]) == ("demo-spring", 4, 1.0)
        image = Image.open(io.BytesIO(data))
        assert image.size == (512, 512)
        assert watermark_read(image.convert("RGB"), key=installation_key()).serial == asset.mark_id
    # Different seeds and prompts gave different pictures.
    assert len({a.file_sha256 for a in assets}) == 12

    files_before = {p: p.read_bytes() for p in stored_files(config.storage_root)}
    again = campaign_run_local(campaign="demo-spring", batch_size=5)
    assert (again.generated, again.already_done, again.batches) == (0, 12, 0)
    assert Asset.objects.count() == 12
    assert {p: p.read_bytes() for p in stored_files(config.storage_root)} == files_before


def test_a_corrupted_model_folder_is_refused_before_anything_is_generated(
    greenlight_settings: SettingsWrapper, library_dir: Path, tmp_path: Path, settings: SettingsWrapper
) -> None:
    library_load()
    models = tmp_path / "models"
    shipped = Path(settings.BASE_DIR) / "models"
    shutil.copytree(shipped / "manifests", models / "manifests")
    shutil.copytree(shipped / "embedded-tiny", models / "embedded-tiny")
    weights = next((models / "embedded-tiny" / "unet").glob("*.safetensors"))
    data = bytearray(weights.read_bytes())
    data[-10] ^= 0xFF
    weights.write_bytes(bytes(data))
    settings.GREENLIGHT_MODELS_DIR = models / "manifests"
    with pytest.raises(ModelIntegrityError) as err:
        campaign_run_local(campaign="demo-spring", batch_size=8)
    assert "unet/" in str(err.value) and weights.name in str(err.value)
    assert Asset.objects.count() == 0
    assert generated_files(config_from_settings().storage_root) == []


def test_a_missing_signing_certificate_is_refused_before_anything_is_generated(
    greenlight_settings: SettingsWrapper, library_dir: Path, tmp_path: Path
) -> None:
    library_load()
    missing = tmp_path / "nowhere" / "chain.pem"
    greenlight_settings.GREENLIGHT_SIGNING_CHAIN = missing
    with pytest.raises(SigningError) as err:
        campaign_run_local(campaign="demo-spring", batch_size=8)
    assert str(missing) in str(err.value)
    assert Asset.objects.count() == 0
    assert generated_files(config_from_settings().storage_root) == []


def test_bad_run_parameters_are_refused_before_the_flow_starts() -> None:
    with pytest.raises(RunRequestError, match="batch_size") as err:
        campaign_run_local(campaign="demo-spring", batch_size=0)
    assert (err.value.field, err.value.value) == ("batch_size", 0)
    with pytest.raises(RunRequestError, match="campaign") as err:
        campaign_run_local(campaign="../etc", batch_size=4)
    assert (err.value.field, err.value.value) == ("campaign", "../etc")
    with pytest.raises(RunRequestError, match="serials"):
        assets_generate_local(serials=[], batch_size=4)


def test_a_run_with_failed_assets_ends_failed_with_its_summary(
    greenlight_settings: SettingsWrapper, library_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    library_load()

    def no_accelerator(manifest: ModelManifest, variants: Sequence[Variant], **kwargs: Any) -> list[Any]:
        raise RuntimeError("no accelerator")

    monkeypatch.setattr(pipeline.run, "batch_generate", no_accelerator)
    with pytest.raises(RunFailedError, match=r"first failure: batch 1/2: RuntimeError: no accelerator") as err:
        campaign_run_local(campaign="demo-spring", batch_size=8)
    summary = err.value.summary
    assert (summary.variants, summary.generated, summary.failed, summary.batches) == (12, 0, 12, 2)
    assert set(Asset.objects.values_list("state", flat=True)) == {AssetState.FAILED}


def test_a_template_pinned_to_another_model_manifest_is_refused(
    greenlight_settings: SettingsWrapper, library_dir: Path
) -> None:
    from pipeline.errors import ModelPinError
    from prompt_library.models import PromptVersion

    library_load()
    PromptVersion.objects.update(model_manifest_hash="f" * 64)
    with pytest.raises(ModelPinError, match="pins model 'embedded-tiny' manifest ffffffffffff"):
        campaign_run_local(campaign="demo-spring", batch_size=8)
    assert Asset.objects.count() == 0


def test_a_clip_campaign_runs_through_the_flow_to_review_with_signed_watermarked_mp4_masters(
    greenlight_settings: SettingsWrapper, library_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    clip_campaign_write(library_dir)
    library_load()
    # The "greenlight" loggers do not propagate (infra/settings.py): listen on the pipeline's own,
    # once importing the flows (django.setup() again, which configures logging anew) is done.
    import infra.flows  # noqa: F401

    pipeline_logger = logging.getLogger("greenlight.pipeline")
    pipeline_logger.addHandler(caplog.handler)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a shared CPU: one busy thread beats two contending ones
    try:
        summary = campaign_run_local(campaign="test-clips", batch_size=2)
    finally:
        torch.set_num_threads(threads)
        pipeline_logger.removeHandler(caplog.handler)
    assert (summary.variants, summary.generated, summary.failed, summary.batches) == (2, 2, 0, 1)
    # Progress is logged per clip (a record may reach the handler twice: count the distinct lines).
    clip_lines = {r.getMessage().split(" in ")[0] for r in caplog.records if r.getMessage().startswith("clip ")}
    assert len(clip_lines) == 2 and all("8 frames 256x256 at 8 fps" in line for line in clip_lines)

    assets = list(Asset.objects.order_by("id"))
    assert {a.state for a in assets} == {AssetState.IN_REVIEW}
    config = config_from_settings()
    for asset in assets:
        assert asset.mime == "video/mp4" and asset.file_path.endswith(".mp4") and asset.is_video
        data = (config.storage_root / asset.file_path).read_bytes()
        with reader_context(config.signing) as context:
            report = c2pa_read(data, mime="video/mp4", context=context)
        assert report.state == "trusted", report.validation_codes
        record = report.assertion("org.greenlight.generation")
        assert record is not None and record == asset.generation_record
        assert (record["fps"], record["frames"], record["seconds"]) == (8, 8, 1.0)
        assert record["template_hash"] == asset.prompt_version.content_hash
        assert asset.seconds == 1.0
        assert watermark_read_frames(mp4_decode(data), key=installation_key()).serial == asset.mark_id
        assert asset.manifests.filter(kind="master", mime="video/mp4", sha256=asset.file_sha256).exists()
    assert len({a.file_sha256 for a in assets}) == 2  # two colours, two clips
    # A re-run finds both clips.
    again = campaign_run_local(campaign="test-clips", batch_size=2)
    assert (again.generated, again.already_done) == (0, 2)
