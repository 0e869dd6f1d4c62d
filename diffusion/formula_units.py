"""How many formula units a cell should hold, and how much room its atoms take, from the training crystals.

A student types ``TiO2``, ``Si`` or ``SrTiO3``; a structure-prediction model needs the atoms of the whole
cell (rutile is Ti2O4, diamond Si2). The proposal is the number of formula units Z most common among the
training crystals with the same reduced formula; for a formula the training data lack, the most common Z
of its formula family (the sorted reduced counts, e.g. AB2 for TiO2 and SiO2); failing both, one unit.
Only Z that keep the cell within the model's atom limit are considered; ties go to the smaller cell.
"""
from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from functools import reduce
from math import gcd
from statistics import median
from typing import Iterable, Sequence

from pymatgen.core.periodic_table import Element

from .crystal import Crystal

ReducedFormula = tuple[tuple[int, int], ...]   # ((Z, count), ...) sorted by Z, counts without common factor
Family = tuple[int, ...]                        # sorted reduced counts: (1, 2) for TiO2


def reduced_formula(atomic_numbers: Iterable[int]) -> tuple[ReducedFormula, int]:
    """(reduced formula, formula units) of a cell: [22, 22, 8, 8, 8, 8] -> (((8, 2), (22, 1)), 2)."""
    counts = Counter(int(z) for z in atomic_numbers)
    if not counts:
        raise ValueError("a cell needs at least one atom")
    units = reduce(gcd, counts.values())
    return tuple(sorted((z, n // units) for z, n in counts.items())), units


def family(formula: ReducedFormula) -> Family:
    return tuple(sorted(n for _, n in formula))


def formula_text(formula: ReducedFormula, units: int = 1) -> str:
    """Pymatgen's element order would need a Composition; electronegativity order reads naturally enough."""
    parts = sorted(formula, key=lambda zn: (Element.from_Z(zn[0]).X or 10.0, zn[0]))
    return "".join(f"{Element.from_Z(z).symbol}{n * units if n * units > 1 else ''}" for z, n in parts)


def cell_atoms(formula: ReducedFormula, units: int) -> list[int]:
    """Atomic numbers of a cell of ``units`` formula units, element by element."""
    return [z for z, n in formula for _ in range(n * units)]


@dataclass(frozen=True)
class FormulaUnitsProposal:
    """units: the proposed Z; basis: "formula", "family" or "none"; seen: Z -> training crystals with it
    (of the formula or of the family, whichever decided)."""

    formula: ReducedFormula
    units: int
    basis: str
    seen: dict[int, int]

    @property
    def atoms(self) -> list[int]:
        return cell_atoms(self.formula, self.units)

    def describe(self) -> str:
        cell = formula_text(self.formula, self.units)
        if self.basis == "none":
            return f"{cell}: one formula unit (no training crystal of this formula or of its family)"
        total = sum(self.seen.values())
        what = (f"{formula_text(self.formula)}" if self.basis == "formula"
                else f"the {family_label(family(self.formula))} family")
        others = ", ".join(f"Z = {z}: {n}" for z, n in sorted(self.seen.items()) if z != self.units)
        return (f"{cell}: {self.units} formula unit{'s' if self.units > 1 else ''} per cell, the most common for "
                f"{what} among the training crystals ({self.seen.get(self.units, 0)} of {total}"
                + (f"; {others}" if others else "") + ")")


def family_label(counts: Family) -> str:
    """(1, 2) -> 'AB2', (1, 1, 3) -> 'ABC3'."""
    return "".join(f"{chr(65 + i)}{n if n > 1 else ''}" for i, n in enumerate(counts))


@dataclass(frozen=True)
class ReferenceVolume:
    """The median volume per atom of the training crystals of a formula (basis "formula") or, failing that,
    of the same elements in any ratio (basis "elements"); count: how many crystals."""

    volume_per_atom: float
    basis: str
    count: int


class FormulaUnitsAdvisor:
    """Formula-unit and volume statistics of a set of training crystals."""

    def __init__(self, crystals: Sequence[Crystal]):
        self._by_formula: dict[ReducedFormula, Counter] = defaultdict(Counter)
        self._by_family: dict[Family, Counter] = defaultdict(Counter)
        self._volumes_by_formula: dict[ReducedFormula, list[float]] = defaultdict(list)
        self._volumes_by_elements: dict[frozenset, list[float]] = defaultdict(list)
        for crystal in crystals:
            formula, units = reduced_formula(crystal.atomic_numbers.tolist())
            self._by_formula[formula][units] += 1
            self._by_family[family(formula)][units] += 1
            per_atom = crystal.volume / crystal.num_atoms
            self._volumes_by_formula[formula].append(per_atom)
            self._volumes_by_elements[frozenset(z for z, _ in formula)].append(per_atom)

    def reference_volume(self, atomic_numbers: Iterable[int]) -> ReferenceVolume | None:
        """What the training crystals say the volume per atom of this chemistry is (None: nothing to say)."""
        formula, _ = reduced_formula(atomic_numbers)
        for basis, volumes in (("formula", self._volumes_by_formula.get(formula)),
                               ("elements", self._volumes_by_elements.get(frozenset(z for z, _ in formula)))):
            if volumes:
                return ReferenceVolume(float(median(volumes)), basis, len(volumes))
        return None

    def propose(self, atomic_numbers: Iterable[int], max_atoms: int) -> FormulaUnitsProposal:
        """The proposal for the formula of ``atomic_numbers`` (any number of units: TiO2 and Ti2O4 alike)."""
        formula, _ = reduced_formula(atomic_numbers)
        per_unit = sum(n for _, n in formula)
        if per_unit > max_atoms:
            raise ValueError(f"one formula unit of {formula_text(formula)} has {per_unit} atoms, more than the "
                             f"model's {max_atoms}")
        for basis, seen in (("formula", self._by_formula.get(formula)), ("family", self._by_family.get(family(formula)))):
            fitting = {z: n for z, n in (seen or {}).items() if z * per_unit <= max_atoms}
            if fitting:
                units = max(fitting, key=lambda z: (fitting[z], -z))
                return FormulaUnitsProposal(formula, units, basis, dict(sorted(fitting.items())))
        return FormulaUnitsProposal(formula, 1, "none", {})
