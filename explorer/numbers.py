"""The numbers shown next to a structure: lattice, volume, density, distances, symmetry, validity.

Pure pymatgen (no Streamlit). Space groups are found with spglib through pymatgen's
``SpacegroupAnalyzer`` at ``symprec = 0.1`` angstrom, the tolerance used to score
space-group conditioning (docs/architecture.md#conditioning).
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from pymatgen.core import Structure

from diffusion.api import SYMPREC, VALID_MIN_DISTANCE


@lru_cache(maxsize=512)
def _space_group(number: int):
    from pymatgen.symmetry.groups import SpaceGroup
    return SpaceGroup.from_int_number(number)


def space_group_label(number: int) -> str:
    """"P4_2/mnm (136, tetragonal)" for a space-group number 1..230."""
    group = _space_group(int(number))
    return f"{group.symbol} ({int(number)}, {group.crystal_system})"


def parse_space_group(text: str | int | None) -> tuple[int | None, str | None]:
    """A space group typed as a number ("136") or a Hermann-Mauguin symbol ("P4_2/mnm", "P42/mnm").

    Returns (number or None for "no condition", None) or (None, a readable error).
    """
    if text is None:
        return None, None
    text = str(text).strip()
    if text.lower() in {"", "none", "any", "0", "-"}:
        return None, None
    if text.isdigit():
        number = int(text)
        if 1 <= number <= 230:
            return number, None
        return None, "a space-group number is between 1 and 230"
    if len(text) > 20:
        return None, "that is not a space-group symbol"
    from pymatgen.symmetry.groups import SpaceGroup
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return int(SpaceGroup(text).int_number), None
    except Exception:
        return None, f"unknown space group '{text}' (give a number 1-230 or a symbol like Fm-3m, P4_2/mnm)"


def find_space_group(structure: Structure, symprec: float = SYMPREC) -> tuple[str, int] | None:
    """(symbol, number) found by spglib, or None when the cell is too degenerate to analyse."""
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            analyzer = SpacegroupAnalyzer(structure, symprec=symprec)
            return analyzer.get_space_group_symbol(), int(analyzer.get_space_group_number())
    except Exception:
        return None


@dataclass(frozen=True)
class StructureNumbers:
    """Numbers describing one structure; lengths in angstrom, angles in degrees."""

    a: float
    b: float
    c: float
    alpha: float
    beta: float
    gamma: float
    volume: float          # cubic angstrom
    density: float         # g / cm^3
    min_distance: float    # shortest interatomic distance, periodic images included
    space_group: tuple[str, int] | None
    num_atoms: int

    @property
    def valid(self) -> bool:
        return math.isfinite(self.min_distance) and self.min_distance > VALID_MIN_DISTANCE

    def rows(self) -> list[tuple[str, str]]:
        """(quantity, value) pairs ready for a table."""
        sg = f"{self.space_group[0]} ({self.space_group[1]})" if self.space_group else "(could not be determined)"
        validity = "yes" if self.valid else f"no: atoms closer than {VALID_MIN_DISTANCE} Å"
        return [
            ("a, b, c (Å)", f"{self.a:.3f}, {self.b:.3f}, {self.c:.3f}"),
            ("α, β, γ (°)", f"{self.alpha:.1f}, {self.beta:.1f}, {self.gamma:.1f}"),
            ("volume (Å³)", f"{self.volume:.2f}  ({self.volume / max(self.num_atoms, 1):.2f} per atom)"),
            ("density (g/cm³)", f"{self.density:.3f}"),
            ("shortest distance (Å)", f"{self.min_distance:.3f}" if math.isfinite(self.min_distance) else "n/a"),
            ("space group (spglib, 0.1 Å)", sg),
            ("structurally valid", validity),
        ]


def min_distance(structure: Structure) -> float:
    """Shortest distance between two atoms, periodic images included (one atom: shortest lattice vector)."""
    if len(structure) == 1:
        return float(min(structure.lattice.abc))
    matrix = np.array(structure.distance_matrix, dtype=float)
    np.fill_diagonal(matrix, np.inf)
    shortest = float(matrix.min())
    # an atom's own periodic images (e.g. a very short lattice vector)
    return min(shortest, float(min(structure.lattice.abc)))


def describe(structure: Structure, symmetry: bool = True, shortest: float | None = None) -> StructureNumbers:
    """All numbers of a structure (spglib only when ``symmetry``: ~4 ms for 20 atoms).

    ``shortest`` reuses a minimum distance computed elsewhere (e.g. recorded by the sampler).
    """
    a, b, c = structure.lattice.abc
    alpha, beta, gamma = structure.lattice.angles
    volume = float(structure.volume)
    density = float(structure.density) if volume > 1e-6 else math.inf
    return StructureNumbers(float(a), float(b), float(c), float(alpha), float(beta), float(gamma), volume, density,
                            min_distance(structure) if shortest is None else float(shortest),
                            find_space_group(structure) if symmetry else None, len(structure))
