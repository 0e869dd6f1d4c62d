"""Space-group candidates from a composition alone, by analogy with the training crystals.

A space-group-conditioned model reproduces far more crystals when it is told the right group
(DiffCSP++, Jiao et al., ICLR 2024, conditions on space group and Wyckoff positions and takes
them from CSPML template retrieval, Kusaba et al. 2022, when only the composition is known).
This module is the simplest such retrieval: crystals with the same *prototype* (atoms per cell
and the multiset of element counts, e.g. 5 atoms as 1+1+3 for SrTiO3) are ranked by how
chemically close their elements are (Pettifor's Mendeleev numbers, matched count for count),
and the nearest ones vote for their space group, weighted by 1 / (1 + distance).
"""
from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from functools import lru_cache
from typing import Iterable, Sequence

from .crystal import Crystal


@lru_cache(maxsize=1)
def _mendeleev_table() -> dict[int, int]:
    """Pettifor's Mendeleev numbers as tabulated by pymatgen (Element.mendeleev_no), Z = 1..100: a 1-D
    ordering in which chemically similar elements sit close together (elements without one go last)."""
    from pymatgen.core import Element

    table = {}
    for number in range(1, 101):
        value = Element.from_Z(number).mendeleev_no
        table[number] = int(value) if value is not None else 200 + number
    return table


def mendeleev_number(z: int) -> int:
    return _mendeleev_table()[int(z)]


Composition = tuple[tuple[int, int], ...]   # ((Z, count in the cell), ...) sorted by Z


def cell_composition(atomic_numbers: Iterable[int]) -> Composition:
    return tuple(sorted(Counter(int(z) for z in atomic_numbers).items()))


# what the CLI and the app say when neither a space-group vote nor a template exists for a composition
NO_PROTOTYPE_MATCH = "no training crystal has this composition's prototype (atoms per cell and element counts)"


def prototype(composition: Composition) -> tuple[int, tuple[int, ...]]:
    """(atoms in the cell, sorted element counts): SrTiO3 in a 5-atom cell -> (5, (1, 1, 3))."""
    counts = tuple(sorted(n for _, n in composition))
    return sum(counts), counts


def paired_elements(a: Composition, b: Composition) -> list[tuple[int, int]]:
    """(Z in a, Z in b) for two same-prototype compositions, paired in order of (count, Mendeleev number):
    the element of a that each element of b stands in for."""
    def order(zn: tuple[int, int]) -> tuple[int, int]:
        return zn[1], mendeleev_number(zn[0])

    return [(za, zb) for (za, _), (zb, _) in zip(sorted(a, key=order), sorted(b, key=order))]


def element_distance(a: Composition, b: Composition) -> int:
    """Sum of |Mendeleev number differences| over the ``paired_elements`` of two same-prototype compositions."""
    return sum(abs(mendeleev_number(za) - mendeleev_number(zb)) for za, zb in paired_elements(a, b))


def formula_text(composition: Composition) -> str:
    """((17, 1), (11, 1)) -> "NaCl": counts of the cell (not reduced), by electronegativity as pymatgen writes them."""
    from pymatgen.core import Element

    elements = sorted(((Element.from_Z(z), n) for z, n in composition), key=lambda en: (en[0].X, en[0].Z))
    return "".join(e.symbol + (str(n) if n > 1 else "") for e, n in elements)


@dataclass(frozen=True)
class Neighbour:
    """A reference crystal that voted."""

    material_id: str
    formula: str
    space_group: int
    distance: int        # element_distance to the query

    def __str__(self) -> str:
        group = f"({self.space_group})" if self.space_group else ""
        return " ".join(part for part in (self.formula, self.material_id, group) if part)


@dataclass(frozen=True)
class SpaceGroupGuess:
    """The voted space group and the evidence for it."""

    space_group: int
    votes: tuple[tuple[int, float], ...]     # (space group, weight), largest first
    neighbours: tuple[Neighbour, ...]        # nearest first

    @property
    def confidence(self) -> float:
        """Share of the vote the winning group got (0..1)."""
        total = sum(w for _, w in self.votes)
        return self.votes[0][1] / total if total else 0.0


class PrototypeIndex:
    """Reference crystals grouped by prototype, searched by chemical distance."""

    def __init__(self, crystals: Iterable[Crystal]):
        self._by_prototype: dict[tuple, list[tuple[Composition, int, str]]] = defaultdict(list)
        for crystal in crystals:
            composition = cell_composition(crystal.atomic_numbers.tolist())
            self._by_prototype[prototype(composition)].append((composition, crystal.space_group, crystal.material_id))

    def __bool__(self) -> bool:
        return bool(self._by_prototype)

    def nearest(self, atomic_numbers: Iterable[int], k: int, space_group: int | None = None) -> list[Neighbour]:
        """The k references of this cell's prototype (and of ``space_group`` when given) nearest in element
        distance (ties: lower group number first), nearest first; empty when there is none."""
        composition = cell_composition(atomic_numbers)
        candidates = self._by_prototype.get(prototype(composition), [])
        if space_group:
            candidates = [entry for entry in candidates if entry[1] == space_group]
        ranked = sorted(((element_distance(composition, c), sg, mid, c) for c, sg, mid in candidates),
                        key=lambda item: (item[0], item[1]))[:k]
        return [Neighbour(mid, formula_text(c), sg, d) for d, sg, mid, c in ranked]


class SpaceGroupPredictor:
    """Nearest-prototype vote over a fixed set of reference crystals (the training split)."""

    def __init__(self, crystals: Sequence[Crystal], neighbours: int = 5):
        if neighbours < 1:
            raise ValueError("neighbours must be at least 1")
        self.neighbours = neighbours
        self._index = PrototypeIndex(c for c in crystals if 1 <= c.space_group <= 230)
        if not self._index:
            raise ValueError("no reference crystal has a space group")

    def predict(self, atomic_numbers: Iterable[int]) -> SpaceGroupGuess | None:
        """The voted group for this cell's atoms, or None when no reference crystal has its prototype."""
        ranked = self._index.nearest(atomic_numbers, self.neighbours)
        if not ranked:
            return None
        votes: dict[int, float] = defaultdict(float)
        for neighbour in ranked:
            votes[neighbour.space_group] += 1.0 / (1.0 + neighbour.distance)
        ordered = tuple(sorted(votes.items(), key=lambda item: (-item[1], item[0])))
        return SpaceGroupGuess(ordered[0][0], ordered, tuple(ranked))
