"""The orchestration adapter as review uses it: the `thread` mode (the dashboard's default for
Regenerate) returns at once and generates the registered assets in the background."""

from __future__ import annotations

import io
import threading
import time
from pathlib import Path

import pytest
from PIL import Image

from prompt_library.selectors import campaign_plan_get
from prompt_library.services import library_load
from provenance.config import provenance_config_from_settings
from provenance.credentials import c2pa_read, reader_context
from provenance.watermark import watermark_read
from review.intake import assets_register
from review.models import Asset
from review.orchestrator import assets_generate_submit
from review.states import AssetState
from tests.fixture_types import SettingsWrapper
from tests.provenance.marks import installation_key

# The run's thread opens its own database connection: it must see committed rows.
pytestmark = pytest.mark.django_db(transaction=True)
DEADLINE_S = 600.0  # Prefect's local mode starts first, then the model loads: generous on a shared CPU


def test_the_thread_mode_returns_at_once_and_the_background_run_puts_the_assets_in_review(
    greenlight_settings: SettingsWrapper, library_dir: Path
) -> None:
    greenlight_settings.GREENLIGHT_ORCHESTRATOR = "thread"
    library_load()
    refs = assets_register(variants=campaign_plan_get(name="demo-spring").variants[:3])
    serials = sorted(ref.serial for ref in refs.values())

    asked = time.monotonic()
    where = assets_generate_submit(serials=serials)
    assert time.monotonic() - asked < 10.0  # it starts the run, it does not wait for it
    assert where == "a background run in the dashboard's process"
    (worker,) = [t for t in threading.enumerate() if t.name == f"assets-generate-{serials[0]}"]

    deadline = time.monotonic() + DEADLINE_S
    while Asset.objects.filter(pk__in=serials, state=AssetState.PENDING).exists():
        assert time.monotonic() < deadline, "the background run did not finish in time"
        time.sleep(0.5)
    worker.join(timeout=60)  # it logs its summary and closes its connection
    assert not worker.is_alive()

    assets = list(Asset.objects.filter(pk__in=serials).order_by("id"))
    assert [(a.state, a.error) for a in assets] == [(AssetState.IN_REVIEW, "")] * 3
    config = provenance_config_from_settings()
    with reader_context(config.signing) as context:
        for asset in assets:
            data = (config.storage_root / asset.file_path).read_bytes()
            assert c2pa_read(data, mime="image/png", context=context).state == "trusted"
            image = Image.open(io.BytesIO(data)).convert("RGB")
            assert watermark_read(image, key=installation_key()).serial == asset.mark_id


def test_campaign_run_on_workers_is_refused_without_a_prefect_server_and_auto_then_runs_here(
    greenlight_settings: SettingsWrapper, library_dir: Path
) -> None:
    from django.core.management import CommandError
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from infra.orchestration import workers_unavailable
    from tests.infra.commands import run

    library_load()
    with temporary_settings({PREFECT_API_URL: None}):
        with pytest.raises(CommandError, match=r"no Prefect server \(set PREFECT_API_URL\)"):
            run("campaign_run", "demo-spring", "--on", "workers")
        # What makes "auto" run it here instead:
        assert workers_unavailable(campaign_plan_get(name="demo-spring")) == "no Prefect server (set PREFECT_API_URL)"
    assert not Asset.objects.exists()  # refused before anything was registered


def test_warming_a_campaign_loads_its_model_only_when_it_has_variants_left_to_make(
    greenlight_settings: SettingsWrapper, library_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipeline import run as run_module
    from pipeline.config import config_from_settings

    library_load()
    loaded: list[str] = []
    monkeypatch.setattr(run_module, "pipeline_load", lambda manifest: loaded.append(manifest.name))
    config = config_from_settings()

    assert run_module.campaign_warm(campaign="demo-spring", config=config) is True
    assert loaded == [campaign_plan_get(name="demo-spring").version.model_name]
    assert run_module.campaign_warm(campaign="no-such-campaign", config=config) is False  # left to the run
    variants = campaign_plan_get(name="demo-spring").variants
    refs = assets_register(variants=variants)
    Asset.objects.filter(pk__in=[ref.serial for ref in refs.values()]).update(state=AssetState.IN_REVIEW)
    assert run_module.campaign_warm(campaign="demo-spring", config=config) is False
    assert len(loaded) == 1
