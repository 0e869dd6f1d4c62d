"""One finished sampling run as the pages keep it (Generate's results, Train's "Sample now")."""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from .equations import DEFAULT_STEP_LR
from .models import ModelEntry, get_model, sample_trajectory
from .settings import GenerateSettings


@dataclass(frozen=True)
class Result:
    """One finished sampling run kept in the session."""

    id: int
    settings: GenerateSettings
    task: str
    trajectory: object          # diffusion.Trajectory
    abar: np.ndarray            # (T+1,) of the model's lattice schedule, for the captions
    sigma: np.ndarray           # (T+1,) coordinate noise levels
    seconds: float
    schedule: object = None     # the model's diffusion.NoiseSchedule, for the equations
    step_lr: float = DEFAULT_STEP_LR  # the model's pc corrector step size (the sampler used it)

    @property
    def steps(self) -> list[int]:
        return [int(t) for t in self.trajectory.timesteps.tolist()]

    @property
    def label(self) -> str:
        return f"#{self.id}: {self.settings.summary(self.task)}"


def result_of(model, result_id: int, settings: GenerateSettings, trajectory, seconds: float) -> Result:
    """A Result with the schedule numbers of the model that sampled it (a CDVAE has no schedule: its noise
    levels and step sizes are in the trajectory's ``coefficients``, one per frame)."""
    if getattr(model, "family", "diffusion") == "cdvae":
        return Result(id=result_id, settings=settings, task="cdvae", trajectory=trajectory, abar=np.ones(1),
                      sigma=model.sigma.detach().cpu().double().numpy(), seconds=seconds, schedule=None,
                      step_lr=model.process.langevin_step)
    return Result(id=result_id, settings=settings, task=model.process.task, trajectory=trajectory,
                  abar=model.abar.detach().cpu().double().numpy(), sigma=model.sigma.detach().cpu().double().numpy(),
                  seconds=seconds, schedule=model.schedule, step_lr=model.process.corrector_step_lr)


def run_generation(entry: ModelEntry, settings: GenerateSettings, result_id: int) -> Result:
    """Sample (cached across sessions by settings) with a shipped model; raises what sampling raises."""
    started = time.perf_counter()
    trajectory = sample_trajectory(entry.path, entry.version, settings)
    return result_of(get_model(entry), result_id, settings, trajectory, time.perf_counter() - started)
