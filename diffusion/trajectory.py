"""The record of one sampling run: every (or every k-th) step from x_T to x_0."""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch
from pymatgen.core import Lattice, Structure

from .corruption import MASK


def nearest_frame(steps: list[int], t: int) -> int:
    """Index of the recorded step nearest t; on a tie the earlier (noisier) frame. The 3D view's JavaScript
    (explorer/crystal_view.js) applies the same rule in the browser."""
    return min(range(len(steps)), key=lambda k: (abs(steps[k] - int(t)), k))


@dataclass(frozen=True)
class Trajectory:
    """Frames k = 0..K-1 go from noise (timesteps[0] = T) to the sample (timesteps[-1] = 0).

    All tensors are on the CPU. B crystals, N atoms in total, K frames:
        timesteps: (K,) int64 step t of each frame.
        num_atoms: (B,) int64.
        lattice: (K, B, 3, 3) float32 lattice L_t in angstrom (rows are vectors).
        frac_coords: (K, N, 3) float32 F_t in [0, 1).
        types: (K, N) int64 atom types at step t (0 = still masked, ab initio only).
        type_probs: (K, N, 101) float32 model's p(type | x_t), or None for CSP.
        pred_lattice, pred_frac_coords: the model's prediction of x_0 made at step t
            (the final frame repeats the sample itself).
        lattice_noise_norm: (K, B) |eps_hat| of the lattice latent predicted at step t.
        coord_score_norm: (K, B) RMS of the predicted normalized coordinate score.
        min_distance: (K, B) shortest interatomic distance (angstrom, periodic).
        volume: (K, B) cell volume (cubic angstrom).
        coefficients: the numbers each update t -> s of the sampler's grid used, in order (one
            ``diffusion.samplers`` Coefficients per update, recorded or not; the equation panel
            shows them). Empty for trajectories made before they were kept.
    """

    timesteps: torch.Tensor
    num_atoms: torch.Tensor
    lattice: torch.Tensor
    frac_coords: torch.Tensor
    types: torch.Tensor
    type_probs: torch.Tensor | None
    pred_lattice: torch.Tensor
    pred_frac_coords: torch.Tensor
    lattice_noise_norm: torch.Tensor
    coord_score_norm: torch.Tensor
    min_distance: torch.Tensor
    volume: torch.Tensor
    sampler: str = ""
    seed: int = 0
    coefficients: tuple = ()

    @property
    def num_frames(self) -> int:
        return int(self.timesteps.shape[0])

    @property
    def num_crystals(self) -> int:
        return int(self.num_atoms.shape[0])

    def frame_of_step(self, t: int) -> int:
        """Index of the recorded frame closest to step t (see ``nearest_frame``)."""
        return nearest_frame([int(s) for s in self.timesteps.tolist()], t)

    def _atoms(self, crystal: int) -> slice:
        start = int(self.num_atoms[:crystal].sum())
        return slice(start, start + int(self.num_atoms[crystal]))

    def structure(self, t: int | None = None, crystal: int = 0, frame: int | None = None,
                  predicted: bool = False) -> Structure:
        """pymatgen Structure of one crystal at step t (or at a frame index); t=0 is the sample.

        Masked atoms of the ab initio task are shown as their most probable element.
        With ``predicted=True`` the model's x_0 prediction made at that step is returned.
        """
        k = self.frame_of_step(t) if frame is None else int(frame)
        atoms = self._atoms(crystal)
        lattice = (self.pred_lattice if predicted else self.lattice)[k, crystal]
        frac = (self.pred_frac_coords if predicted else self.frac_coords)[k, atoms]
        return Structure(Lattice(lattice.double().numpy()), self.element_numbers(k, crystal).tolist(),
                         frac.double().numpy())

    def element_numbers(self, frame: int, crystal: int = 0) -> np.ndarray:
        """(n,) atomic numbers at a frame; masked atoms take their most probable element."""
        types = self.types[frame, self._atoms(crystal)].clone()
        masked = types == MASK
        if masked.any():
            if self.type_probs is None:
                raise ValueError("masked atoms without type probabilities")
            probs = self.type_probs[frame, self._atoms(crystal)][masked].clone()
            probs[:, MASK] = 0
            types[masked] = probs.argmax(-1)
        return types.numpy()

    def masked(self, frame: int, crystal: int = 0) -> np.ndarray:
        """(n,) bool: which atoms' types are still undecided at a frame."""
        return (self.types[frame, self._atoms(crystal)] == MASK).numpy()

    def select(self, crystals: list[int], seed: int | None = None) -> "Trajectory":
        """The trajectory of some of its crystals only (rows of a shared batch, ``shared_sampling.py``); ``seed``
        is the first selected crystal's seed (default: this trajectory's)."""
        if not crystals or not all(0 <= c < self.num_crystals for c in crystals):
            raise ValueError(f"crystal rows must be in 0..{self.num_crystals - 1}, got {crystals}")
        atoms = torch.cat([torch.arange(self._atoms(c).start, self._atoms(c).stop) for c in crystals])
        rows = torch.tensor(crystals)
        per_atom = lambda v: None if v is None else v[:, atoms]
        per_crystal = lambda v: v[:, rows]
        return replace(self, num_atoms=self.num_atoms[rows], lattice=per_crystal(self.lattice),
                       frac_coords=per_atom(self.frac_coords), types=per_atom(self.types),
                       type_probs=per_atom(self.type_probs), pred_lattice=per_crystal(self.pred_lattice),
                       pred_frac_coords=per_atom(self.pred_frac_coords),
                       lattice_noise_norm=per_crystal(self.lattice_noise_norm),
                       coord_score_norm=per_crystal(self.coord_score_norm), min_distance=per_crystal(self.min_distance),
                       volume=per_crystal(self.volume), seed=self.seed if seed is None else int(seed))

    def spread_over(self, num_steps: int) -> "Trajectory":
        """The same frames on a 0..num_steps axis: frame k of K at t = round(num_steps * (K-1-k) / (K-1)), so a file
        from another model (whose frames carry no step of ours) shares a slider with our run (Compare)."""
        K = self.num_frames
        steps = torch.tensor([round(num_steps * (K - 1 - k) / max(1, K - 1)) for k in range(K)], dtype=torch.int64)
        return replace(self, timesteps=steps)

    def final_structures(self) -> list[Structure]:
        return [self.structure(frame=self.num_frames - 1, crystal=i) for i in range(self.num_crystals)]

    def to_extxyz(self, crystal: int = 0) -> str:
        """All frames of one crystal as multi-frame extended XYZ (readable by ASE and OVITO).

        Cartesian positions are F L in float64, as pymatgen computes them, straight from the tensors (a
        pymatgen Structure per frame cost a third of a second for a 1000-step trajectory)."""
        from pymatgen.core.periodic_table import Element

        atoms = self._atoms(crystal)
        lattices = self.lattice[:, crystal].double().numpy()                 # (K, 3, 3)
        positions = self.frac_coords[:, atoms].double().numpy() @ lattices   # (K, n, 3)
        symbols: dict[int, str] = {}
        lines = []
        for k in range(self.num_frames):
            numbers = self.element_numbers(k, crystal).tolist()
            lat = " ".join(f"{v:.8f}" for v in lattices[k].flatten())
            lines.append(str(len(numbers)))
            lines.append(f'Lattice="{lat}" Properties=species:S:1:pos:R:3 pbc="T T T" step={int(self.timesteps[k])}')
            for z, (x, y, zz) in zip(numbers, positions[k].tolist()):
                symbol = symbols.get(z) or symbols.setdefault(z, Element.from_Z(z).symbol)
                lines.append(f"{symbol} {x:.8f} {y:.8f} {zz:.8f}")
        return "\n".join(lines) + "\n"
