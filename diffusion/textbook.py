"""Textbook crystals with experimental cells: the reference set for "does the model make NaCl?".

Each entry is built with pymatgen from its space group, room-temperature lattice constants
and Wyckoff positions (values as tabulated in standard references, e.g. Wyckoff, *Crystal
Structures*, and the CRC Handbook), then reduced to its primitive cell: the formula a model
is asked for is the primitive cell's (rock salt NaCl: Na1Cl1, rutile TiO2: Ti2O4).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from pymatgen.core import Lattice, Structure


@dataclass(frozen=True)
class TextbookCrystal:
    name: str                 # e.g. "rock salt NaCl"
    space_group: int          # international number of the experimental structure
    lattice: tuple[float, ...]  # experimental a (and c) in angstrom
    build: tuple              # (space-group symbol, lattice kind, species, Wyckoff coordinates)

    def structure(self) -> Structure:
        """The primitive cell (a fresh copy)."""
        return _primitive(self.name).copy()

    @property
    def formula(self) -> str:
        """The primitive cell's formula, as a model is asked for it (e.g. "Ti2O4")."""
        return self.structure().composition.formula.replace(" ", "")


def _conventional(entry: TextbookCrystal) -> Structure:
    symbol, kind, species, coords = entry.build
    if kind == "cubic":
        lattice = Lattice.cubic(entry.lattice[0])
    elif kind == "hexagonal":
        lattice = Lattice.hexagonal(*entry.lattice)
    else:
        lattice = Lattice.tetragonal(*entry.lattice)
    return Structure.from_spacegroup(symbol, lattice, list(species), [list(c) for c in coords])


TEXTBOOK: tuple[TextbookCrystal, ...] = (
    TextbookCrystal("rock salt NaCl", 225, (5.640,), ("Fm-3m", "cubic", ("Na", "Cl"), ((0, 0, 0), (0.5, 0.5, 0.5)))),
    TextbookCrystal("diamond Si", 227, (5.431,), ("Fd-3m", "cubic", ("Si",), ((0, 0, 0),))),
    TextbookCrystal("zinc blende GaAs", 216, (5.653,), ("F-43m", "cubic", ("Ga", "As"), ((0, 0, 0), (0.25, 0.25, 0.25)))),
    TextbookCrystal("fluorite CaF2", 225, (5.463,), ("Fm-3m", "cubic", ("Ca", "F"), ((0, 0, 0), (0.25, 0.25, 0.25)))),
    TextbookCrystal("wurtzite ZnO", 186, (3.250, 5.207), ("P6_3mc", "hexagonal", ("Zn", "O"),
                                                          ((1 / 3, 2 / 3, 0), (1 / 3, 2 / 3, 0.382)))),
    TextbookCrystal("bcc Fe", 229, (2.8665,), ("Im-3m", "cubic", ("Fe",), ((0, 0, 0),))),
    TextbookCrystal("fcc Cu", 225, (3.615,), ("Fm-3m", "cubic", ("Cu",), ((0, 0, 0),))),
    TextbookCrystal("perovskite SrTiO3", 221, (3.905,), ("Pm-3m", "cubic", ("Sr", "Ti", "O"),
                                                         ((0, 0, 0), (0.5, 0.5, 0.5), (0.5, 0.5, 0)))),
    TextbookCrystal("rutile TiO2", 136, (4.594, 2.959), ("P4_2/mnm", "tetragonal", ("Ti", "O"),
                                                         ((0, 0, 0), (0.3049, 0.3049, 0)))),
    TextbookCrystal("anatase TiO2", 141, (3.785, 9.514), ("I4_1/amd", "tetragonal", ("Ti", "O"),
                                                          ((0, 0, 0), (0, 0, 0.2083)))),
    TextbookCrystal("diamond C", 227, (3.567,), ("Fd-3m", "cubic", ("C",), ((0, 0, 0),))),
    TextbookCrystal("diamond Ge", 227, (5.658,), ("Fd-3m", "cubic", ("Ge",), ((0, 0, 0),))),
    TextbookCrystal("CsCl", 221, (4.123,), ("Pm-3m", "cubic", ("Cs", "Cl"), ((0, 0, 0), (0.5, 0.5, 0.5)))),
    TextbookCrystal("rock salt MgO", 225, (4.212,), ("Fm-3m", "cubic", ("Mg", "O"), ((0, 0, 0), (0.5, 0.5, 0.5)))),
    TextbookCrystal("rock salt LiF", 225, (4.027,), ("Fm-3m", "cubic", ("Li", "F"), ((0, 0, 0), (0.5, 0.5, 0.5)))),
    TextbookCrystal("wurtzite GaN", 186, (3.189, 5.185), ("P6_3mc", "hexagonal", ("Ga", "N"),
                                                          ((1 / 3, 2 / 3, 0), (1 / 3, 2 / 3, 0.377)))),
) + tuple(
    # real cubic perovskites ABX3: A on the cube corner (1a), B in the octahedron (1b), X at the face centres (3c)
    TextbookCrystal(f"perovskite {a}{b}{x}3", 221, (length,), ("Pm-3m", "cubic", (a, b, x),
                                                               ((0, 0, 0), (0.5, 0.5, 0.5), (0.5, 0.5, 0))))
    for a, b, x, length in (("Ba", "Zr", "O", 4.193), ("K", "Ta", "O", 3.989), ("Ba", "Sn", "O", 4.116),
                            ("Ba", "Hf", "O", 4.171), ("K", "Mg", "F", 3.989), ("Cs", "Ca", "F", 4.524),
                            ("Ba", "Ti", "O", 4.009))   # BaTiO3: its cubic phase, above 120 C
)


@lru_cache(maxsize=None)
def _primitive(name: str) -> Structure:
    entry = next(e for e in TEXTBOOK if e.name == name)
    return _conventional(entry).get_primitive_structure()


def textbook_crystal(name: str) -> TextbookCrystal:
    for entry in TEXTBOOK:
        if entry.name == name:
            return entry
    raise KeyError(f"no textbook crystal '{name}' (known: {', '.join(e.name for e in TEXTBOOK)})")


@dataclass(frozen=True)
class TextbookScore:
    matched: bool            # StructureMatcher(stol=0.5, angle_tol=10, ltol=0.3) finds the reference
    rms: float | None        # normalized RMS displacement of the match
    length_error: float      # (volume per atom ratio)^(1/3) - 1: the error of a lattice constant
    space_group: int         # spglib number of the sample (symprec 0.1)


def score_against_textbook(sample: Structure, entry: TextbookCrystal) -> TextbookScore:
    """How close one generated structure is to the experimental crystal."""
    from .metrics import csp_matcher, match_rms, space_group_number

    reference = entry.structure()
    rms = match_rms(sample, reference, csp_matcher())
    ratio = (sample.volume / len(sample)) / (reference.volume / len(reference))
    return TextbookScore(rms is not None, rms, float(ratio ** (1 / 3) - 1), space_group_number(sample))
