"""Symmetry constraints for sampling (``samplers/constraints.py``), built from a structure or from Wyckoff letters.

From a structure (the template of the asked group, ``templates.py``): spglib finds its space group at the
project's tolerance, the cell is idealized (``standardize_cell``), and the symmetry dataset of the ideal
cell gives every operation (W, t) in that cell's basis, the orbit of each atom (``equivalent_atoms``) and
its Wyckoff letter. For each atom the constraint keeps one operation mapping its orbit's representative
onto it; the representative's site-symmetry rotations, averaged, give the projector onto its Wyckoff
position; the distinct rotations give the lattice's point group.

Setting. "primitive" (the default) is spglib's ideal primitive cell, Niggli-reduced: the cell convention
of the training data (docs/architecture.md#representation), with as many atoms as the template's
primitive cell. "conventional" is spglib's standardized conventional cell (ITA setting): 2, 3 or 4 times
the atoms for centred lattices. Operations, cell and atoms always come from one cell, so they agree.

From letters (a space group and, per element, Wyckoff positions such as "4a"): pyxtal's tables give the
positions in the standard setting; a generic ideal crystal is built from them and analysed as above.
"""
from __future__ import annotations

import string
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal, Sequence

import numpy as np
import torch

from .crystal import Crystal
from .samplers.constraints import SymmetryConstraint, lattice_system, symmetrize_gram
from .tolerances import SYMPREC

Setting = Literal["primitive", "conventional"]
SETTINGS: tuple[str, ...] = ("primitive", "conventional")
# looser tolerances find a supergroup of a slightly distorted template; the asked group may need a tighter one
_SYMPRECS = (SYMPREC, 0.05, 0.01, 1e-3)
_IDEAL_SYMPREC = 1e-3   # the idealized cell is exact to float precision
_MATCH = 1e-4           # fractional tolerance when matching an operation's image to an atom


@dataclass(frozen=True)
class SymmetricCell:
    """An ideal crystal in the constraint's setting and the constraint (atoms in the same order).

    crystal: the ideal cell (lattice and coordinates exactly in the group), usable as a start structure;
    constraint: what the sampler projects onto.
    """

    crystal: Crystal
    constraint: SymmetryConstraint

    def describe(self) -> str:
        """One line for people: group, lattice system and each orbit's element and Wyckoff position."""
        from pymatgen.core import Element

        c = self.constraint
        sites = []
        for k, label in enumerate(c.wyckoff):
            z = int(c.atomic_numbers[c.orbit == k][0])
            form = wyckoff_form(c.space_group, label)
            sites.append(f"{Element.from_Z(z).symbol} {label}" + (f" ({form})" if form else ""))
        return (f"space group {c.space_group} ({c.lattice_system}), {c.num_atoms} atoms, "
                f"{c.coordinate_freedom} free coordinate(s), {c.lattice_freedom} free cell parameter(s): "
                + ", ".join(sites))


def _spglib_cell(crystal: Crystal) -> tuple[np.ndarray, np.ndarray, list[int]]:
    return (crystal.lattice.double().numpy(), crystal.frac_coords.double().numpy(),
            [int(z) for z in crystal.atomic_numbers.tolist()])


def _group_tolerance(cell, space_group: int | None, symprec: float) -> float:
    """The largest tolerance (from ``symprec`` down) at which spglib puts the cell in ``space_group``."""
    import spglib

    found = []
    for tolerance in [symprec] + [s for s in _SYMPRECS if s < symprec]:
        dataset = spglib.get_symmetry_dataset(cell, symprec=tolerance)
        number = 0 if dataset is None else int(dataset.number)
        if space_group is None and number:
            return tolerance
        if number == space_group:
            return tolerance
        found.append(number)
    if space_group is None:
        raise ValueError("spglib finds no space group for this structure")
    raise ValueError(f"spglib puts this structure in space group {found[0] or 'none'} at symprec {symprec} A, "
                     f"not in {space_group} (nor at tighter tolerances)")


def _ideal_cell(cell, setting: Setting, tolerance: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The idealized cell in the setting: (3, 3) lattice rows, (N, 3) coordinates in [0, 1), (N,) numbers."""
    import spglib

    standard = spglib.standardize_cell(cell, to_primitive=setting == "primitive", no_idealize=False, symprec=tolerance)
    if standard is None:
        raise ValueError("spglib could not standardize this structure")
    lattice, frac, numbers = (np.asarray(a) for a in standard)
    if setting == "primitive":
        reduced = spglib.niggli_reduce(lattice)
        if reduced is not None:   # the training data's cell convention; the same lattice, another basis
            frac = frac @ lattice @ np.linalg.inv(reduced)
            lattice = reduced
    frac = np.mod(np.round(frac, 12), 1.0)
    order = np.lexsort((frac[:, 2], frac[:, 1], frac[:, 0], numbers))   # elements together, for readable CIFs
    return lattice, frac[order], numbers[order]


def _image_gap(images: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Largest torus distance per operation between (K, 3) images and a (3,) point."""
    gap = images - target
    return np.abs(gap - np.round(gap)).max(-1)


def constraint_from_crystal(crystal: Crystal, space_group: int | None = None, setting: Setting = "primitive",
                            symprec: float = SYMPREC) -> SymmetricCell:
    """The Wyckoff constraint of a structure in its space group (``space_group`` when given, which spglib must
    find at ``symprec`` or a tighter tolerance), in the ideal cell of the setting.

    Raises ValueError when the structure is not in the asked group or the setting is unknown."""
    import spglib

    if setting not in SETTINGS:
        raise ValueError(f"unknown setting '{setting}'; choose one of {', '.join(SETTINGS)}")
    if space_group is not None and not 1 <= int(space_group) <= 230:
        raise ValueError(f"a space group is a number 1-230, got {space_group}")
    cell = _spglib_cell(crystal)
    tolerance = _group_tolerance(cell, space_group, symprec)
    lattice, frac, numbers = _ideal_cell(cell, setting, tolerance)
    dataset = spglib.get_symmetry_dataset((lattice, frac, numbers.tolist()), symprec=_IDEAL_SYMPREC)
    group = int(dataset.number)
    if space_group is not None and group != space_group:
        raise ValueError(f"the idealized cell is in space group {group}, not {space_group}")
    rotations = np.asarray(dataset.rotations, dtype=np.float64)           # (K, 3, 3): x' = W x + t
    translations = np.asarray(dataset.translations, dtype=np.float64)     # (K, 3)
    representatives = np.asarray(dataset.equivalent_atoms)
    orbit_of = {int(r): k for k, r in enumerate(dict.fromkeys(representatives.tolist()))}
    centring = len(dataset.std_types) / len(numbers)                        # conventional atoms per cell atom
    per_atom_w, per_atom_t = [], []
    for i, r in enumerate(representatives):
        images = rotations @ frac[r] + translations
        k = int(np.argmin(_image_gap(images, frac[i])))
        if _image_gap(images[k:k + 1], frac[i])[0] > _MATCH:
            raise ValueError("no symmetry operation maps the orbit's representative onto an atom (spglib dataset)")
        # the integer shift makes the operation land on the atom's own coordinates, not a periodic image
        per_atom_w.append(rotations[k])
        per_atom_t.append(translations[k] + np.round(frac[i] - images[k]))
    projectors, anchors, labels = [], [], []
    for r in orbit_of:
        images = rotations @ frac[r] + translations
        stabilizer = _image_gap(images, frac[r]) < _MATCH
        projectors.append(rotations[stabilizer].mean(0))
        anchors.append(frac[r])
        size = int((representatives == r).sum())
        labels.append(f"{int(round(size * centring))}{dataset.wyckoffs[r]}")
    point_group = np.unique(rotations.round().astype(np.int64), axis=0).astype(np.float64)
    as_tensor = lambda a: torch.tensor(np.asarray(a), dtype=torch.float64)   # noqa: E731
    constraint = SymmetryConstraint(
        space_group=group, lattice_system=lattice_system(group),
        atomic_numbers=torch.tensor(numbers, dtype=torch.long), rotations=as_tensor(per_atom_w),
        translations=as_tensor(per_atom_t), orbit=torch.tensor([orbit_of[int(r)] for r in representatives]),
        wyckoff=tuple(labels), site_projector=as_tensor(projectors), site_anchor=as_tensor(anchors),
        point_group=as_tensor(point_group))
    # the ideal cell's metric is invariant already; the group average removes the last float noise
    gram = symmetrize_gram(torch.tensor(lattice @ lattice.T).unsqueeze(0), constraint.point_group.unsqueeze(0))[0]
    ideal = Crystal(crystal.atomic_numbers.new_tensor(numbers.tolist()), torch.tensor(frac, dtype=torch.float64),
                    torch.linalg.cholesky(gram), material_id=crystal.material_id, space_group=group)
    return SymmetricCell(ideal, constraint)


def constraint_from_template(template, space_group: int, setting: Setting = "primitive") -> SymmetricCell:
    """The constraint of a ``templates.Template`` in the asked group; ValueError when it is of another group."""
    if template is None:
        raise ValueError("there is no template for this composition")
    if template.asked_group_missing:
        raise ValueError(f"no training crystal of this prototype is in space group {space_group}, so there is "
                         "no Wyckoff template for it")
    return constraint_from_crystal(template.crystal, space_group, setting)


# ----------------------------------------------------------------------------- from Wyckoff letters (pyxtal)
@lru_cache(maxsize=256)
def _pyxtal_group(space_group: int):
    from pyxtal.symmetry import Group

    return Group(int(space_group))


def _wyckoff_position(space_group: int, label: str):
    group = _pyxtal_group(space_group)
    letter = label.strip().lstrip("0123456789")
    for wp in group.Wyckoff_positions:
        if wp.letter == letter and (label.strip() == letter or wp.get_label() == label.strip()):
            return wp
    known = ", ".join(wp.get_label() for wp in reversed(group.Wyckoff_positions))
    raise ValueError(f"space group {space_group} has no Wyckoff position '{label}'; it has {known}")


def wyckoff_form(space_group: int, label: str) -> str:
    """The position's coordinates in the ITA standard setting (pyxtal's table), e.g. "x, x, 0"; "" when unknown."""
    try:
        return _wyckoff_position(space_group, label).ops[0].as_xyz_str()
    except Exception:   # only for display: the constraint never depends on it
        return ""


def constraint_from_wyckoff(space_group: int, sites: Sequence[tuple[int | str, str]], setting: Setting = "primitive",
                            seed: int = 0) -> SymmetricCell:
    """The constraint of a Wyckoff assignment given by hand: ``sites`` as (element, position) pairs, e.g.
    [("Na", "4a"), ("Cl", "4b")] in 225 (multiplicities count the conventional cell; a position may repeat
    only when it has a free parameter). A generic ideal crystal with these sites (random free parameters and
    cell from ``seed``) is built in the standard setting from pyxtal's tables and analysed by
    ``constraint_from_crystal``."""
    from pymatgen.core import Element

    if not 1 <= int(space_group) <= 230:
        raise ValueError(f"a space group is a number 1-230, got {space_group}")
    if not sites:
        raise ValueError("give at least one (element, Wyckoff position) pair")
    positions = []
    for element, label in sites:
        z = int(element) if isinstance(element, (int, np.integer)) else Element(str(element)).Z
        positions.append((z, _wyckoff_position(space_group, str(label))))
    fixed = [wp.get_label() for _, wp in positions if wp.get_dof() == 0]
    repeated = sorted({label for label in fixed if fixed.count(label) > 1})
    if repeated:
        raise ValueError(f"Wyckoff position(s) {', '.join(repeated)} have no free parameter: each holds one element")
    generators = _pyxtal_group(space_group)[0].ops   # the general position: every operation of the group
    point_group = torch.tensor(np.unique(np.array([op.rotation_matrix for op in generators]).round(), axis=0),
                               dtype=torch.float64)
    rng = np.random.default_rng(seed)
    last_error = None
    for _ in range(20):   # a draw can land on a special value (more symmetry, or atoms on top of each other)
        numbers, frac = [], []
        for z, wp in positions:
            members = np.asarray(wp.get_all_positions(wp.ops[0].operate(rng.uniform(0.05, 0.95, 3))))
            numbers += [z] * len(members)
            frac.append(members)
        metric = np.diag(rng.uniform(4.0, 6.0, 3) ** 2) + rng.normal(0, 2.0, (3, 3))
        gram = symmetrize_gram(torch.tensor((metric + metric.T) / 2 + 16 * np.eye(3)).unsqueeze(0),
                               point_group.unsqueeze(0))[0]
        crystal = Crystal(torch.tensor(numbers), torch.tensor(np.mod(np.concatenate(frac), 1.0)),
                          torch.linalg.cholesky(gram), space_group=int(space_group))
        try:
            built = constraint_from_crystal(crystal, int(space_group), setting, symprec=_IDEAL_SYMPREC)
        except ValueError as error:
            last_error = error
            continue
        # spglib may name an equivalent choice (NaCl: Na 4b, Cl 4a); the orbits and multiplicities must agree
        multiplicities = sorted(int(label.rstrip(string.ascii_letters)) for label in built.constraint.wyckoff)
        if multiplicities == sorted(wp.multiplicity for _, wp in positions):
            return built
    raise ValueError(f"could not build a crystal with these Wyckoff positions in space group {space_group}"
                     + (f" ({last_error})" if last_error else ""))


def symmetric_request(cells: Sequence[SymmetricCell], seeds: Sequence[int], prop: Sequence[float] | None = None,
                      condition: bool = True, start_step: int | None = None):
    """A ``SampleRequest`` for these constrained cells: their atoms in the constraints' order, each
    conditioned on its group (``condition``, for a space-group model) and, with ``start_step``, started
    from its ideal cell noised to that step (SDEdit) instead of from noise."""
    from .samplers.config import SampleRequest

    if len(cells) != len(seeds):
        raise ValueError("give one seed per constrained cell")
    return SampleRequest(
        num_atoms=tuple(cell.constraint.num_atoms for cell in cells), seeds=tuple(int(s) for s in seeds),
        atomic_numbers=tuple(tuple(cell.constraint.atomic_numbers.tolist()) for cell in cells),
        prop=None if prop is None else tuple(prop),
        space_group=tuple(cell.constraint.space_group for cell in cells) if condition else None,
        start=None if start_step is None else tuple(cell.crystal for cell in cells), start_step=start_step,
        symmetry=tuple(cell.constraint for cell in cells))
