"""Batched geometry under periodic boundary conditions (no Python loops over atoms)."""
from __future__ import annotations

import itertools

import torch

from .crystal import fully_connected_edges

_SHIFTS = torch.tensor(list(itertools.product((-1, 0, 1), repeat=3)), dtype=torch.float32)  # (27, 3)


def min_distances(frac: torch.Tensor, lattice: torch.Tensor, num_atoms: torch.Tensor, batch: torch.Tensor) -> torch.Tensor:
    """Shortest interatomic distance of each crystal, periodic images included, in angstrom.

    Args: frac (N, 3) in [0, 1); lattice (B, 3, 3); num_atoms (B,); batch (N,).
    Returns: (B,) distances; a one-atom cell reports its shortest lattice translation.
    The 27 neighbouring images are exact for cells that are not extremely skewed
    (Niggli-reduced cells and everything the samplers produce from them).
    """
    src, dst = fully_connected_edges(num_atoms)
    diff = torch.remainder(frac[dst] - frac[src] + 0.5, 1.0) - 0.5  # (E, 3)
    shifts = _SHIFTS.to(frac.device, frac.dtype)
    images = diff.unsqueeze(1) + shifts  # (E, 27, 3)
    cart = torch.einsum("eki,eij->ekj", images, lattice[batch[src]].to(frac.dtype))
    dist = torch.linalg.norm(cart, dim=-1)  # (E, 27)
    is_self = (src == dst).unsqueeze(1) & (shifts.abs().sum(-1) == 0).unsqueeze(0)
    dist = dist.masked_fill(is_self, float("inf")).amin(1)
    out = torch.full((num_atoms.shape[0],), float("inf"), dtype=dist.dtype, device=dist.device)
    return out.scatter_reduce(0, batch[src], dist, reduce="amin")


def volumes(lattice: torch.Tensor) -> torch.Tensor:
    """(B, 3, 3) -> (B,) cell volumes in cubic angstrom."""
    return torch.linalg.det(lattice.double()).abs().to(lattice.dtype)
