"""The sampling schedulers a template may choose by name, over the model's own.

A choice keeps the model's noise schedule (betas, prediction type, timestep spacing: whatever of
its shipped ``scheduler_config.json`` the chosen class understands) and changes only the sampler.
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
    return ", ".join(["(empty: the model's own)", *SCHEDULERS])


def scheduler_build(name: str, model_scheduler: Any) -> Any:
    """A new scheduler ``name`` configured from ``model_scheduler``'s config; the model's own for ""."""
    if name == DEFAULT:
        return model_scheduler
    import diffusers

    class_name, settings = SCHEDULERS[name]
    cls = getattr(diffusers, class_name)
    config = model_scheduler.config
    # from_config treats values the model's scheduler took by default as unset and may fall back to
    # the new class's own default; the spacing decides where sampling starts, so it is carried over.
    carried = {"timestep_spacing": config["timestep_spacing"]} if "timestep_spacing" in config else {}
    return cls.from_config(config, **carried, **dict(settings))
