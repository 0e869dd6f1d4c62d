"""Symmetry-constrained sampling: projections applied to the state after every sampler step.

DiffCSP++ (Jiao et al., ICLR 2024) generates a crystal inside a given space group with given Wyckoff
positions. Here the same idea is a projection: after each update (and on the start state) the
crystal is moved into the constrained subspace, so every frame of the trajectory is in the group and
the next step starts from the projected state.

- Lattice: a cell is in the group's lattice subspace when its metric G = L L^T is invariant under
  every rotation W of the point group (in the cell's fractional basis): W^T G W = G. The projection
  is the group average G -> mean_W W^T G W (linear, idempotent, keeps G positive definite), done
  on the cell decoded from the latent and encoded back, so the sampler's latent stays consistent.
  It holds in any setting (a cubic F cell as its 60-degree primitive cell, hexagonal axes, ...).
- Coordinates: one representative per Wyckoff orbit; atom i of the orbit is x_i = W_i r + t_i. The
  representative implied by each member, W_i^-1 (x_i - t_i), is averaged on the torus (circular
  mean), moved onto the Wyckoff position's free-parameter subspace (e.g. (x, x, 0)), and every
  member is regenerated from it. Representatives whose atoms come closer than 0.5 A to another atom
  are pushed apart along their free parameters (a collapsed orbit is not a crystal).

The constraint itself comes from a structure (spglib) or a space group and Wyckoff letters (pyxtal):
``diffusion/wyckoff.py``. This module is pure tensor arithmetic.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import torch

from ..corruption import LatticeStats, latent_to_lattice, lattice_to_latent, sym_to_vec6, vec6_to_sym, wrap
from .base import SamplerState

LATTICE_SYSTEMS = ("triclinic", "monoclinic", "orthorhombic", "tetragonal", "rhombohedral", "hexagonal", "cubic")
_RHOMBOHEDRAL_GROUPS = (146, 148, 155, 160, 161, 166, 167)


def lattice_system(space_group: int) -> str:
    """The lattice system of an international space-group number (R groups: rhombohedral)."""
    if not 1 <= int(space_group) <= 230:
        raise ValueError(f"a space group is a number 1-230, got {space_group}")
    if space_group in _RHOMBOHEDRAL_GROUPS:
        return "rhombohedral"
    for top, name in ((2, "triclinic"), (15, "monoclinic"), (74, "orthorhombic"), (142, "tetragonal"),
                      (194, "hexagonal")):
        if space_group <= top:
            return name
    return "cubic"


@dataclass(frozen=True, eq=False)
class SymmetryConstraint:
    """One crystal's space group and Wyckoff assignment, in the fractional basis of its cell.

    space_group: 1-230; lattice_system: one of ``LATTICE_SYSTEMS``.
    atomic_numbers: (N,) long, the atoms in the order the constraint expects them.
    rotations: (N, 3, 3) float64 (integer-valued) and translations: (N, 3) float64: atom i is
        x_i = W_i r_o + t_i (mod 1), r_o the representative of its orbit o (identity for the representative).
    orbit: (N,) long, the orbit of each atom, 0..O-1; wyckoff: (O,) labels such as "4a"
        (multiplicity in the conventional cell, then the letter).
    site_projector: (O, 3, 3) float64 P_o and site_anchor: (O, 3) float64 a_o: the Wyckoff position of
        orbit o is {a_o + P_o d} (P_o is the mean of the site-symmetry rotations, a projection).
    point_group: (K, 3, 3) float64, the distinct rotations W of the group, for the metric.
    """

    space_group: int
    lattice_system: str
    atomic_numbers: torch.Tensor
    rotations: torch.Tensor
    translations: torch.Tensor
    orbit: torch.Tensor
    wyckoff: tuple[str, ...]
    site_projector: torch.Tensor
    site_anchor: torch.Tensor
    point_group: torch.Tensor

    def __post_init__(self) -> None:
        n, o = int(self.atomic_numbers.shape[0]), len(self.wyckoff)
        if not 1 <= self.space_group <= 230:
            raise ValueError(f"a space group is a number 1-230, got {self.space_group}")
        if self.lattice_system not in LATTICE_SYSTEMS:
            raise ValueError(f"unknown lattice system '{self.lattice_system}'")
        shapes = {"rotations": (n, 3, 3), "translations": (n, 3), "orbit": (n,), "site_projector": (o, 3, 3),
                  "site_anchor": (o, 3)}
        for name, shape in shapes.items():
            if tuple(getattr(self, name).shape) != shape:
                raise ValueError(f"{name} must have shape {shape}, got {tuple(getattr(self, name).shape)}")
        if self.point_group.ndim != 3 or self.point_group.shape[1:] != (3, 3) or not 1 <= self.point_group.shape[0] <= 48:
            raise ValueError("point_group must hold 1 to 48 rotations, shape (K, 3, 3)")
        if n and (int(self.orbit.min()) < 0 or int(self.orbit.max()) >= o):
            raise ValueError("orbit indices must be in 0..O-1")
        for k in range(o):
            if len(set(self.atomic_numbers[self.orbit == k].tolist())) != 1:
                raise ValueError(f"orbit {k} ({self.wyckoff[k]}) must hold atoms of one element")

    @property
    def num_atoms(self) -> int:
        return int(self.atomic_numbers.shape[0])

    @property
    def coordinate_freedom(self) -> int:
        """Free coordinate parameters: the sum of the Wyckoff positions' (x, y, z) freedoms."""
        return int(round(float(torch.diagonal(self.site_projector, dim1=-2, dim2=-1).sum())))

    @property
    def lattice_freedom(self) -> int:
        """Free cell parameters: 6 triclinic, 4 monoclinic, 3 orthorhombic, 2 tetragonal, hexagonal or
        rhombohedral, 1 cubic (the dimension of the invariant metrics)."""
        basis = vec6_to_sym(torch.eye(6, dtype=torch.float64))          # an orthonormal basis of symmetric matrices
        images = sym_to_vec6(symmetrize_gram(basis, self.point_group.double().expand(6, -1, -1, -1)))
        return int(round(float(torch.trace(images))))   # a projection's trace is its rank


# ----------------------------------------------------------------------------- pure projections
def symmetrize_gram(gram: torch.Tensor, point_group: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
    """The group average of a metric, mean_W W^T G W: its projection onto the metrics the point group leaves
    invariant (linear and idempotent; an average of positive-definite metrics is positive definite).

    gram: (C, 3, 3) G = L L^T; point_group: (C, K, 3, 3) rotations on fractional coordinates;
    weights: (C, K) summing to 1 per crystal (zeros pad groups smaller than K; None = uniform).
    Returns (C, 3, 3).
    """
    images = torch.einsum("ckji,cjl,cklm->ckim", point_group, gram, point_group)
    if weights is None:
        return images.mean(1)
    return (images * weights[..., None, None]).sum(1)


def onto_sites(rep: torch.Tensor, projector: torch.Tensor, anchor: torch.Tensor) -> torch.Tensor:
    """Each representative moved onto its Wyckoff position {a + P d} on the torus.

    rep, anchor: (O, 3) fractional; projector: (O, 3, 3). Returns (O, 3) exactly on the positions.
    The displacement is taken as the shortest one on the torus, twice: first from the anchor, then
    from that first answer (a point of the position nearer to rep), so a free parameter far from the
    anchor's value is not split across periodic images.
    """
    point = anchor
    for _ in range(2):
        d = rep - point
        point = point + torch.einsum("oij,oj->oi", projector, d - torch.round(d))
    return point


def representatives(frac: torch.Tensor, inverse_rotations: torch.Tensor, translations: torch.Tensor,
                    orbit: torch.Tensor, projector: torch.Tensor, anchor: torch.Tensor) -> torch.Tensor:
    """One representative per orbit: the circular mean of the representative each atom implies,
    W_i^-1 (x_i - t_i), moved onto its Wyckoff position.

    frac: (M, 3); inverse_rotations: (M, 3, 3); translations: (M, 3); orbit: (M,) long in 0..O-1;
    projector: (O, 3, 3); anchor: (O, 3). Returns (O, 3) float64.
    """
    implied = torch.einsum("mij,mj->mi", inverse_rotations, frac.double() - translations) * (2 * math.pi)
    num_orbits = anchor.shape[0]
    cos = implied.new_zeros(num_orbits, 3).index_add_(0, orbit, torch.cos(implied))
    sin = implied.new_zeros(num_orbits, 3).index_add_(0, orbit, torch.sin(implied))
    return onto_sites(torch.atan2(sin, cos) / (2 * math.pi), projector, anchor)


def members(rep: torch.Tensor, rotations: torch.Tensor, translations: torch.Tensor, orbit: torch.Tensor) -> torch.Tensor:
    """Every atom regenerated from its orbit's representative, x_i = W_i r + t_i (mod 1).

    rep: (O, 3); rotations: (M, 3, 3); translations: (M, 3); orbit: (M,). Returns (M, 3) in [0, 1)."""
    return wrap(torch.einsum("mij,mj->mi", rotations, rep[orbit]) + translations)


def symmetrize_frac(frac: torch.Tensor, rotations: torch.Tensor, inverse_rotations: torch.Tensor,
                    translations: torch.Tensor, orbit: torch.Tensor, projector: torch.Tensor,
                    anchor: torch.Tensor) -> torch.Tensor:
    """Coordinates regenerated from one representative per orbit (``representatives``, then ``members``).

    frac: (M, 3) fractional coordinates; rotations, inverse_rotations: (M, 3, 3); translations: (M, 3);
    orbit: (M,) long in 0..O-1; projector: (O, 3, 3); anchor: (O, 3). Returns (M, 3) in [0, 1), float64.
    """
    rep = representatives(frac, inverse_rotations, translations, orbit, projector, anchor)
    return members(rep, rotations, translations, orbit)


_IMAGES = torch.tensor([[i, j, k] for i in (-1, 0, 1) for j in (-1, 0, 1) for k in (-1, 0, 1)], dtype=torch.float64)


def spread_representatives(rep: torch.Tensor, gram: torch.Tensor, rotations: torch.Tensor, translations: torch.Tensor,
                           orbit: torch.Tensor, projector: torch.Tensor, pairs: torch.Tensor, pair_crystal: torch.Tensor,
                           orbit_crystal: torch.Tensor, min_distance: float, iterations: int = 8) -> torch.Tensor:
    """Representatives moved along their free parameters until no two atoms are closer than min_distance.

    A representative near a more symmetric point puts members of its orbit on top of each other (O 4f
    (x, x, 0) of rutile at x = 0), and one near another orbit's position puts two atoms together; spglib
    cannot analyse such frames and the network sees an impossible crystal. Each iteration moves every
    representative by half the Cartesian push its close pairs ask for (gradient of the pair distances,
    in the metric, restricted to the Wyckoff position), so states with every pair apart are left as they are.

    rep: (O, 3); gram: (C, 3, 3) metric L L^T of each constrained crystal; rotations: (M, 3, 3);
    translations: (M, 3); orbit: (M,); projector: (O, 3, 3); pairs: (P, 2) atom pairs of one crystal;
    pair_crystal: (P,) and orbit_crystal: (O,) crystal rows 0..C-1. Returns (O, 3).
    """
    if pairs.shape[0] == 0 or min_distance <= 0:
        return rep
    images = _IMAGES.to(rep.device)
    metric = gram[pair_crystal]                                                     # (P, 3, 3)
    step_metric = torch.linalg.inv(gram)[orbit_crystal]                             # (O, 3, 3)
    i, j = pairs[:, 0], pairs[:, 1]
    for _ in range(iterations):
        x = torch.einsum("mij,mj->mi", rotations, rep[orbit]) + translations      # unwrapped members
        gap = x[j] - x[i]
        gap = (gap - torch.round(gap)).unsqueeze(1) + images                        # (P, 27, 3)
        dist2 = torch.einsum("pki,pij,pkj->pk", gap, metric, gap)
        nearest = dist2.argmin(1)
        gap = gap[torch.arange(gap.shape[0], device=gap.device), nearest]          # (P, 3)
        dist = dist2.gather(1, nearest[:, None]).squeeze(1).clamp(min=0).sqrt()
        push = (min_distance - dist).clamp(min=0)
        if not bool((push > 0).any()):
            break
        # d dist / d x_j = G gap / dist; through x = W r + t onto each pair's two representatives
        grad = torch.einsum("pij,pj->pi", metric, gap) / dist.clamp(min=1e-9)[:, None] * push[:, None]
        force = torch.zeros_like(rep)
        force.index_add_(0, orbit[j], torch.einsum("pji,pj->pi", rotations[j], grad))
        force.index_add_(0, orbit[i], -torch.einsum("pji,pj->pi", rotations[i], grad))
        # the metric's inverse turns the gradient into a fractional displacement of about push angstrom
        rep = rep + 0.5 * torch.einsum("oij,ojk,ok->oi", projector, step_metric, force)
    return rep


def symmetrize_latent(x: torch.Tensor, num_atoms: torch.Tensor, stats: LatticeStats, point_group: torch.Tensor,
                      weights: torch.Tensor | None = None) -> torch.Tensor:
    """Lattice latents projected onto the point group's cells (``symmetrize_gram`` on the decoded cell).

    x: (C, 6) normalized latent; num_atoms: (C,); point_group: (C, K, 3, 3); weights: (C, K) or None.
    Returns (C, 6) float32.
    """
    lattice = latent_to_lattice(x, num_atoms, stats).double()
    gram = symmetrize_gram(lattice @ lattice.transpose(-1, -2), point_group.double(),
                           None if weights is None else weights.double())
    # any cell with this metric encodes to the same latent (the latent sees only L L^T)
    return lattice_to_latent(torch.linalg.cholesky(gram), num_atoms, stats)


# ----------------------------------------------------------------------------- a batch
MIN_DISTANCE = 0.5   # angstrom: the validity cutoff (tolerances.VALID_MIN_DISTANCE); closer atoms are pushed apart


@dataclass(frozen=True, eq=False)
class BatchedSymmetry:
    """The constraints of a sampling batch, concatenated for one vectorized projection.

    crystals: (C,) rows of the batch's (B, 6) latent that are constrained; num_atoms: (C,);
    point_group: (C, 48, 3, 3) padded with zeros, weights: (C, 48) 1/|group| for a real rotation, 0 for padding.
    atoms: (M,) rows of the batch's (N, 3) coordinates that are constrained; rotations,
    inverse_rotations: (M, 3, 3); translations: (M, 3); orbit: (M,) in 0..O-1 over the whole batch;
    projector: (O, 3, 3); anchor: (O, 3); orbit_crystal: (O,) in 0..C-1; pairs: (P, 2) indices into the
    M atoms of every pair of atoms of one crystal; pair_crystal: (P,) in 0..C-1. Index tensors are long,
    the rest float64. stats: the model's lattice statistics; min_distance: atoms closer than this (angstrom)
    are pushed apart along their free parameters (0: the plain projection).
    """

    crystals: torch.Tensor
    num_atoms: torch.Tensor
    point_group: torch.Tensor
    weights: torch.Tensor
    atoms: torch.Tensor
    rotations: torch.Tensor
    inverse_rotations: torch.Tensor
    translations: torch.Tensor
    orbit: torch.Tensor
    projector: torch.Tensor
    anchor: torch.Tensor
    orbit_crystal: torch.Tensor
    pairs: torch.Tensor
    pair_crystal: torch.Tensor
    stats: LatticeStats
    min_distance: float = MIN_DISTANCE

    @classmethod
    def of(cls, constraints: Sequence[SymmetryConstraint | None], num_atoms: Sequence[int], stats: LatticeStats,
           device: torch.device | str = "cpu", min_distance: float = MIN_DISTANCE) -> "BatchedSymmetry":
        """From one constraint (or None: left free) per crystal of a batch with these atom counts."""
        if len(constraints) != len(num_atoms):
            raise ValueError("give one symmetry constraint (or None) per crystal")
        if not (math.isfinite(min_distance) and min_distance >= 0):
            raise ValueError(f"min_distance must be a number >= 0, got {min_distance}")
        parts: dict[str, list[torch.Tensor]] = {name: [] for name in (
            "crystals", "num_atoms", "point_group", "weights", "atoms", "rotations", "translations", "orbit",
            "projector", "anchor", "orbit_crystal", "pairs", "pair_crystal")}
        start = constrained_atoms = orbits = 0
        for b, (constraint, n) in enumerate(zip(constraints, num_atoms)):
            if constraint is not None:
                if constraint.num_atoms != n:
                    raise ValueError(f"crystal {b} has {n} atoms but its symmetry constraint {constraint.num_atoms}")
                c, k = len(parts["crystals"]), constraint.point_group.shape[0]
                i, j = torch.triu_indices(n, n, 1)
                padding = torch.zeros(48 - k, dtype=torch.float64)
                for name, value in (
                        ("crystals", torch.tensor([b])), ("num_atoms", torch.tensor([n])),
                        ("point_group", torch.cat([constraint.point_group.double(), padding[:, None, None].expand(-1, 3, 3)])[None]),
                        ("weights", torch.cat([torch.full((k,), 1.0 / k, dtype=torch.float64), padding])[None]),
                        ("atoms", torch.arange(start, start + n)), ("rotations", constraint.rotations.double()),
                        ("translations", constraint.translations.double()), ("orbit", constraint.orbit + orbits),
                        ("projector", constraint.site_projector.double()), ("anchor", constraint.site_anchor.double()),
                        ("orbit_crystal", torch.full((len(constraint.wyckoff),), c)),
                        ("pairs", torch.stack([i, j], 1) + constrained_atoms), ("pair_crystal", torch.full((len(i),), c))):
                    parts[name].append(value)
                orbits += len(constraint.wyckoff)
                constrained_atoms += n
            start += n
        if not parts["crystals"]:
            raise ValueError("no crystal of the batch has a symmetry constraint")
        joined = {name: torch.cat(values).to(device) for name, values in parts.items()}
        inverse = torch.round(torch.linalg.inv(joined["rotations"]))   # integer matrices of determinant +-1
        return cls(**joined, inverse_rotations=inverse, stats=stats, min_distance=float(min_distance))


def project_state(state: SamplerState, symmetry: BatchedSymmetry) -> SamplerState:
    """The state with every constrained crystal moved into its group (the others untouched).

    The lattice latent goes to the point group's cells (``symmetrize_latent``), the coordinates to one
    representative per orbit on its Wyckoff position (``representatives``), kept ``min_distance`` apart
    (``spread_representatives``), and every atom is regenerated from them (``members``).
    state: x (B, 6), frac (N, 3), types (N,). A state already in the group with its atoms apart is returned
    as it is (to float32 rounding): the projection is idempotent.
    """
    s = symmetry
    x = state.x.clone()
    x[s.crystals] = symmetrize_latent(state.x[s.crystals], s.num_atoms, s.stats, s.point_group, s.weights).to(x.dtype)
    rep = representatives(state.frac[s.atoms], s.inverse_rotations, s.translations, s.orbit, s.projector, s.anchor)
    if s.min_distance > 0:
        lattice = latent_to_lattice(x[s.crystals], s.num_atoms, s.stats).double()
        rep = spread_representatives(rep, lattice @ lattice.transpose(-1, -2), s.rotations, s.translations, s.orbit,
                                     s.projector, s.pairs, s.pair_crystal, s.orbit_crystal, s.min_distance)
    frac = state.frac.clone()
    frac[s.atoms] = wrap(members(rep, s.rotations, s.translations, s.orbit).to(frac.dtype))
    return SamplerState(x, frac, state.types)
