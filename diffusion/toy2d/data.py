"""Two-dimensional toy data sets: n points (n, 2), drawn from a seeded ``torch.Generator``.

The Euclidean sets are centred and divided by one overall standard deviation (the aspect
ratio is kept), so that N(0, I) -- the end of the VP forward process -- has the data's scale.
``periodic_box`` is different: "atoms in a periodic box", points on the unit torus [0, 1)^2
clustered at lattice-like sites; it stays in [0, 1) and diffuses with the wrapped normal.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch

from ..corruption import wrap


@dataclass(frozen=True)
class ToyDataset:
    """name: a key of ``DATASETS``; points: (n, 2) float32; periodic: True for points on the torus."""

    name: str
    points: torch.Tensor
    periodic: bool


def standardize(points: torch.Tensor) -> torch.Tensor:
    """(n, 2) -> (n, 2) centred, divided by one scalar std (shapes keep their aspect ratio)."""
    centred = points - points.mean(0)
    return centred / centred.pow(2).sum(-1).mean().div(2).sqrt()


def swiss_roll(n: int, generator: torch.Generator, noise: float = 0.5) -> torch.Tensor:
    """The 2D Swiss roll of Sohl-Dickstein et al. 2015: angle u in [1.5 pi, 4.5 pi], radius u.

    Like sklearn's make_swiss_roll (x, z plane); ``noise`` is in the raw units (radius up to 14).
    """
    u = 1.5 * math.pi * (1 + 2 * torch.rand(n, generator=generator, dtype=torch.float64))
    points = torch.stack([u * torch.cos(u), u * torch.sin(u)], -1)
    return points + noise * torch.randn(n, 2, generator=generator, dtype=torch.float64)


def two_moons(n: int, generator: torch.Generator, noise: float = 0.08) -> torch.Tensor:
    """Two interleaved half circles (as sklearn's make_moons), n // 2 points on the upper one."""
    upper = n // 2
    angle = math.pi * torch.rand(n, generator=generator, dtype=torch.float64)
    x = torch.cos(angle)
    y = torch.sin(angle)
    # the lower moon is the upper one flipped and shifted by (1, 0.5)
    lower = torch.arange(n) >= upper
    x = torch.where(lower, 1 - x, x)
    y = torch.where(lower, 0.5 - y, y)
    return torch.stack([x, y], -1) + noise * torch.randn(n, 2, generator=generator, dtype=torch.float64)


def gaussian_mixture(n: int, generator: torch.Generator, modes: int = 8, radius: float = 2.0,
                     std: float = 0.15) -> torch.Tensor:
    """``modes`` equal Gaussians of std ``std`` on a circle of radius ``radius``."""
    which = torch.randint(modes, (n,), generator=generator)
    angle = 2 * math.pi * which.double() / modes
    centres = radius * torch.stack([torch.cos(angle), torch.sin(angle)], -1)
    return centres + std * torch.randn(n, 2, generator=generator, dtype=torch.float64)


# A 2D "perovskite-like" cell: one site at the corner (its cloud is split over the four corners
# of the box, which is why the torus matters), one at the centre and two at the edge midpoints.
BOX_SITES = ((0.0, 0.0), (0.5, 0.5), (0.5, 0.0), (0.0, 0.5))


def periodic_box(n: int, generator: torch.Generator, std: float = 0.04) -> torch.Tensor:
    """Points on [0, 1)^2 scattered (wrapped normal, std ``std``) around the ``BOX_SITES``."""
    sites = torch.tensor(BOX_SITES, dtype=torch.float64)
    which = torch.randint(len(sites), (n,), generator=generator)
    return wrap(sites[which] + std * torch.randn(n, 2, generator=generator, dtype=torch.float64))


_MAKERS: dict[str, Callable[[int, torch.Generator], torch.Tensor]] = {
    "swiss_roll": swiss_roll, "two_moons": two_moons, "gaussian_mixture": gaussian_mixture,
    "periodic_box": periodic_box,
}
DATASETS: tuple[str, ...] = tuple(_MAKERS)
PERIODIC: frozenset[str] = frozenset({"periodic_box"})


def make_dataset(name: str, n: int = 2000, seed: int = 0) -> ToyDataset:
    """The data set ``name`` with n points, the same for the same seed."""
    if name not in _MAKERS:
        raise ValueError(f"unknown toy data set '{name}'; choose one of {', '.join(DATASETS)}")
    if not isinstance(n, int) or n < 2:
        raise ValueError(f"n must be an integer >= 2, got {n!r}")
    points = _MAKERS[name](n, torch.Generator().manual_seed(int(seed)))
    periodic = name in PERIODIC
    # wrap again after the cast: a float64 just below 1 can round up to 1.0 in float32
    points = wrap(points.float()) if periodic else standardize(points).float()
    return ToyDataset(name, points, periodic)
