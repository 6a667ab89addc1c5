"""Choosing device and dtype: a plain function of the manifest, the request and the machine.

The machine is the one true boundary here, so tests describe it with a ``CudaProbe`` instead of
needing a GPU.
"""

from __future__ import annotations

import pickle
from dataclasses import replace

import pytest
import torch

from models.device import CudaProbe, device_choose
from models.errors import DeviceError
from models.loading import pipeline_load
from models.manifest import MemoryOptions, ModelManifest
from models.registry import manifest_load, template_load

NO_GPU = CudaProbe(available=False)
AMPERE = CudaProbe(available=True, device_count=2, bf16=(True, True))
TURING = CudaProbe(available=True, device_count=1, bf16=(False,))


@pytest.fixture(scope="module")
def templates() -> dict[str, ModelManifest]:
    names = ("sd-turbo", "sdxl-base", "flux-schnell", "wan2.1-t2v-1.3b")
    return {name: template_load(name) for name in names}


def test_without_a_gpu_everything_runs_in_float32_on_the_cpu(templates: dict[str, ModelManifest]) -> None:
    for manifest in templates.values():
        plan = device_choose(manifest, None, environ={}, probe=NO_GPU)
        assert (plan.device, plan.dtype, dict(plan.component_dtypes)) == ("cpu", "float32", {})
    flux = device_choose(templates["flux-schnell"], None, environ={}, probe=NO_GPU)
    assert any("bfloat16 is for CUDA" in reason for reason in flux.reasons)


@pytest.mark.parametrize(
    ("template", "probe", "dtype"),
    [
        ("sd-turbo", AMPERE, "float16"),  # auto: float16 for the UNet families
        ("sdxl-base", TURING, "float16"),
        ("flux-schnell", AMPERE, "bfloat16"),  # the manifest's dtype
        ("flux-schnell", TURING, "float32"),  # float16 would overflow: float32, not float16
        ("wan2.1-t2v-1.3b", AMPERE, "bfloat16"),
    ],
)
def test_on_cuda_the_dtype_follows_the_manifest_the_family_and_the_gpu(
    templates: dict[str, ModelManifest], template: str, probe: CudaProbe, dtype: str
) -> None:
    plan = device_choose(templates[template], None, environ={}, probe=probe)
    assert (plan.device, plan.dtype) == ("cuda:0", dtype)
    assert any(reason.startswith(f"dtype {dtype}") for reason in plan.reasons)


def test_an_auto_dtype_flux_manifest_gets_bfloat16_where_the_gpu_has_it(templates: dict[str, ModelManifest]) -> None:
    flux = replace(templates["flux-schnell"], dtype="auto")
    assert device_choose(flux, None, environ={}, probe=AMPERE).dtype == "bfloat16"
    assert device_choose(flux, None, environ={}, probe=TURING).dtype == "float32"


def test_wan_decodes_in_float32_on_cuda_as_its_manifest_asks(templates: dict[str, ModelManifest]) -> None:
    plan = device_choose(templates["wan2.1-t2v-1.3b"], "cuda", environ={}, probe=AMPERE)
    assert dict(plan.component_dtypes) == {"vae": "float32"}
    assert plan.torch_dtype_argument() == {"default": torch.bfloat16, "vae": torch.float32}


def test_greenlight_device_forces_the_device_unless_the_caller_names_one(templates: dict[str, ModelManifest]) -> None:
    sd = templates["sd-turbo"]
    assert device_choose(sd, None, environ={"GREENLIGHT_DEVICE": "cpu"}, probe=AMPERE).device == "cpu"
    assert device_choose(sd, None, environ={"GREENLIGHT_DEVICE": "cuda:1"}, probe=AMPERE).device == "cuda:1"
    assert device_choose(sd, "cuda:0", environ={"GREENLIGHT_DEVICE": "cpu"}, probe=AMPERE).device == "cuda:0"


@pytest.mark.parametrize(
    ("requested", "environ", "probe", "named"),
    [
        (None, {"GREENLIGHT_DEVICE": "tpu"}, AMPERE, "GREENLIGHT_DEVICE is 'tpu'"),
        (None, {"GREENLIGHT_DEVICE": "cuda:2"}, AMPERE, "GREENLIGHT_DEVICE is 'cuda:2'"),
        ("cuda", {}, NO_GPU, "device argument is 'cuda'"),
        ("gpu0", {}, AMPERE, "device argument is 'gpu0'"),
    ],
)
def test_a_device_that_cannot_be_used_is_refused_naming_setting_and_value(
    templates: dict[str, ModelManifest], requested: str | None, environ: dict[str, str], probe: CudaProbe, named: str
) -> None:
    with pytest.raises(DeviceError) as err:
        device_choose(templates["sd-turbo"], requested, environ=environ, probe=probe)
    assert named in str(err.value)
    copy = pickle.loads(pickle.dumps(err.value))
    assert str(copy) == str(err.value) and vars(copy) == vars(err.value)


def test_cpu_offload_happens_only_when_the_manifest_asks_and_only_on_cuda(templates: dict[str, ModelManifest]) -> None:
    flux = templates["flux-schnell"]
    assert not device_choose(flux, None, environ={}, probe=AMPERE).cpu_offload
    offloaded = replace(flux, memory=MemoryOptions(cpu_offload=True))
    assert device_choose(offloaded, None, environ={}, probe=AMPERE).cpu_offload
    assert not device_choose(offloaded, "cpu", environ={}, probe=AMPERE).cpu_offload


def test_a_bad_device_is_refused_before_anything_is_loaded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GREENLIGHT_DEVICE", "cuda:7")
    with pytest.raises(DeviceError) as err:
        pipeline_load(manifest_load("embedded-tiny"))
    assert err.value.setting == "GREENLIGHT_DEVICE" and err.value.value == "cuda:7"
