"""DDPM: ancestral sampling, one update from step t to the next step s of the grid.

Lattice latent x (Ho et al. 2020, Algorithm 2), written in the posterior-mean form of their
eq. 7 so that x0_hat can be clipped to the data range first (the last cosine beta is ~1:
unclipped, the first update would amplify the network's eps errors ~30x). Fractional
coordinates F: the ancestral step of a variance-exploding process (Song et al. 2021, App. F),
wrapped onto the unit torus. Atom types (ab initio): absorbing diffusion, see ``reveal_types``.

With every step run, s = t - 1; on a strided grid alpha_{t|s} = abar_t / abar_s plays alpha_t.

| paper            | code             |                                                   |
|------------------|------------------|---------------------------------------------------|
| x_t, eps_theta   | state.x, out.lattice_eps | (B, 6) lattice latent and predicted noise |
| F_t, s_theta     | state.frac, out.coord_score | (N, 3) coordinates and predicted score |
| abar_t, sigma_t  | c.abar_t, c.sigma_t | schedules (``schedules.py``)                   |
| alpha_t, beta_t  | c.alpha, c.beta  | abar_t / abar_s and 1 - that                      |
| mu~_t(x_t, x_0)  | mean             | posterior mean, eq. 7                             |
| z                | noise.*()        | standard normal, one stream per crystal           |
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..corruption import MASK, wrap
from ..crystal_diffusion import Prediction
from .base import CleanEstimate, Coefficients, CrystalNoise, Sampler, SamplerState, StepResult


@dataclass(frozen=True)
class DDPMCoefficients(Coefficients):
    """alpha = abar_t / abar_s, beta = 1 - alpha; mean_x0, mean_xt: the posterior mean's weights
    of x0_hat and x_t; lattice_noise = sqrt(beta) (0 on the last update, which adds none);
    coord_drift = sigma_t^2 - sigma_s^2; coord_noise = sqrt(coord_drift sigma_s^2 / sigma_t^2)."""

    alpha: float
    beta: float
    mean_x0: float
    mean_xt: float
    lattice_noise: float
    coord_drift: float
    coord_noise: float


def shared_coefficients(sampler: Sampler, t: int, s: int) -> dict:
    """The fields of ``Coefficients`` for the update t -> s (every sampler starts from these)."""
    abar, sigma = sampler.schedule.abar, sampler.schedule.sigma
    return dict(t=t, s=s, abar_t=abar[t], abar_s=abar[s], sigma_t=sigma[t], sigma_s=sigma[s],
                eps_scale=math.sqrt(1 - abar[t]), signal_scale=math.sqrt(abar[t]), reveal=(t - s) / t)


def clean_lattice(x: torch.Tensor, eps: torch.Tensor, c: Coefficients, clip: float) -> torch.Tensor:
    """x0_hat = (x_t - sqrt(1 - abar_t) eps_hat) / sqrt(abar_t) (Ho et al. eq. 15), clipped to +-clip.
    x, eps: (B, 6) -> (B, 6)."""
    return ((x - c.eps_scale * eps) / c.signal_scale).clamp(-clip, clip)


def type_probabilities(logits: torch.Tensor | None, allowed: torch.Tensor | None) -> torch.Tensor | None:
    """p(type | x_t): softmax over the elements the model knows. logits (N, 101) -> (N, 101); None for CSP."""
    if allowed is None:
        return None
    return torch.softmax(logits.masked_fill(~allowed, float("-inf")), -1)


def reveal_types(types: torch.Tensor, probs: torch.Tensor | None, reveal: float, noise: CrystalNoise) -> torch.Tensor:
    """Absorbing diffusion (Austin et al. 2021): with m_t = t / T atoms masked at t, a masked atom is
    decided between t and s with probability (m_t - m_s) / m_t = (t - s) / t, its element drawn from
    p(type | x_t). types (N,) -> (N,); unchanged for CSP (probs None)."""
    if probs is None:
        return types
    decide = noise.uniform_atoms() < reveal
    drawn = noise.categorical(probs)
    return torch.where((types == MASK) & decide, drawn, types)


class DDPM(Sampler):
    """Ancestral DDPM for the lattice, the reverse wrapped-normal step for the coordinates."""

    name = "ddpm"

    def _compute_coefficients(self, t: int, s: int) -> DDPMCoefficients:
        shared = shared_coefficients(self, t, s)
        abar_t, abar_s, sigma_t, sigma_s = shared["abar_t"], shared["abar_s"], shared["sigma_t"], shared["sigma_s"]
        alpha = abar_t / abar_s
        beta = 1 - alpha
        drift = sigma_t ** 2 - sigma_s ** 2
        return DDPMCoefficients(
            **shared, alpha=alpha, beta=beta,
            mean_x0=math.sqrt(abar_s) * beta / (1 - abar_t), mean_xt=math.sqrt(alpha) * (1 - abar_s) / (1 - abar_t),
            lattice_noise=math.sqrt(beta) if s > 0 else 0.0,
            coord_drift=drift, coord_noise=math.sqrt(drift * sigma_s ** 2 / sigma_t ** 2))

    def step(self, state: SamplerState, t: int, s: int, out: Prediction, noise: CrystalNoise) -> StepResult:
        c = self.coefficients(t, s)
        # 1. the clean lattice the network implies (Ho et al. eq. 15), clipped
        x0 = clean_lattice(state.x, out.lattice_eps, c, self.lattice_clip)
        # 2. the posterior mean mu~(x_t, x0_hat) of q(x_s | x_t, x_0) (eq. 7)
        mean = c.mean_x0 * x0 + c.mean_xt * state.x
        # 3. x_s = mean + sqrt(beta) z; no noise on the last update (Algorithm 2, line 4)
        x = mean + c.lattice_noise * noise.lattice() if s > 0 else mean
        # 4. F_s = w(F_t + (sigma_t^2 - sigma_s^2) s_hat + sqrt(...) z) (Song et al. 2021, App. F); z is
        #    drawn on the last update too (scale 0), keeping each crystal's random stream as it was
        frac = wrap(state.frac + c.coord_drift * out.coord_score + c.coord_noise * noise.coords())
        # 5. ab initio: reveal some masked atom types
        probs = type_probabilities(out.type_logits, self.allowed_types)
        types = reveal_types(state.types, probs, c.reveal, noise)
        return StepResult(SamplerState(x, frac, types),
                          CleanEstimate(x0, probs, state.frac, out.coord_score, c.sigma_t), c)
