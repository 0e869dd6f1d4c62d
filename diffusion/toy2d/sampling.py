"""Reverse samplers for the toys, each returning the whole particle path (K, n, 2).

All three start from the same x_T (``start_noise``) and walk down a grid T = t_0 > ... > t_{S-1} >= 1
(``step_grid`` of the crystal samplers), then to 0; s is the level after t. With every step
run, s = t - 1; on a strided grid alpha_{t|s} = abar_t / abar_s plays alpha_t.

| sampler | Euclidean (VP, network eps_hat)                      | torus (network score s_hat)                    |
|---------|------------------------------------------------------|------------------------------------------------|
| ddpm    | x_s = mu~(x_t, x0_hat) + sqrt(beta~) z (Ho et al. 2020, eq. 7) | F_s = w(F_t + d s_hat + sqrt(d sigma_s^2/sigma_t^2) z) |
| ddim    | x_s = sqrt(abar_s) x0_hat + sqrt(1-abar_s) eps_hat (Song et al. 2021, eta = 0) | F_s = w(F_t + d s_hat / 2) |
| pc      | Langevin x += g s_hat + sqrt(2 g) z at level t, then the ddpm step (Song et al. 2021, Alg. 1) | same, wrapped |

with d = sigma_t^2 - sigma_s^2, w = mod 1, x0_hat = (x_t - sqrt(1-abar_t) eps_hat)/sqrt(abar_t)
clipped to +-clip (the last cosine beta is ~1: unclipped, its first step would amplify errors ~30x),
and the Langevin step g = step_lr * (noise variance at t): 1 - abar_t, or sigma_t^2 on the torus.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..corruption import wrap
from ..samplers.base import step_grid
from .model import ToyDenoiser
from .process import ToyProcess, prior_sample, score_from_output

DEFAULT_CLIP = 4.0        # |x0_hat| bound: the standardized data sets lie within about +-2.5
DEFAULT_STEP_LR = 0.05    # Langevin step / noise variance; 2 r^2 with Song et al.'s signal-to-noise r = 0.16


@dataclass(frozen=True)
class ToyPath:
    """method: 'ddpm', 'ddim' or 'pc'; steps: the K levels of the frames, T first and 0 last;
    points: (K, n, 2) float32, points[0] the start noise and points[-1] the samples."""

    method: str
    steps: tuple[int, ...]
    points: torch.Tensor

    @property
    def samples(self) -> torch.Tensor:
        return self.points[-1]


def start_noise(process: ToyProcess, n: int, seed: int = 0) -> torch.Tensor:
    """(n, 2) x_T for the samplers: N(0, I), or uniform on the torus. Same seed, same start."""
    return prior_sample(process, n, torch.Generator().manual_seed(int(seed)))


def _levels(t: torch.Tensor | int, n: int) -> torch.Tensor:
    return torch.full((n,), int(t), dtype=torch.long)


def _score(process: ToyProcess, out: torch.Tensor, t: int) -> torch.Tensor:
    """(n, 2) network output at level t -> (n, 2) score d/dx log p_t."""
    return score_from_output(process, out, _levels(t, len(out)))


def _clean_estimate(process: ToyProcess, x: torch.Tensor, eps: torch.Tensor, t: int, clip: float) -> torch.Tensor:
    """x0_hat = (x_t - sqrt(1 - abar_t) eps_hat) / sqrt(abar_t), clipped. (n, 2) -> (n, 2)."""
    abar = float(process.schedule.abar[t])
    return ((x - math.sqrt(1 - abar) * eps) / math.sqrt(abar)).clamp(-clip, clip)


def _ddpm_mean(process: ToyProcess, x: torch.Tensor, out: torch.Tensor, t: int, s: int, clip: float) -> torch.Tensor:
    """The noise-free part of the ddpm step t -> s (the posterior mean; on the torus, unwrapped)."""
    if process.periodic:
        sigma = process.schedule.sigma
        return x + float(sigma[t] ** 2 - sigma[s] ** 2) * _score(process, out, t)
    abar_t, abar_s = float(process.schedule.abar[t]), float(process.schedule.abar[s])
    alpha = abar_t / abar_s
    x0 = _clean_estimate(process, x, out, t, clip)
    return (math.sqrt(abar_s) * (1 - alpha) / (1 - abar_t)) * x0 + (math.sqrt(alpha) * (1 - abar_s) / (1 - abar_t)) * x


def _ddpm_noise_std(process: ToyProcess, t: int, s: int) -> float:
    """Std of the fresh noise of the ddpm step t -> s: the posterior's (0 when s = 0)."""
    if process.periodic:
        sigma = process.schedule.sigma
        return math.sqrt(float((sigma[t] ** 2 - sigma[s] ** 2) * sigma[s] ** 2 / sigma[t] ** 2))
    abar_t, abar_s = float(process.schedule.abar[t]), float(process.schedule.abar[s])
    return math.sqrt((1 - abar_t / abar_s) * (1 - abar_s) / (1 - abar_t))


def _finish(process: ToyProcess, x: torch.Tensor) -> torch.Tensor:
    """Back onto the space: wrapped into [0, 1) on the torus, unchanged in R^2."""
    return wrap(x) if process.periodic else x


@torch.no_grad()
def ddpm_path(model: ToyDenoiser, x_T: torch.Tensor, seed: int = 0, steps: int | None = None,
              clip: float = DEFAULT_CLIP, corrector_step_lr: float | None = None) -> ToyPath:
    """Ancestral sampling from x_T (n, 2); fresh noise from ``seed``. steps: S network calls on an
    evenly strided grid (None: all T). With ``corrector_step_lr`` this is the predictor-corrector."""
    process = model.process
    generator = torch.Generator().manual_seed(int(seed))
    grid = step_grid(process.num_steps, steps)
    frames, x = [x_T.float()], x_T.float()
    for t, s in zip(grid, grid[1:] + [0]):
        if corrector_step_lr is not None:
            gamma = corrector_step_lr * float(process.noise_variance[t])
            z = torch.randn(x.shape, generator=generator)
            x = _finish(process, x + gamma * model.score(x, _levels(t, len(x))) + math.sqrt(2 * gamma) * z)
        z = torch.randn(x.shape, generator=generator)
        x = _finish(process, _ddpm_mean(process, x, model(x, _levels(t, len(x))), t, s, clip)
                    + _ddpm_noise_std(process, t, s) * z)
        frames.append(x)
    return ToyPath("ddpm" if corrector_step_lr is None else "pc", tuple(grid) + (0,), torch.stack(frames))


@torch.no_grad()
def pc_path(model: ToyDenoiser, x_T: torch.Tensor, seed: int = 0, steps: int | None = None,
            clip: float = DEFAULT_CLIP, step_lr: float = DEFAULT_STEP_LR) -> ToyPath:
    """Predictor-corrector: at each level one Langevin corrector move, then the ddpm step (2 calls per step)."""
    if step_lr < 0:
        raise ValueError(f"step_lr must be >= 0, got {step_lr}")
    return ddpm_path(model, x_T, seed, steps, clip, corrector_step_lr=step_lr)


@torch.no_grad()
def ddim_path(model: ToyDenoiser, x_T: torch.Tensor, steps: int = 50, clip: float = DEFAULT_CLIP) -> ToyPath:
    """Deterministic DDIM (eta = 0) from x_T (n, 2) in ``steps`` network calls: path (steps + 1, n, 2)
    when steps <= T. On the torus: Euler steps of the probability-flow ODE.

    With no fresh noise to correct them, the few starts in the far tail of N(0, I) (|x_T| > 3.5,
    ~0.2%), where the network saw little training data, can drift out and end on the clip bound.
    """
    process = model.process
    grid = step_grid(process.num_steps, steps)
    frames, x = [x_T.float()], x_T.float()
    for t, s in zip(grid, grid[1:] + [0]):
        out = model(x, _levels(t, len(x)))
        if process.periodic:
            sigma = process.schedule.sigma
            x = wrap(x + 0.5 * float(sigma[t] ** 2 - sigma[s] ** 2) * _score(process, out, t))
        else:
            abar_t, abar_s = float(process.schedule.abar[t]), float(process.schedule.abar[s])
            x0 = _clean_estimate(process, x, out, t, clip)
            eps = (x - math.sqrt(abar_t) * x0) / math.sqrt(1 - abar_t)   # the noise direction of the clipped x0_hat
            x = math.sqrt(abar_s) * x0 + math.sqrt(1 - abar_s) * eps
        frames.append(x)
    return ToyPath("ddim", tuple(grid) + (0,), torch.stack(frames))


SAMPLERS: tuple[str, ...] = ("ddpm", "ddim", "pc")


def sample_path(model: ToyDenoiser, method: str, x_T: torch.Tensor, seed: int = 0, steps: int | None = None) -> ToyPath:
    """Dispatch by name; ``steps`` None means all T for ddpm/pc and 50 for ddim."""
    if method == "ddpm":
        return ddpm_path(model, x_T, seed, steps)
    if method == "pc":
        return pc_path(model, x_T, seed, steps)
    if method == "ddim":
        return ddim_path(model, x_T, 50 if steps is None else steps)
    raise ValueError(f"unknown sampler '{method}'; choose one of {', '.join(SAMPLERS)}")


@dataclass(frozen=True)
class DriftField:
    """points: (G, 2) grid; score: (G, 2) learned d/dx log p_t; drift: (G, 2) the noise-free move of
    one ddpm step t -> t-1 from each point (unwrapped on the torus). Arrows for a quiver plot."""

    t: int
    points: torch.Tensor
    score: torch.Tensor
    drift: torch.Tensor


def grid_points(low: float, high: float, size: int) -> torch.Tensor:
    """(size * size, 2) a square grid over [low, high]^2, x varying fastest."""
    axis = torch.linspace(low, high, size)
    ys, xs = torch.meshgrid(axis, axis, indexing="ij")
    return torch.stack([xs.flatten(), ys.flatten()], -1)


@torch.no_grad()
def drift_field(model: ToyDenoiser, t: int, grid: torch.Tensor, clip: float = DEFAULT_CLIP) -> DriftField:
    """The learned score and reverse drift at step t (1..T) on ``grid`` (G, 2)."""
    process = model.process
    if not 1 <= int(t) <= process.num_steps:
        raise ValueError(f"t must be in 1..{process.num_steps}, got {t}")
    t = int(t)
    x = grid.float()
    out = model(x, _levels(t, len(x)))
    drift = _ddpm_mean(process, x, out, t, t - 1, clip) - x
    return DriftField(t, x, _score(process, out, t), drift)
