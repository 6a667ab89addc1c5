"""Where and in what precision a worker runs a model, and the memory savers it switches on.

``device_choose`` is a plain function of the manifest, the request and what the machine offers, so
the choice is tested without a GPU and refused (``DeviceError``) before any GPU work.
``pipeline_prepare`` applies the plan to a loaded pipeline and records what it did.

The rules: CUDA runs the manifest's dtype; with ``dtype: auto``, bfloat16 for families whose
activations overflow float16 (FLUX, Wan) when the GPU has it, else float16. CPU always runs float32:
half precision there is slow or unsupported. ``GREENLIGHT_DEVICE`` (``cpu``, ``cuda``, ``cuda:N``)
forces the device when the caller does not name one.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from models.errors import DeviceError
from models.manifest import ModelManifest

if TYPE_CHECKING:
    import torch

DEVICE_ENV = "GREENLIGHT_DEVICE"
_DEVICE_RE = re.compile(r"^(auto|cpu|cuda(?::(\d+))?)$")
# Output side from which VAE slicing and tiling go on by themselves ("auto"): a 1024² decode of a
# batch is where the VAE, not the denoiser, sets peak memory.
VAE_SAVERS_MIN_SIDE = 1024
# Attention processors that call torch's scaled_dot_product_attention directly.
_SDPA_PROCESSORS = frozenset(
    {"AttnProcessor2_0", "FusedAttnProcessor2_0", "AttnAddedKVProcessor2_0", "JointAttnProcessor2_0"}
)
# diffusers' attention dispatcher backends that are torch's SDPA.
_SDPA_BACKENDS = frozenset({"native", "_native_cudnn", "_native_efficient", "_native_flash", "_native_math"})


@dataclass(frozen=True)
class CudaProbe:
    """What the machine offers, read from torch by ``cuda_probe`` (tests pass their own)."""

    available: bool
    device_count: int = 0
    bf16: tuple[bool, ...] = ()  # per device: native bfloat16 (compute capability >= 8.0)


def cuda_probe() -> CudaProbe:
    """Ask torch which CUDA devices exist and which compute natively in bfloat16."""
    import torch

    if not torch.cuda.is_available():
        return CudaProbe(available=False)
    count = torch.cuda.device_count()
    # Emulated bf16 (pre-Ampere) is slower than float32 and no safer than float16: count it as none.
    bf16 = tuple(torch.cuda.get_device_capability(i) >= (8, 0) for i in range(count))
    return CudaProbe(available=True, device_count=count, bf16=bf16)


@dataclass(frozen=True)
class DevicePlan:
    """The device and dtypes a pipeline will run in, the savers that depend on the device, and why."""

    device: str  # "cpu" or "cuda:N"
    dtype: str  # "float32", "float16" or "bfloat16"
    component_dtypes: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    cpu_offload: bool = False
    reasons: tuple[str, ...] = ()

    def torch_dtype_argument(self) -> torch.dtype | dict[str, torch.dtype]:
        """What ``from_pretrained(torch_dtype=...)`` takes: one dtype, or per component with a default."""
        import torch

        default = getattr(torch, self.dtype)
        if not self.component_dtypes:
            return default
        return {"default": default, **{name: getattr(torch, d) for name, d in self.component_dtypes.items()}}


def _requested(requested: str | None, environ: Mapping[str, str]) -> tuple[str, str]:
    """The device asked for and who asked: the argument, else the environment, else auto."""
    if requested is not None:
        return requested.strip(), "device argument"
    value = environ.get(DEVICE_ENV, "").strip()
    return (value, DEVICE_ENV) if value else ("auto", "default")


def device_choose(
    manifest: ModelManifest,
    requested: str | None,
    *,
    environ: Mapping[str, str] | None = None,
    probe: CudaProbe | None = None,
) -> DevicePlan:
    """Choose the device and dtype for ``manifest`` (see the module docstring for the rules).

    ``requested`` (``cpu``, ``cuda``, ``cuda:N`` or ``auto``) wins over ``GREENLIGHT_DEVICE``.
    Raises DeviceError, naming the setting and its value, for a malformed or absent device.
    """
    environ = os.environ if environ is None else environ
    value, setting = _requested(requested, environ)
    match = _DEVICE_RE.match(value)
    if match is None:
        raise DeviceError(setting=setting, value=value, problem="expected cpu, cuda, cuda:N or auto")
    reasons: list[str] = []
    if value != "cpu" and probe is None:
        probe = cuda_probe()
    if value == "cpu" or (value == "auto" and probe is not None and not probe.available):
        device = "cpu"
        reasons.append(f"device cpu ({setting})" if value == "cpu" else "device cpu (no CUDA device available)")
    else:
        assert probe is not None  # asked for above whenever the device is not cpu
        if not probe.available:
            raise DeviceError(setting=setting, value=value, problem="no CUDA device is available on this machine")
        index = int(match.group(2) or 0)
        if index >= probe.device_count:
            raise DeviceError(
                setting=setting, value=value, problem=f"this machine has {probe.device_count} CUDA device(s)"
            )
        device = f"cuda:{index}"
        reasons.append(f"device {device} ({setting})" if value != "auto" else f"device {device} (CUDA available)")

    family = manifest.family_info
    component_dtypes: dict[str, str] = {}
    if device == "cpu":
        dtype = "float32"
        note = "" if manifest.dtype in ("auto", "float32") else f"; the manifest's {manifest.dtype} is for CUDA"
        reasons.append(f"dtype float32 (CPU kernels are slow or missing in half precision{note})")
        offload = False
        if manifest.memory.cpu_offload:
            reasons.append("model CPU offload off (already on the CPU)")
    else:
        assert probe is not None  # asked for above whenever the device is not cpu
        bf16 = probe.bf16[int(device.split(":")[1])] if probe.bf16 else False
        wanted = manifest.dtype
        if wanted == "auto":
            wanted = "bfloat16" if family.prefers_bf16 else "float16"
            why = f"family {manifest.family!r} " + ("overflows float16" if family.prefers_bf16 else "runs in float16")
        else:
            why = "the manifest's dtype"
        if wanted == "bfloat16" and not bf16:
            dtype = "float32" if family.prefers_bf16 else "float16"
            reasons.append(
                f"dtype {dtype} (bfloat16 asked for by {why}, but {device} has no native bfloat16"
                + ("; float16 would overflow, so float32 at twice the memory)" if dtype == "float32" else ")")
            )
        else:
            dtype = wanted
            reasons.append(f"dtype {dtype} ({why})")
        for option, spec in family.options.items():
            if spec.kind == "component-dtype" and option in manifest.options:
                component = option.removesuffix("_dtype")
                component_dtypes[component] = str(manifest.options[option])
                reasons.append(f"{component} in {manifest.options[option]} (options.{option})")
        offload = manifest.memory.cpu_offload
        if offload:
            reasons.append("model CPU offload on (memory.cpu_offload)")
    return DevicePlan(
        device=device,
        dtype=dtype,
        component_dtypes=MappingProxyType(component_dtypes),
        cpu_offload=offload,
        reasons=tuple(reasons),
    )


@dataclass(frozen=True)
class PipelineSetup:
    """What ``pipeline_prepare`` did to a loaded pipeline, for the worker's log and for tests."""

    plan: DevicePlan
    vae_slicing: bool
    vae_tiling: bool
    attention: tuple[str, ...]  # the denoiser's attention processors, with their backend
    sdpa: bool  # every attention processor runs torch's scaled_dot_product_attention
    batch_invariant: bool = False  # an image is bit-identical alone and in any batch (CPU)

    def lines(self) -> list[str]:
        """One line per decision, in the order they were made."""
        savers = [name for name, on in (("slicing", self.vae_slicing), ("tiling", self.vae_tiling)) if on]
        return [
            *self.plan.reasons,
            f"VAE {' and '.join(savers) if savers else 'slicing and tiling off'}",
            f"attention {', '.join(self.attention) or 'none found'} ({'SDPA' if self.sdpa else 'not SDPA'})",
            "batch-invariant layers (same image alone or in a batch)"
            if self.batch_invariant
            else "stock layers (batching may move the last bits)",
        ]


def _saver_wanted(setting: bool | None, *, auto_family: bool, side: int) -> bool:
    if setting is not None:
        return setting
    return auto_family and side >= VAE_SAVERS_MIN_SIDE


def _active_attention_backend() -> str:
    """diffusers' process-wide attention backend (the ``DIFFUSERS_ATTN_BACKEND`` setting)."""
    try:
        from diffusers.models.attention_dispatch import _AttentionBackendRegistry

        backend = _AttentionBackendRegistry.get_active_backend()[0]
    except (ImportError, AttributeError, KeyError):  # diffusers moved it: fall back to its setting
        return os.environ.get("DIFFUSERS_ATTN_BACKEND", "native")
    return str(getattr(backend, "value", backend))


def attention_describe(denoiser: Any) -> tuple[tuple[str, ...], bool]:
    """Name the attention processors of a UNet or transformer and say whether all of them are SDPA.

    UNet processors are SDPA when they are ``AttnProcessor2_0`` (or a fused/joint sibling);
    FLUX- and Wan-style processors dispatch through diffusers' attention backend, SDPA when that
    backend is torch's native one.
    """
    processors = getattr(denoiser, "attn_processors", None)
    if not isinstance(processors, dict) or not processors:
        return (), False
    names: set[str] = set()
    sdpa = True
    for processor in processors.values():
        cls = type(processor).__name__
        if hasattr(processor, "_attention_backend"):
            backend = processor._attention_backend
            backend = str(getattr(backend, "value", backend)) if backend else _active_attention_backend()
            names.add(f"{cls}[{backend}]")
            sdpa = sdpa and backend in _SDPA_BACKENDS
        else:
            names.add(cls)
            sdpa = sdpa and cls in _SDPA_PROCESSORS
    return tuple(sorted(names)), sdpa


def _attention_to_sdpa(denoiser: Any) -> None:
    """Swap classic (non-SDPA) UNet attention processors for ``AttnProcessor2_0``."""
    from diffusers.models.attention_processor import AttnProcessor, AttnProcessor2_0

    processors = getattr(denoiser, "attn_processors", {})
    if processors and all(type(p) is AttnProcessor for p in processors.values()):
        denoiser.set_attn_processor(AttnProcessor2_0())


def pipeline_prepare(pipe: Any, manifest: ModelManifest, plan: DevicePlan) -> PipelineSetup:
    """Put a freshly loaded pipeline on ``plan``'s device and switch on the memory savers.

    VAE slicing and tiling (the VAE's own methods; diffusers 0.42 removed the pipeline-level ones)
    go on when the manifest asks, or on "auto" for image families whose default output side is at
    least 1024. Model CPU offload happens only when the manifest asks for it and the device is CUDA.
    """
    if plan.cpu_offload:
        pipe.enable_model_cpu_offload(device=plan.device)
    else:
        pipe.to(plan.device)

    vae: Any = getattr(pipe, "vae", None)
    side = max(manifest.defaults.width, manifest.defaults.height)
    auto_family = manifest.family_info.vae_savers_auto
    slicing = _saver_wanted(manifest.memory.vae_slicing, auto_family=auto_family, side=side)
    tiling = _saver_wanted(manifest.memory.vae_tiling, auto_family=auto_family, side=side)
    if slicing and hasattr(vae, "enable_slicing"):
        vae.enable_slicing()
    if tiling and hasattr(vae, "enable_tiling"):
        vae.enable_tiling()

    denoiser = getattr(pipe, "unet", None) or getattr(pipe, "transformer", None)
    if denoiser is not None:
        _attention_to_sdpa(denoiser)
    attention, sdpa = attention_describe(denoiser)
    # On a CPU an image must not depend on its batch (tested bit for bit): batch-invariant denoiser
    # layers and, for image models, per-image VAE decoding. GPU kernels make no such promise at
    # any cost worth paying, so there the stock layers stay. Clips are one per call anyway.
    from models.batch_invariance import pipeline_batch_invariant  # torch: only once a model loads

    invariant = plan.device == "cpu" and pipeline_batch_invariant(pipe, vae_slicing=not manifest.is_video)
    return PipelineSetup(
        plan=plan,
        vae_slicing=bool(getattr(vae, "use_slicing", False)),
        vae_tiling=bool(getattr(vae, "use_tiling", False)),
        attention=attention,
        sdpa=sdpa,
        batch_invariant=invariant,
    )
