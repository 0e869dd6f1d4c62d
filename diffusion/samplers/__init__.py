"""Reverse processes as objects, one per file (as schedulers are in diffusers).

    base.py      SamplerState, StepResult (next state, x0 estimate, coefficients), Sampler, CrystalNoise
    ddpm.py      ancestral DDPM              ddim.py   deterministic DDIM / probability flow
    pc.py        Langevin corrector + DDPM
    network.py   the network call the loop makes (precision, contexts, trace, chunks, guidance)
    recording.py frames -> ``Trajectory``;   config.py  SamplingConfig, SampleRequest and their checks

The loop that runs them is ``diffusion/sampling.py``.
"""
from __future__ import annotations

import torch

from .base import (CleanEstimate, Coefficients, CrystalNoise, Sampler, SamplerState, ScheduleValues, StepResult,
                   step_grid)
from .config import SAMPLERS, SampleRequest, SamplerName, SamplingConfig, check_step_lr, resolved_step_lr
from .ddim import DDIM, DDIMCoefficients
from .ddpm import DDPM, DDPMCoefficients
from .pc import PCCoefficients, PredictorCorrector

SAMPLER_CLASSES: dict[str, type[Sampler]] = {cls.name: cls for cls in (DDPM, PredictorCorrector, DDIM)}


def make_sampler(name: str, schedule: ScheduleValues, lattice_clip: float = 5.0,
                 allowed_types: torch.Tensor | None = None, step_lr: float | None = None) -> Sampler:
    """The sampler called ``name``; step_lr is the pc corrector's step size (required for pc)."""
    if name not in SAMPLER_CLASSES:
        raise ValueError(f"unknown sampler '{name}'; choose one of {', '.join(SAMPLER_CLASSES)}")
    if name == "pc":
        if step_lr is None:
            raise ValueError("the pc sampler needs its corrector step size step_lr")
        return PredictorCorrector(schedule, lattice_clip, allowed_types, step_lr=step_lr)
    return SAMPLER_CLASSES[name](schedule, lattice_clip, allowed_types)


__all__ = [
    "CleanEstimate", "Coefficients", "CrystalNoise", "Sampler", "SamplerState", "ScheduleValues", "StepResult",
    "step_grid", "SAMPLERS", "SampleRequest", "SamplerName", "SamplingConfig", "check_step_lr", "resolved_step_lr",
    "DDIM", "DDIMCoefficients", "DDPM", "DDPMCoefficients", "PCCoefficients", "PredictorCorrector",
    "SAMPLER_CLASSES", "make_sampler",
]
