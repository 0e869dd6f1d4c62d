"""The forward process q(x_t | x_0) of the 2D toys, on the crystal model's schedules.

Two spaces, the same two the crystal model uses (``diffusion/corruption.py``):

| space     | data            | forward                              | at t = T      | network predicts        |
|-----------|-----------------|--------------------------------------|---------------|-------------------------|
| Euclidean | R^2, unit scale | x_t = sqrt(abar_t) x_0 + sqrt(1-abar_t) eps | N(0, I) | eps                      |
| torus     | [0, 1)^2        | x_t = (x_0 + sigma_t eps) mod 1      | ~uniform      | normalized score (DiffCSP) |

On the torus the target is the score of the wrapped normal, d/dx log p(x_t | x_0), divided by
sqrt(E[score^2]) so that it has unit scale at every sigma -- exactly the target of the crystal
model's fractional coordinates. (eps itself is not recoverable from x_t mod 1: eps and eps + k/sigma_t
give the same point.) The last sigma (0.5 by default) leaves the density within ~1.5% of uniform.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..corruption import q_sample as vp_q_sample, q_sample_coords, score_norm, wrap, wrapped_normal_score
from ..schedules import NoiseSchedule, make_schedule


@dataclass(frozen=True)
class ToyProcess:
    """schedule: the crystal model's ``NoiseSchedule`` ((T+1,) float64 tensors: beta, abar, snr, sigma);
    periodic: False = VP Gaussian in R^2, True = wrapped normal on the torus;
    score_norm: (T+1,) E[score^2] of the wrapped normal at sigma_t (index 0 unused = 1; all ones when VP)."""

    schedule: NoiseSchedule
    periodic: bool
    score_norm: torch.Tensor

    @property
    def num_steps(self) -> int:
        return self.schedule.num_steps

    @property
    def noise_variance(self) -> torch.Tensor:
        """(T+1,) variance of the noise in x_t given x_0: 1 - abar_t (VP) or sigma_t^2 (torus)."""
        return self.schedule.sigma ** 2 if self.periodic else 1 - self.schedule.abar


def make_process(schedule: str = "linear", num_steps: int = 200, periodic: bool = False,
                 sigma_min: float = 0.005, sigma_max: float = 0.5) -> ToyProcess:
    """The process with the crystal model's schedule ``schedule`` (linear, cosine, sigmoid, quadratic)
    for the VP case, or its geometric sigma_min..sigma_max for the torus."""
    sched = make_schedule(schedule, num_steps, sigma_min, sigma_max)
    norm = torch.ones(num_steps + 1, dtype=torch.float64)
    if periodic:
        norm[1:] = score_norm(sched.sigma[1:])
    return ToyProcess(sched, periodic, norm)


@dataclass(frozen=True)
class ForwardNumbers:
    """Closed-form numbers per step t = 0..T, each (T+1,) float64: beta_t, abar_t, sqrt(abar_t)
    (signal kept), sqrt(1 - abar_t) (noise std), SNR = abar/(1 - abar) (inf at t = 0) and the
    torus sigma_t. The VP columns describe the Euclidean sets, sigma the torus."""

    t: torch.Tensor
    beta: torch.Tensor
    abar: torch.Tensor
    sqrt_abar: torch.Tensor
    sqrt_one_minus_abar: torch.Tensor
    snr: torch.Tensor
    sigma: torch.Tensor


def forward_numbers(process: ToyProcess) -> ForwardNumbers:
    s = process.schedule
    return ForwardNumbers(torch.arange(s.num_steps + 1), s.beta, s.abar, s.abar.sqrt(), (1 - s.abar).sqrt(),
                          s.snr, s.sigma)


def q_sample(process: ToyProcess, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """x_t given x_0 in closed form. x0, noise: (n, 2); t: (n,) integer steps 0..T -> (n, 2)."""
    if process.periodic:
        sigma = process.schedule.sigma[t].to(x0.dtype).unsqueeze(-1)
        return q_sample_coords(x0, sigma, noise)
    return vp_q_sample(x0, t, noise, process.schedule.abar)


def denoising_target(process: ToyProcess, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """What the network learns to output for x_t = q_sample(x0, t, noise). t: (n,); noise: (n, 2) -> (n, 2).
    VP: eps itself. Torus: the wrapped-normal score of the displacement sigma_t eps, normalized."""
    if not process.periodic:
        return noise
    sigma = process.schedule.sigma[t].to(noise.dtype).unsqueeze(-1)
    norm = process.score_norm[t].to(noise.dtype).unsqueeze(-1)
    return wrapped_normal_score(sigma * noise, sigma) / norm.sqrt()


def score_from_output(process: ToyProcess, output: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """The score d/dx log p_t(x) implied by the network output. output: (n, 2); t: (n,) -> (n, 2).
    VP: -eps_hat / sqrt(1 - abar_t) (Tweedie). Torus: undo the normalization."""
    if process.periodic:
        return output * process.score_norm[t].to(output.dtype).unsqueeze(-1).sqrt()
    return -output / process.noise_variance[t].to(output.dtype).unsqueeze(-1).sqrt()


def prior_sample(process: ToyProcess, n: int, generator: torch.Generator) -> torch.Tensor:
    """(n, 2) draws from the end of the forward process: N(0, I), or uniform on [0, 1)^2 for the torus."""
    if process.periodic:
        return torch.rand(n, 2, generator=generator)
    return torch.randn(n, 2, generator=generator)


def forward_path(process: ToyProcess, x0: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """(n, 2) data -> (T+1, n, 2): every particle's path under the step-by-step forward process.

    Fresh noise at each step, x_t = sqrt(alpha_t) x_{t-1} + sqrt(beta_t) z (VP) or
    x_t = (x_{t-1} + sqrt(sigma_t^2 - sigma_{t-1}^2) z) mod 1 (torus): the paths wander like
    Brownian particles while each frame has the closed-form marginal of ``q_sample``.
    """
    generator = torch.Generator().manual_seed(int(seed))
    s = process.schedule
    frames = [x0]
    for t in range(1, s.num_steps + 1):
        z = torch.randn(x0.shape, generator=generator).to(x0.dtype)
        x = frames[-1]
        if process.periodic:
            frames.append(wrap(x + float((s.sigma[t] ** 2 - s.sigma[t - 1] ** 2).sqrt()) * z))
        else:
            frames.append(float(s.alpha[t].sqrt()) * x + float(s.beta[t].sqrt()) * z)
    return torch.stack(frames)
