"""What every reverse process shares: its state, the result of one update, the step grid, the noise.

A sampler is an object (as a scheduler is in diffusers): it holds the schedule's numbers and does
one update from step t to the next step s of its grid,

    result = sampler.step(state, t, s, network_output, noise)
    result.state          the crystal at s
    result.x0             the model's estimate of the clean crystal, made at t
    result.coefficients   the numbers this update used (the equation panel shows exactly these)

Pure arithmetic on tensors: the network call, guidance and recording belong to the loop in
``diffusion/sampling.py``. Notation as in ``schedules.py``: abar_t (lattice), sigma_t (coordinates).
"""
from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

import torch

from ..corruption import wrap
from ..crystal_diffusion import Prediction


@dataclass(frozen=True)
class SamplerState:
    """The crystals at one step: x (B, 6) lattice latent x_t; frac (N, 3) fractional coordinates F_t in
    [0, 1); types (N,) atomic numbers, MASK (0) for a type not decided yet (ab initio only)."""

    x: torch.Tensor
    frac: torch.Tensor
    types: torch.Tensor


@dataclass(frozen=True)
class ScheduleValues:
    """The per-step constants a sampler reads, as Python floats indexed by t = 0..T.

    abar: lattice signal kept, abar_t; sigma: wrapped-normal width of the coordinates, sigma_t.
    Both are the model's float32 buffers (``CrystalDiffusion.abar``, ``.sigma``), so a sampler
    built from a model and one built from the model's ``NoiseSchedule`` use the same numbers.
    """

    abar: tuple[float, ...]
    sigma: tuple[float, ...]

    @classmethod
    def of(cls, schedule) -> "ScheduleValues":
        """From a ``CrystalDiffusion`` or a ``NoiseSchedule`` (anything with abar and sigma tensors)."""
        return cls(tuple(schedule.abar.float().tolist()), tuple(schedule.sigma.float().tolist()))

    @property
    def num_steps(self) -> int:
        return len(self.abar) - 1


@dataclass(frozen=True)
class Coefficients:
    """The numbers of one update from t to s shared by every sampler (subclasses add their own).

    eps_scale = sqrt(1 - abar_t), signal_scale = sqrt(abar_t): the x0 estimate
    x0_hat = (x_t - eps_scale eps_hat) / signal_scale; reveal = (t - s) / t: the chance that a
    masked atom type is decided in this update (ab initio).
    """

    t: int
    s: int
    abar_t: float
    abar_s: float
    sigma_t: float
    sigma_s: float
    eps_scale: float
    signal_scale: float
    reveal: float


@dataclass(frozen=True)
class CleanEstimate:
    """The model's estimate at step t of the crystal at t = 0.

    lattice: (B, 6) x0_hat, clipped to the data range; type_probs: (N, 101) p(type | x_t) or None
    (CSP). The coordinates' estimate is Tweedie's F0_hat = w(F_t + sigma_t^2 s_hat), built on
    demand (``frac``) from frac_t (N, 3), coord_score (N, 3) and sigma_t: the loop records the
    score and forms the estimate of all frames at once.
    """

    lattice: torch.Tensor
    type_probs: torch.Tensor | None
    frac_t: torch.Tensor
    coord_score: torch.Tensor
    sigma_t: float

    @property
    def frac(self) -> torch.Tensor:
        return tweedie_coords(self.frac_t, self.coord_score, self.sigma_t)


@dataclass(frozen=True)
class StepResult:
    """One update: the state at s, the clean-crystal estimate made at t, the coefficients used."""

    state: SamplerState
    x0: CleanEstimate
    coefficients: Coefficients


def tweedie_coords(frac_t: torch.Tensor, coord_score: torch.Tensor, sigma_t) -> torch.Tensor:
    """Tweedie's estimate of the clean coordinates, w(F_t + sigma_t^2 s_hat) (wrapped normal, VE).

    frac_t, coord_score: (..., N, 3); sigma_t: a float or a tensor broadcastable to them."""
    return wrap(frac_t + sigma_t ** 2 * coord_score)


def step_grid(num_steps: int, steps: int | None, start_step: int | None = None) -> list[int]:
    """Descending steps T = t_0 > ... > t_{S-1} >= 1 evenly spread; sampling then ends at 0.

    With start_step t0 < T the grid covers t0..1 with the same stride (steps * t0 / T
    evaluations, at least one)."""
    top = num_steps if start_step is None else int(start_step)
    if steps is not None and top < num_steps:
        steps = max(1, math.ceil(steps * top / num_steps))
    if steps is None or steps >= top:
        return list(range(top, 0, -1))
    grid = torch.linspace(top, 1, steps).round().long().tolist()
    return sorted(set(grid), reverse=True)


class CrystalNoise:
    """Independent random streams per crystal (one ``torch.Generator`` each), so a crystal's
    trajectory does not depend on what else is in the batch. Each draw takes every crystal's
    numbers from its own stream, crystal after crystal."""

    def __init__(self, seeds: tuple[int, ...], num_atoms: list[int], device: torch.device):
        self.generators = [torch.Generator(device=device).manual_seed(int(s)) for s in seeds]
        self.num_atoms, self.device = num_atoms, device

    def lattice(self) -> torch.Tensor:
        """(B, 6) standard normal."""
        return torch.cat([torch.randn(1, 6, generator=g, device=self.device) for g in self.generators])

    def coords(self) -> torch.Tensor:
        """(N, 3) standard normal."""
        return torch.cat([torch.randn(n, 3, generator=g, device=self.device) for g, n in zip(self.generators, self.num_atoms)])

    def uniform_coords(self) -> torch.Tensor:
        """(N, 3) uniform on [0, 1)."""
        return torch.cat([torch.rand(n, 3, generator=g, device=self.device) for g, n in zip(self.generators, self.num_atoms)])

    def uniform_atoms(self) -> torch.Tensor:
        """(N,) uniform on [0, 1)."""
        return torch.cat([torch.rand(n, generator=g, device=self.device) for g, n in zip(self.generators, self.num_atoms)])

    def categorical(self, probs: torch.Tensor) -> torch.Tensor:
        """One draw per row of (N, C) probabilities, each crystal from its own stream."""
        out, start = [], 0
        for g, n in zip(self.generators, self.num_atoms):
            out.append(torch.multinomial(probs[start:start + n], 1, generator=g).squeeze(-1))
            start += n
        return torch.cat(out)


class Sampler(ABC):
    """One reverse process. Subclasses set ``name`` and write ``coefficients`` and ``step``.

    schedule: the model's per-step constants; lattice_clip: |x0_hat| bound in the normalized
    latent (the data lie within a few units); allowed_types: (101,) bool, the elements an ab
    initio model may reveal, None for CSP (types are given and never change).
    ``corrector_steps`` network evaluations per update go to ``correct`` before ``step`` (pc).
    """

    name: ClassVar[str]
    corrector_steps: ClassVar[int] = 0

    def __init__(self, schedule: ScheduleValues, lattice_clip: float = 5.0,
                 allowed_types: torch.Tensor | None = None):
        self.schedule, self.lattice_clip, self.allowed_types = schedule, lattice_clip, allowed_types
        self._coefficients: dict[tuple[int, int], Coefficients] = {}  # the same few updates every run

    def grid(self, num_steps: int, steps: int | None, start_step: int | None = None) -> list[int]:
        """The steps where the network is evaluated, T (or start_step) down to >= 1; see ``step_grid``."""
        return step_grid(num_steps, steps, start_step)

    def coefficients(self, t: int, s: int) -> Coefficients:
        """The numbers of the update from t to s (computed once per pair)."""
        key = (t, s)
        if key not in self._coefficients:
            self._coefficients[key] = self._compute_coefficients(t, s)
        return self._coefficients[key]

    @abstractmethod
    def _compute_coefficients(self, t: int, s: int) -> Coefficients:
        ...

    @abstractmethod
    def step(self, state: SamplerState, t: int, s: int, out: Prediction, noise: CrystalNoise) -> StepResult:
        """The update from t to s given the network's output at (state, t)."""

    def correct(self, state: SamplerState, t: int, s: int, out: Prediction, noise: CrystalNoise) -> SamplerState:
        """A corrector move at level t before the update (samplers with ``corrector_steps`` > 0)."""
        return state
