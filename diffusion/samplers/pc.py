"""Predictor-corrector: one Langevin corrector move on the coordinates, then the DDPM update.

DiffCSP (Jiao et al. 2023), Algorithm 2, after Song et al. 2021 (Algorithm 1 there): at level t
the corrector moves the coordinates along the network's score and adds matching noise,

    F_t <- w(F_t + gamma s_hat + sqrt(2 gamma) z),   gamma = eta (sigma_t / sigma_1)^2,

so the atoms settle at this noise level before it drops; the network is then evaluated again
and the predictor is exactly ``DDPM.step``. eta (``step_lr``) is chosen per model on the
validation split (``ProcessConfig.corrector_step_lr``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..corruption import wrap
from ..crystal_diffusion import Prediction
from .base import CrystalNoise, SamplerState, ScheduleValues
from .ddpm import DDPM, DDPMCoefficients


@dataclass(frozen=True)
class PCCoefficients(DDPMCoefficients):
    """DDPM's numbers plus the corrector's: step_lr = eta, gamma, corrector_noise = sqrt(2 gamma)."""

    step_lr: float
    gamma: float
    corrector_noise: float


class PredictorCorrector(DDPM):
    name = "pc"
    corrector_steps = 1

    def __init__(self, schedule: ScheduleValues, lattice_clip: float = 5.0, allowed_types: torch.Tensor | None = None,
                 *, step_lr: float):
        super().__init__(schedule, lattice_clip, allowed_types)
        self.step_lr = step_lr

    def _compute_coefficients(self, t: int, s: int) -> PCCoefficients:
        gamma = self.step_lr * (self.schedule.sigma[t] / self.schedule.sigma[1]) ** 2
        ddpm = super()._compute_coefficients(t, s)
        return PCCoefficients(**vars(ddpm), step_lr=self.step_lr, gamma=gamma, corrector_noise=math.sqrt(2 * gamma))

    def correct(self, state: SamplerState, t: int, s: int, out: Prediction, noise: CrystalNoise) -> SamplerState:
        """One Langevin move of the coordinates at level t; the lattice and types stay."""
        c = self.coefficients(t, s)
        frac = wrap(state.frac + c.gamma * out.coord_score + c.corrector_noise * noise.coords())
        return SamplerState(state.x, frac, state.types)
