"""Crystal containers and the one place where we convert to and from pymatgen.

Conventions (used everywhere in the project):
- ``lattice`` rows are the lattice vectors a, b, c in angstrom (pymatgen's convention),
- Cartesian positions = ``frac_coords @ lattice``,
- ``frac_coords`` are wrapped into [0, 1).
"""
from __future__ import annotations

import dataclasses
import math
import warnings
from dataclasses import dataclass, field

import numpy as np
import torch
from pymatgen.core import Lattice, Structure


MAX_CIF_CHARS = 5_000_000  # a 500-atom CIF is ~50 kB; anything this big is not one crystal


class CrystalError(ValueError):
    """A structure that cannot be represented (disordered, empty, broken CIF...)."""


@dataclass(frozen=True)
class Crystal:
    """One periodic crystal M = (A, F, L).

    Attributes:
        atomic_numbers: (N,) int64 atomic numbers Z.
        frac_coords: (N, 3) float64 fractional coordinates in [0, 1).
        lattice: (3, 3) float64, rows are lattice vectors in angstrom.
        material_id: identifier from the data source ("" when unknown).
        properties: scalar properties (e.g. ``{"band_gap": 1.2}``).
        space_group: international space-group number 1..230 when known, else 0.
    """

    atomic_numbers: torch.Tensor
    frac_coords: torch.Tensor
    lattice: torch.Tensor
    material_id: str = ""
    properties: dict[str, float] = field(default_factory=dict)
    space_group: int = 0

    @property
    def num_atoms(self) -> int:
        return int(self.atomic_numbers.shape[0])

    @property
    def volume(self) -> float:
        """Cell volume in cubic angstrom."""
        return abs(float(torch.linalg.det(self.lattice.double())))

    @property
    def formula(self) -> str:
        return self.to_structure().composition.formula.replace(" ", "")

    @classmethod
    def from_structure(cls, structure: Structure, material_id: str = "",
                       properties: dict[str, float] | None = None, space_group: int = 0) -> "Crystal":
        """Build from an ordered pymatgen Structure (the orientation is kept as is)."""
        if len(structure) == 0:
            raise CrystalError("the structure has no atoms")
        if not structure.is_ordered:
            raise CrystalError("the structure has partial occupancies (disorder); only ordered crystals are supported")
        numbers = [site.specie.Z for site in structure]
        frac = np.mod(np.asarray(structure.frac_coords, dtype=np.float64), 1.0)
        frac[frac >= 1.0] = 0.0  # mod can round up to exactly 1.0
        return cls(
            atomic_numbers=torch.tensor(numbers, dtype=torch.long),
            frac_coords=torch.from_numpy(frac),
            lattice=torch.tensor(structure.lattice.matrix, dtype=torch.float64),
            material_id=material_id,
            properties=dict(properties or {}),
            space_group=int(space_group),
        )

    def to_structure(self) -> Structure:
        """A pymatgen Structure with exactly this lattice matrix (orientation kept)."""
        return Structure(
            Lattice(self.lattice.double().cpu().numpy()),
            self.atomic_numbers.cpu().tolist(),
            self.frac_coords.double().cpu().numpy(),
        )

    @classmethod
    def from_cif(cls, text: str, material_id: str = "", properties: dict[str, float] | None = None,
                 space_group: int = 0) -> "Crystal":
        """Parse the first structure of a CIF text; raises ``CrystalError`` with a readable reason."""
        if not text or not text.strip():
            raise CrystalError("the CIF text is empty")
        if len(text) > MAX_CIF_CHARS:
            raise CrystalError(f"the CIF text is too large ({len(text) / 1e6:.1f} MB; at most {MAX_CIF_CHARS / 1e6:.0f} MB)")
        if "\x00" in text[:4096]:
            raise CrystalError("this is a binary file, not a CIF text")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                structure = Structure.from_str(text, fmt="cif")
        except Exception as exc:  # pymatgen raises many types for broken CIFs
            raise CrystalError(f"could not parse the CIF: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
        return cls.from_structure(structure, material_id, properties, space_group)

    def to_cif(self) -> str:
        """A P1 CIF with full precision coordinates."""
        from pymatgen.io.cif import CifWriter

        return str(CifWriter(self.to_structure(), significant_figures=12))

    def replace(self, **changes) -> "Crystal":
        return dataclasses.replace(self, **changes)


def lattice_parameters(lattice: torch.Tensor) -> tuple[float, float, float, float, float, float]:
    """(a, b, c, alpha, beta, gamma) in angstrom and degrees of a (3, 3) lattice."""
    lat = lattice.double()
    lengths = torch.linalg.norm(lat, dim=-1)

    def angle(i: int, j: int) -> float:
        cos = float(torch.dot(lat[i], lat[j]) / (lengths[i] * lengths[j]))
        return math.degrees(math.acos(max(-1.0, min(1.0, cos))))

    return (float(lengths[0]), float(lengths[1]), float(lengths[2]), angle(1, 2), angle(0, 2), angle(0, 1))


@dataclass(frozen=True)
class CrystalBatch:
    """Several crystals in graph-style batching: atoms are concatenated.

    Attributes:
        atomic_numbers: (N_total,) int64.
        frac_coords: (N_total, 3) float32 in [0, 1).
        lattice: (B, 3, 3) float32, rows are lattice vectors in angstrom.
        num_atoms: (B,) int64 atoms per crystal.
        batch: (N_total,) int64 index of the crystal of each atom.
        prop: (B,) float32 conditioning property in data units; NaN means "no condition".
        space_group: (B,) int64 space-group number; 0 means "no condition".
    """

    atomic_numbers: torch.Tensor
    frac_coords: torch.Tensor
    lattice: torch.Tensor
    num_atoms: torch.Tensor
    batch: torch.Tensor
    prop: torch.Tensor
    space_group: torch.Tensor

    @property
    def num_crystals(self) -> int:
        return int(self.num_atoms.shape[0])

    @property
    def device(self) -> torch.device:
        return self.frac_coords.device

    @classmethod
    def from_crystals(cls, crystals: list[Crystal], property_name: str | None = None) -> "CrystalBatch":
        if not crystals:
            raise ValueError("cannot batch an empty list of crystals")
        num_atoms = torch.tensor([c.num_atoms for c in crystals], dtype=torch.long)
        props = [float(c.properties.get(property_name, math.nan)) if property_name else math.nan for c in crystals]
        return cls(
            atomic_numbers=torch.cat([c.atomic_numbers for c in crystals]).long(),
            frac_coords=torch.cat([c.frac_coords for c in crystals]).float(),
            lattice=torch.stack([c.lattice for c in crystals]).float(),
            num_atoms=num_atoms,
            batch=torch.repeat_interleave(torch.arange(len(crystals)), num_atoms),
            prop=torch.tensor(props, dtype=torch.float32),
            space_group=torch.tensor([c.space_group for c in crystals], dtype=torch.long),
        )

    def to(self, device: torch.device | str) -> "CrystalBatch":
        return CrystalBatch(**{f.name: getattr(self, f.name).to(device) for f in dataclasses.fields(self)})

    def replace(self, **changes) -> "CrystalBatch":
        return dataclasses.replace(self, **changes)

    def offsets(self) -> torch.Tensor:
        """(B,) index of each crystal's first atom."""
        return torch.cumsum(self.num_atoms, 0) - self.num_atoms

    def crystal(self, index: int) -> Crystal:
        """The index-th crystal as a float64 ``Crystal`` on the CPU."""
        start = int(self.offsets()[index])
        stop = start + int(self.num_atoms[index])
        return Crystal(
            atomic_numbers=self.atomic_numbers[start:stop].cpu().long(),
            frac_coords=self.frac_coords[start:stop].detach().cpu().double(),
            lattice=self.lattice[index].detach().cpu().double(),
            space_group=int(self.space_group[index]),
        )

    def crystals(self) -> list[Crystal]:
        return [self.crystal(i) for i in range(self.num_crystals)]


def fully_connected_edges(num_atoms: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """All ordered atom pairs (i, j) inside each crystal, self pairs included.

    Args:
        num_atoms: (B,) atoms per crystal.
    Returns:
        (src, dst): two (E,) index tensors into the concatenated atoms, E = sum n_b^2.
        Self pairs keep one-atom cells (bcc Fe, fcc Cu primitive cells) connected.
    """
    device = num_atoms.device
    offsets = torch.cumsum(num_atoms, 0) - num_atoms
    pairs = num_atoms * num_atoms
    crystal_of_edge = torch.repeat_interleave(torch.arange(num_atoms.shape[0], device=device), pairs)
    first_edge = torch.cumsum(pairs, 0) - pairs
    local = torch.arange(int(pairs.sum()), device=device) - first_edge[crystal_of_edge]
    n = num_atoms[crystal_of_edge]
    src = offsets[crystal_of_edge] + local // n
    dst = offsets[crystal_of_edge] + local % n
    return src, dst


def paired_edges(num_atoms: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The edges of ``fully_connected_edges`` ordered as [i < j pairs, the same pairs reversed, self pairs].

    Returns (src, dst), each (E,) with E = 2U + N: edge U + u is edge u reversed and edge 2U + a
    is atom a's self pair, so pair-symmetric edge features are computed for the first U only.
    """
    src, dst = fully_connected_edges(num_atoms)
    upper = src < dst
    us, ud = src[upper], dst[upper]
    atoms = torch.arange(int(num_atoms.sum()), device=num_atoms.device)
    return torch.cat([us, ud, atoms]), torch.cat([ud, us, atoms])


@dataclass(frozen=True)
class CrystalGraph:
    """The index tensors of a batch's topology, built once and reused at every sampling step.

    num_atoms: (B,); batch: (N,) crystal of each atom; src, dst: (E,) the ``paired_edges``;
    inv_degree: (N, 1) 1 / (edges leaving each atom) = 1 / n of its crystal (self pair included);
    inv_size: (B, 1) 1 / n per crystal. Means over edges and atoms are then a scatter-add and
    one product, with no counting inside the network.
    """

    num_atoms: torch.Tensor
    batch: torch.Tensor
    src: torch.Tensor
    dst: torch.Tensor
    inv_degree: torch.Tensor
    inv_size: torch.Tensor

    @classmethod
    def build(cls, num_atoms: torch.Tensor, batch: torch.Tensor | None = None) -> "CrystalGraph":
        if batch is None:
            batch = torch.repeat_interleave(torch.arange(num_atoms.shape[0], device=num_atoms.device), num_atoms)
        src, dst = paired_edges(num_atoms)
        inv_size = 1.0 / num_atoms.clamp(min=1).to(torch.float32).unsqueeze(-1)
        return cls(num_atoms, batch, src, dst, inv_size[batch], inv_size)

    @property
    def num_crystals(self) -> int:
        return self.num_atoms.shape[0]

    def mean_over_edges(self, values: torch.Tensor) -> torch.Tensor:
        """(E, D) edge values -> (N, D) mean over the edges leaving each atom."""
        total = values.new_zeros(self.batch.shape[0], values.shape[-1]).index_add_(0, self.src, values)
        return total * self.inv_degree.to(values.dtype)

    def mean_over_atoms(self, values: torch.Tensor) -> torch.Tensor:
        """(N, D) atom values -> (B, D) mean over each crystal's atoms."""
        total = values.new_zeros(self.num_crystals, values.shape[-1]).index_add_(0, self.batch, values)
        return total * self.inv_size.to(values.dtype)
