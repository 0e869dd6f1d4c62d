"""Noise schedules as pure functions of the integer step t = 0..T.

Index 0 is the clean data (beta_0 = 0, abar_0 = 1, sigma_0 = 0); steps 1..T add noise.
Notation (Ho et al. 2020, "DDPM"; Nichol & Dhariwal 2021 for the cosine schedule):

| name   | paper symbol        | meaning                                   |
|--------|---------------------|-------------------------------------------|
| beta   | beta_t              | variance added at step t                  |
| alpha  | alpha_t = 1 - beta_t| signal kept at step t                     |
| abar   | bar(alpha)_t        | prod_{s<=t} alpha_s, signal kept from x_0 |
| snr    | abar_t/(1-abar_t)   | signal-to-noise ratio of x_t              |
| sigma  | sigma_t             | wrapped-normal std of fractional coords   |
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch

ScheduleName = Literal["linear", "cosine", "sigmoid", "quadratic"]
SCHEDULE_NAMES: tuple[str, ...] = ("linear", "cosine", "sigmoid", "quadratic")
MAX_BETA = 0.999


def _checked_steps(num_steps: int) -> int:
    if not isinstance(num_steps, int) or num_steps < 1 or num_steps > 100_000:
        raise ValueError(f"num_steps must be an integer in 1..100000, got {num_steps!r}")
    return num_steps


def linear_betas(num_steps: int, beta_start: float = 1e-4, beta_end: float = 0.02) -> torch.Tensor:
    """(T,) betas rising linearly (DDPM's 1e-4..0.02 at T=1000, rescaled for other T)."""
    scale = 1000.0 / _checked_steps(num_steps)
    return torch.linspace(beta_start * scale, min(beta_end * scale, MAX_BETA), num_steps, dtype=torch.float64)


def cosine_betas(num_steps: int, s: float = 0.008) -> torch.Tensor:
    """(T,) betas from abar(t) = cos^2(((t/T + s)/(1 + s)) pi/2) (Nichol & Dhariwal 2021, eq. 17)."""
    t = torch.arange(_checked_steps(num_steps) + 1, dtype=torch.float64) / num_steps
    f = torch.cos((t + s) / (1 + s) * math.pi / 2) ** 2
    abar = f / f[0]
    return (1 - abar[1:] / abar[:-1]).clamp(max=MAX_BETA)


def sigmoid_betas(num_steps: int, beta_start: float = 1e-4, beta_end: float = 0.02) -> torch.Tensor:
    """(T,) betas following a sigmoid between beta_start and beta_end (GeoDiff, Xu et al. 2022)."""
    scale = 1000.0 / _checked_steps(num_steps)
    x = torch.linspace(-6, 6, num_steps, dtype=torch.float64)
    return (torch.sigmoid(x) * (beta_end - beta_start) + beta_start) .mul(scale).clamp(max=MAX_BETA)


def quadratic_betas(num_steps: int, beta_start: float = 1e-4, beta_end: float = 0.02) -> torch.Tensor:
    """(T,) betas whose square roots rise linearly (the "quadratic" schedule of DDPM code bases)."""
    scale = 1000.0 / _checked_steps(num_steps)
    root = torch.linspace(beta_start ** 0.5, beta_end ** 0.5, num_steps, dtype=torch.float64)
    return (root ** 2).mul(scale).clamp(max=MAX_BETA)


BETA_FUNCTIONS = {"linear": linear_betas, "cosine": cosine_betas, "sigmoid": sigmoid_betas, "quadratic": quadratic_betas}


def geometric_sigmas(num_steps: int, sigma_min: float = 0.005, sigma_max: float = 0.5) -> torch.Tensor:
    """(T+1,) sigma_t for the fractional coordinates: 0 at t=0, then geometric sigma_min..sigma_max."""
    if not 0 < sigma_min < sigma_max:
        raise ValueError(f"need 0 < sigma_min < sigma_max, got {sigma_min}, {sigma_max}")
    steps = _checked_steps(num_steps)
    ratio = torch.arange(steps, dtype=torch.float64) / max(steps - 1, 1)
    sigmas = sigma_min * (sigma_max / sigma_min) ** ratio
    return torch.cat([torch.zeros(1, dtype=torch.float64), sigmas])


@dataclass(frozen=True)
class NoiseSchedule:
    """All per-step constants for t = 0..T, each a (T+1,) float64 tensor."""

    name: str
    num_steps: int
    beta: torch.Tensor
    alpha: torch.Tensor
    abar: torch.Tensor
    snr: torch.Tensor
    sigma: torch.Tensor

    @property
    def log_snr(self) -> torch.Tensor:
        return torch.log(self.snr)


def make_schedule(name: str, num_steps: int, sigma_min: float = 0.005, sigma_max: float = 0.5) -> NoiseSchedule:
    """Build the lattice (beta) schedule ``name`` and the coordinate sigma schedule for T = num_steps."""
    if name not in BETA_FUNCTIONS:
        raise ValueError(f"unknown schedule '{name}'; choose one of {', '.join(SCHEDULE_NAMES)}")
    betas = torch.cat([torch.zeros(1, dtype=torch.float64), BETA_FUNCTIONS[name](num_steps)])
    alpha = 1 - betas
    abar = torch.cumprod(alpha, 0)
    snr = abar / (1 - abar).clamp(min=1e-300)
    snr[0] = math.inf
    return NoiseSchedule(name, num_steps, betas, alpha, abar, snr, geometric_sigmas(num_steps, sigma_min, sigma_max))
