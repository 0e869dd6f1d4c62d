"""DDIM: a deterministic update that can jump over many steps (few network evaluations).

Lattice: DDIM with eta = 0 (Song, Meng & Ermon 2021, eq. 12): estimate x0_hat as DDPM does,
then put it back at the lower level s with the same noise direction, adding no fresh noise.
Coordinates: one Euler step of the probability-flow ODE of the variance-exploding process
(Song et al. 2021, eq. 13): half the DDPM drift and no noise, wrapped onto the torus. Types
(ab initio) are revealed as in DDPM: that part stays random.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from ..corruption import wrap
from ..crystal_diffusion import Prediction
from .base import CleanEstimate, Coefficients, CrystalNoise, Sampler, SamplerState, StepResult
from .ddpm import clean_lattice, reveal_types, shared_coefficients, type_probabilities


@dataclass(frozen=True)
class DDIMCoefficients(Coefficients):
    """signal_scale_s = sqrt(abar_s), eps_scale_s = sqrt(1 - abar_s): x_s's weights of x0_hat and
    eps; coord_drift = (sigma_t^2 - sigma_s^2) / 2."""

    signal_scale_s: float
    eps_scale_s: float
    coord_drift: float


class DDIM(Sampler):
    name = "ddim"

    def _compute_coefficients(self, t: int, s: int) -> DDIMCoefficients:
        shared = shared_coefficients(self, t, s)
        drift = shared["sigma_t"] ** 2 - shared["sigma_s"] ** 2
        return DDIMCoefficients(**shared, signal_scale_s=math.sqrt(shared["abar_s"]),
                                eps_scale_s=math.sqrt(1 - shared["abar_s"]), coord_drift=0.5 * drift)

    def step(self, state: SamplerState, t: int, s: int, out: Prediction, noise: CrystalNoise) -> StepResult:
        c = self.coefficients(t, s)
        # 1. x0_hat (Ho et al. 2020, eq. 15), clipped as in DDPM
        x0 = clean_lattice(state.x, out.lattice_eps, c, self.lattice_clip)
        # 2. the noise direction consistent with the clipped x0_hat: eps = (x_t - sqrt(abar_t) x0_hat) / sqrt(1 - abar_t)
        eps = (state.x - c.signal_scale * x0) / c.eps_scale
        # 3. x_s = sqrt(abar_s) x0_hat + sqrt(1 - abar_s) eps (DDIM eq. 12, sigma = 0)
        x = c.signal_scale_s * x0 + c.eps_scale_s * eps
        # 4. F_s = w(F_t + (sigma_t^2 - sigma_s^2) s_hat / 2) (probability flow, Euler step)
        frac = wrap(state.frac + c.coord_drift * out.coord_score)
        # 5. ab initio: reveal some masked atom types
        probs = type_probabilities(out.type_logits, self.allowed_types)
        types = reveal_types(state.types, probs, c.reveal, noise)
        return StepResult(SamplerState(x, frac, types),
                          CleanEstimate(x0, probs, state.frac, out.coord_score, c.sigma_t), c)
