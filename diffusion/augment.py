"""Training-time augmentation: the same crystal as a larger cell (issue #17, "a stronger mp_20").

The denoiser is invariant to rotations, atom order and translations, but it sees the cell it is given.
The training data are Niggli-reduced cells, and the network relies on that convention: relabelling the
axes of validation crystals multiplies the shipped mp_20's lattice loss many times over (measured in
docs/experiments.md). So an augmented crystal is put in the same convention: a supercell (a new, equally
valid training example for two to four times the formula), then Niggli-reduced.
"""
from __future__ import annotations

import numpy as np
import torch

from .crystal import Crystal


def supercell(crystal: Crystal, axis: int, times: int) -> Crystal:
    """The crystal repeated ``times`` along lattice vector ``axis`` (atoms ordered copy by copy)."""
    shifts = torch.zeros(times, 3, dtype=crystal.frac_coords.dtype)
    shifts[:, axis] = torch.arange(times, dtype=crystal.frac_coords.dtype)
    frac = (crystal.frac_coords.unsqueeze(0) + shifts.unsqueeze(1)).reshape(-1, 3)
    frac[:, axis] /= times
    lattice = crystal.lattice.clone()
    lattice[axis] *= times
    return crystal.replace(lattice=lattice, frac_coords=frac, atomic_numbers=crystal.atomic_numbers.repeat(times))


def niggli_reduced(crystal: Crystal) -> Crystal:
    """The same crystal in its Niggli-reduced cell (the convention of the CDVAE datasets)."""
    reduced = Crystal.from_structure(crystal.to_structure().get_reduced_structure())
    return crystal.replace(lattice=reduced.lattice, frac_coords=reduced.frac_coords,
                           atomic_numbers=reduced.atomic_numbers)


def augment(crystal: Crystal, rng: np.random.Generator, max_atoms: int, probability: float = 0.5) -> Crystal:
    """With ``probability`` (when it fits in max_atoms): a Niggli-reduced supercell of 2-4 copies."""
    largest = min(max_atoms // crystal.num_atoms, 4)
    if largest < 2 or rng.random() >= probability:
        return crystal
    return niggli_reduced(supercell(crystal, int(rng.integers(3)), int(rng.integers(2, largest + 1))))
