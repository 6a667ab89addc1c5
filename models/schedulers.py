"""The sampling schedulers a template may choose by name, over the model's own.

A choice keeps the model's noise schedule (betas, prediction type, timestep spacing: whatever of
its shipped ``scheduler_config.json`` the chosen class understands) and changes only the sampler.
A sampler that does not suit the schedule is refused (``scheduler_unsuited``): Karras spacing
places its steps between the schedule's largest and smallest sigma, and a schedule rescaled to a
zero terminal SNR has a largest sigma of 4096 (diffusers clips its last alpha to 2**-24), so
most steps would be spent on pure noise and the image would come out a blur.

This table is free of torch and diffusers, so the prompt library (and the web process) can check
a template's sampler; ``models.loading.scheduler_build`` makes the scheduler itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

DEFAULT = ""  # the scheduler shipped in the model folder

# name -> (diffusers class, settings over the model's config)
SCHEDULERS: Mapping[str, tuple[str, Mapping[str, Any]]] = MappingProxyType(
    {
        "dpm++": ("DPMSolverMultistepScheduler", MappingProxyType({"algorithm_type": "dpmsolver++"})),
        "dpm++-karras": (
            "DPMSolverMultistepScheduler",
            MappingProxyType({"algorithm_type": "dpmsolver++", "use_karras_sigmas": True}),
        ),
        "euler": ("EulerDiscreteScheduler", MappingProxyType({})),
        "euler-ancestral": ("EulerAncestralDiscreteScheduler", MappingProxyType({})),
        "ddim": ("DDIMScheduler", MappingProxyType({})),
        "unipc": ("UniPCMultistepScheduler", MappingProxyType({})),
    }
)


def scheduler_names() -> str:
    """The accepted names, for error messages."""
    return suited_names({})


def scheduler_unsuited(name: str, model_config: Mapping[str, Any]) -> str | None:
    """Why sampler ``name`` does not suit a model whose scheduler config is ``model_config``; None
    when it does (and for the model's own, or a name this module does not know)."""
    if name not in SCHEDULERS:
        return None
    settings = SCHEDULERS[name][1]
    if settings.get("use_karras_sigmas") and model_config.get("rescale_betas_zero_snr"):
        return (
            "Karras spacing does not suit a zero-terminal-SNR schedule (its largest sigma is 4096, so most "
            "steps would be spent on pure noise)"
        )
    return None


def scheduler_refusal(name: str, model_config: Mapping[str, Any], *, model_name: str) -> str | None:
    """What to tell whoever asked for sampler ``name`` on model ``model_name``, when it does not
    suit the model's schedule (``scheduler_unsuited``), naming the samplers that do; None when it does."""
    problem = scheduler_unsuited(name, model_config)
    if problem is None:
        return None
    return f"{problem}, which model '{model_name}' has; choose one of {suited_names(model_config)}"


def suited_names(model_config: Mapping[str, Any]) -> str:
    """The samplers that suit a model whose scheduler config is ``model_config``, for messages."""
    return ", ".join(["(empty: the model's own)", *(n for n in SCHEDULERS if not scheduler_unsuited(n, model_config))])
