"""Recording a sampling run: the raw state of chosen steps, then a ``Trajectory`` with diagnostics."""
from __future__ import annotations

import math

import torch

from ..corruption import NUM_TYPE_CLASSES
from ..geometry import min_distances, volumes
from ..crystal_diffusion import CrystalDiffusion, Prediction
from ..trajectory import Trajectory
from .base import CleanEstimate, Coefficients, SamplerState, tweedie_coords


class Recorder:
    """Copies the raw state of each recorded step into storage allocated once for all frames.

    One block per quantity rather than thousands of small tensors kept alive between the step's
    large temporaries: the heap then does not fragment (recording every frame of 256 crystals
    otherwise grew the resident size by ~2 MB per frame for ~60 kB of data). Diagnostics are
    derived for all frames at the end (``trajectory``).
    """

    def __init__(self, num_frames: int, ab_initio: bool):
        self.num_frames, self.count, self.ab_initio = num_frames, 0, ab_initio
        self.buffers: dict[str, torch.Tensor] = {}
        self.steps: list[int] = []

    def add_step(self, t: int, state: SamplerState, x0: CleanEstimate, out: Prediction) -> None:
        """The state at t, the x0 estimate made there and the network's outputs (norms come later)."""
        probs = x0.type_probs if self.ab_initio else state.x.new_zeros(0)
        self._add(t, x=state.x, frac=state.frac, types=state.types, probs=probs, x0=x0.lattice,
                  score=out.coord_score, eps=out.lattice_eps)

    def add_final(self, state: SamplerState) -> None:
        """The sample at t = 0: its own x0 estimate, no score, no noise prediction (NaN)."""
        probs = (torch.nn.functional.one_hot(state.types, NUM_TYPE_CLASSES).float() if self.ab_initio
                 else state.x.new_zeros(0))
        self._add(0, x=state.x, frac=state.frac, types=state.types, probs=probs, x0=state.x,
                  score=torch.zeros_like(state.frac), eps=torch.full_like(state.x, math.nan))

    def _add(self, t: int, **tensors: torch.Tensor) -> None:
        if self.count >= self.num_frames:
            raise RuntimeError("more frames recorded than planned")
        for key, value in tensors.items():
            if key not in self.buffers:
                self.buffers[key] = value.new_empty((self.num_frames, *value.shape))
            self.buffers[key][self.count].copy_(value)
        self.steps.append(t)
        self.count += 1

    def stacked(self, key: str) -> torch.Tensor:
        return self.buffers[key][: self.count]

    def trajectory(self, model: CrystalDiffusion, num_atoms: torch.Tensor, batch: torch.Tensor, sampler: str,
                   seed: int, coefficients: tuple[Coefficients, ...]) -> Trajectory:
        """All recorded frames with their diagnostics, on the CPU. num_atoms (B,), batch (N,)."""
        B = int(num_atoms.shape[0])
        steps = torch.tensor(self.steps, device=num_atoms.device)
        frac, score = self.stacked("frac"), self.stacked("score")
        lattice, volume, min_dist, pred_lattice = frame_geometry(model, self.stacked("x"), self.stacked("x0"), frac,
                                                                 num_atoms)
        # the final frame has sigma_0 = 0: its estimate is itself
        pred_frac = tweedie_coords(frac, score, model.sigma[steps].view(-1, 1, 1))
        score_norm = rms_per_crystal(score * model.score_norm[steps].rsqrt().view(-1, 1, 1), batch, B)
        score_norm[-1] = math.nan
        return Trajectory(
            timesteps=steps.cpu(), num_atoms=num_atoms.cpu(),
            lattice=lattice.cpu(), frac_coords=frac.cpu(), types=self.stacked("types").cpu(),
            type_probs=self.stacked("probs").cpu() if self.ab_initio else None,
            pred_lattice=pred_lattice.cpu(), pred_frac_coords=pred_frac.cpu(),
            lattice_noise_norm=self.stacked("eps").norm(dim=-1).cpu(), coord_score_norm=score_norm.cpu(),
            min_distance=min_dist.cpu(), volume=volume.cpu(),
            sampler=sampler, seed=int(seed), coefficients=coefficients,
        )


def frame_geometry(model: CrystalDiffusion, latents: torch.Tensor, predicted: torch.Tensor, frac: torch.Tensor,
                   num_atoms: torch.Tensor, max_edges: int = 1 << 16
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Lattices, volumes, minimum distances and predicted lattices of every recorded frame.

    latents, predicted: (F, B, 6) the frame's lattice latent x_t and its x0 estimate; frac: (F, N, 3)
    -> lattices (F, B, 3, 3), volumes (F, B), min distances (F, B), predicted lattices (F, B, 3, 3).
    Frames are treated as F * B crystals, as many frames at a time as fit ``max_edges`` atom
    pairs (each pair is expanded to 27 periodic images: ~1 kB per pair), to bound memory.
    """
    F, B = latents.shape[:2]
    chunk = max(1, max_edges // int((num_atoms ** 2).sum()))
    lattices, pred_lattices, distances = [], [], []
    for start in range(0, F, chunk):
        n = min(chunk, F - start)
        counts = num_atoms.repeat(n)
        lattice = model.lattice_from_latent(latents[start:start + n].reshape(n * B, 6), counts)
        pred_lattices.append(model.lattice_from_latent(predicted[start:start + n].reshape(n * B, 6), counts).view(n, B, 3, 3))
        batch = torch.repeat_interleave(torch.arange(n * B, device=counts.device), counts)
        distances.append(min_distances(frac[start:start + n].reshape(-1, 3), lattice, counts, batch).view(n, B))
        lattices.append(lattice.view(n, B, 3, 3))
    lattice = torch.cat(lattices)
    return lattice, volumes(lattice.reshape(-1, 3, 3)).view(F, B), torch.cat(distances), torch.cat(pred_lattices)


def rms_per_crystal(values: torch.Tensor, batch: torch.Tensor, B: int) -> torch.Tensor:
    """(F, N, 3) -> (F, B) root-mean-square over each crystal's atoms and axes, per frame."""
    sq = values.new_zeros(values.shape[0], B).index_add_(1, batch, values.pow(2).sum(-1))
    count = torch.bincount(batch, minlength=B).clamp(min=1) * 3
    return (sq / count).sqrt()
