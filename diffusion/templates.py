"""Structure templates from a composition alone: the chemically nearest training crystal with the same
prototype, its elements replaced by the query's (template-based crystal structure prediction, CSPML,
Kusaba et al. 2022, in its simplest form; DiffCSP++, Jiao et al. 2024, takes its symmetry templates
the same way when only the composition is known).

Many inorganic crystals share a structure type with a chemical cousin (NaCl and KBr, SrTiO3 and
BaZrO3), so the substituted cousin is often already the right structure, and the diffusion model can
start from it, noised to some step t0, instead of from pure noise (``placement.sample_placed``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np
import torch

from .crystal import Crystal
from .space_group_prediction import (NO_PROTOTYPE_MATCH, Neighbour, PrototypeIndex, cell_composition,
                                     paired_elements, prototype)

# the CLI and the app say this when a composition has no template
NO_TEMPLATE = f"{NO_PROTOTYPE_MATCH}, so there is no template"


@dataclass(frozen=True)
class Template:
    """A starting structure for a composition.

    crystal: the source's cell and coordinates with the query's elements (volume rescaled by the
        atoms' volumes); its atoms are the query's, in the source's order.
    source: the training crystal it came from; substitution: (source Z, query Z) pairs.
    """

    crystal: Crystal
    source: Neighbour
    substitution: tuple[tuple[int, int], ...]
    asked_group_missing: bool = False   # a group was asked for, but no reference of this prototype has it

    def describe(self) -> str:
        from pymatgen.core import Element

        swaps = ", ".join(f"{Element.from_Z(a).symbol}->{Element.from_Z(b).symbol}" for a, b in self.substitution if a != b)
        missing = " (none of this prototype is in the asked group)" if self.asked_group_missing else ""
        return f"{self.source}" + (f" with {swaps}" if swaps else "") + missing


def _radius(z: int) -> float:
    from pymatgen.core import Element

    element = Element.from_Z(int(z))
    radius = element.atomic_radius or element.atomic_radius_calculated
    return float(radius) if radius else 1.5


def fit_atomic_volumes(crystals: Sequence[Crystal]) -> dict[int, float]:
    """Volume per atom of each element, fitted so that a cell's volume is the sum over its atoms
    (least squares on relative error over the reference crystals). Elements the fit leaves at or
    below zero are left out."""
    elements = sorted({int(z) for c in crystals for z in c.atomic_numbers.tolist()})
    if not elements:
        return {}
    column = {z: i for i, z in enumerate(elements)}
    counts = np.zeros((len(crystals), len(elements)))
    for row, crystal in enumerate(crystals):
        for z in crystal.atomic_numbers.tolist():
            counts[row, column[int(z)]] += 1
    volumes = np.array([c.volume for c in crystals])
    weights = 1.0 / volumes   # relative error: a 300 A^3 cell should not outweigh a 20 A^3 one
    fitted, *_ = np.linalg.lstsq(counts * weights[:, None], volumes * weights, rcond=None)
    return {z: float(fitted[column[z]]) for z in elements if fitted[column[z]] > 0}


def substitute_elements(source: Crystal, atomic_numbers: Iterable[int],
                        atomic_volumes: dict[int, float] | None = None) -> tuple[Crystal, tuple[tuple[int, int], ...]]:
    """The source crystal with its elements replaced by those of ``atomic_numbers`` (same prototype),
    paired by ``paired_elements`` (count in the cell, then Mendeleev number), as the distance pairs them. The cell
    is scaled isotropically by the ratio of the atoms' summed volumes: ``atomic_volumes`` (per element,
    e.g. from ``fit_atomic_volumes``) when it knows every element involved, else cubed atomic radii, so
    a substitution by larger atoms gives a larger cell."""
    query = cell_composition(atomic_numbers)
    old_numbers = source.atomic_numbers.tolist()
    own = cell_composition(old_numbers)
    if prototype(query) != prototype(own):
        raise ValueError("the source crystal has a different number of atoms or element counts")
    pairs = paired_elements(own, query)
    mapping = dict(pairs)
    numbers = [mapping[int(z)] for z in old_numbers]
    if atomic_volumes and all(int(z) in atomic_volumes for z in numbers + old_numbers):
        ratio = sum(atomic_volumes[int(z)] for z in numbers) / sum(atomic_volumes[int(z)] for z in old_numbers)
    else:
        ratio = sum(_radius(z) ** 3 for z in numbers) / sum(_radius(z) ** 3 for z in old_numbers)
    lattice = source.lattice.double() * ratio ** (1 / 3)
    crystal = Crystal(torch.tensor(numbers, dtype=torch.long), source.frac_coords.clone(), lattice,
                      material_id=f"template:{source.material_id}", space_group=source.space_group)
    return crystal, tuple(sorted(pairs))


class TemplateLibrary:
    """Templates from a fixed set of reference crystals (the model's training split)."""

    def __init__(self, crystals: Sequence[Crystal]):
        if not crystals:
            raise ValueError("no reference crystals for templates")
        self._by_id = {c.material_id: c for c in crystals}
        self._index = PrototypeIndex(crystals)
        self.atomic_volumes = fit_atomic_volumes(crystals)

    def nearest(self, atomic_numbers: Iterable[int], k: int) -> list:
        """The k reference crystals of this prototype nearest in element distance (``PrototypeIndex.nearest``)."""
        return self._index.nearest(list(atomic_numbers), k)

    def crystal(self, material_id: str) -> Crystal:
        """A reference crystal by its id (as a ``Neighbour`` names it)."""
        return self._by_id[material_id]

    def template(self, atomic_numbers: Iterable[int], space_group: int | None = None) -> Template | None:
        """The nearest reference crystal with this prototype, substituted; None when there is none.

        With a space group, the nearest one in that group (a polymorph picked by its symmetry: Ti2O4 in
        136 takes a rutile-type cousin, in 141 an anatase-type one); when the prototype has none in that
        group, the nearest of any group, marked ``asked_group_missing``."""
        numbers = list(atomic_numbers)
        ranked = self._index.nearest(numbers, 1, space_group) if space_group else []
        missing = bool(space_group) and not ranked
        ranked = ranked or self._index.nearest(numbers, 1)
        if not ranked:
            return None
        nearest = ranked[0]
        crystal, pairs = substitute_elements(self._by_id[nearest.material_id], numbers, self.atomic_volumes)
        return Template(crystal, nearest, pairs, missing)
