from __future__ import annotations

import json
from typing import Any

import pytest
from diffusers import DDPMScheduler, DPMSolverMultistepScheduler, EulerDiscreteScheduler

from models.errors import SchedulerError
from models.loading import scheduler_build
from models.registry import manifest_load, template_load
from models.schedulers import SCHEDULERS, scheduler_unsuited, suited_names

# Stable Diffusion 1.x/2.x's own schedule: epsilon prediction, no zero-terminal-SNR rescaling.
SD_SCHEDULE: Any = DDPMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012, steps_offset=1)


def test_every_sampler_suits_a_stable_diffusion_schedule() -> None:
    assert all(scheduler_unsuited(name, SD_SCHEDULE.config) is None for name in SCHEDULERS)
    assert suited_names(SD_SCHEDULE.config) == "(empty: the model's own), " + ", ".join(SCHEDULERS)


def test_karras_spacing_is_the_one_sampler_unsuited_to_a_zero_terminal_snr_schedule() -> None:
    config = manifest_load("embedded").scheduler_config
    unsuited = {name for name in SCHEDULERS if scheduler_unsuited(name, config)}
    assert unsuited == {"dpm++-karras"}
    assert "dpm++-karras" not in suited_names(config)
    assert scheduler_unsuited("", config) is None  # the model's own


def test_the_refusals_reason_holds_karras_spacing_would_start_at_sigma_4096() -> None:
    config = dict(manifest_load("embedded").scheduler_config)
    karras = DPMSolverMultistepScheduler.from_config(config, use_karras_sigmas=True)
    karras.set_timesteps(20)
    assert float(karras.sigmas[0]) == pytest.approx(4096, rel=1e-3)
    # most of the 20 steps at sigmas above 20, where a 64x64 picture is noise; the model's own spacing spends 2
    own = EulerDiscreteScheduler.from_config(config)  # the model's own
    own.set_timesteps(20)
    assert int((karras.sigmas[:-1] > 20).sum()) >= 10
    assert int((own.sigmas[:-1] > 20).sum()) <= 2


def test_building_an_unsuited_sampler_raises_and_a_suited_one_keeps_the_models_schedule() -> None:
    embedded = EulerDiscreteScheduler.from_config(dict(manifest_load("embedded").scheduler_config))
    with pytest.raises(SchedulerError, match=r"^scheduler = 'dpm\+\+-karras': Karras spacing does not suit"):
        scheduler_build("dpm++-karras", embedded)
    dpm = scheduler_build("dpm++", embedded)
    assert type(dpm).__name__ == "DPMSolverMultistepScheduler"
    assert (dpm.config.prediction_type, dpm.config.rescale_betas_zero_snr) == ("v_prediction", True)
    assert dpm.config.timestep_spacing == "trailing"
    karras = scheduler_build("dpm++-karras", SD_SCHEDULE)
    assert karras.config.use_karras_sigmas is True
    assert scheduler_build("", embedded) is embedded


def test_a_template_without_a_folder_has_no_scheduler_config_and_refuses_nothing() -> None:
    template = template_load("sd-turbo")
    assert dict(template.scheduler_config) == {}
    assert scheduler_unsuited("dpm++-karras", template.scheduler_config) is None


def test_the_scheduler_config_is_read_from_the_folder() -> None:
    manifest = manifest_load("embedded")
    shipped = json.loads((manifest.folder / "scheduler" / "scheduler_config.json").read_text())
    assert dict(manifest.scheduler_config) == shipped
