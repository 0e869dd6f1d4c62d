"""Annealed Langevin dynamics: how a CDVAE decodes a latent z into a crystal.

From z the heads give the number of atoms, the lattice and a composition; the coordinates start
uniform on the torus and the types from the composition. Then, for the noise levels l = L..1 (largest
first) and ``steps_per_level`` times at each,

    F <- wrap(F + gamma_l s(F, A | z, sigma_l) + sqrt(2 gamma_l) xi),   gamma_l = eta sigma_l^2,   xi ~ N(0, I)
    A <- argmax p(A | F, z, sigma_l)

(Song & Ermon 2019, annealed Langevin; CDVAE, Xie et al. 2022, Algorithm 1, written for fractional
coordinates: with gamma proportional to sigma^2 every level moves the atoms by the same fraction of its
width). The lattice stays the one the heads predicted. Every crystal draws from its own random stream
(seed + i), so a crystal's run does not depend on the rest of the batch.

The result is a ``Trajectory`` (the same slider, 3D view and numbers as the diffusion samplers): frame
timesteps count the Langevin steps still to come (K-1 .. 0), and ``LangevinRun`` adds the level and
step size of every frame for the equation panel.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch

from ..corruption import wrap
from ..crystal import CrystalGraph
from ..geometry import min_distances, volumes
from ..samplers.base import CrystalNoise
from ..trajectory import Trajectory
from .model import CDVAE, Decoded, composition_types

MAX_LANGEVIN_STEPS = 20_000


@dataclass(frozen=True)
class LangevinConfig:
    """eta and steps per level: None = the model's defaults (``CDVAEProcess``); record_every: keep one
    frame in this many Langevin steps (the first and last are always kept)."""

    steps_per_level: int | None = None
    step_size: float | None = None
    record_every: int = 1
    seed: int = 0
    types: str = "composition"      # "composition": the heads' composition, sites assigned by the decoder;
                                    # "decoder": CDVAE's argmax of the decoder's type logits after every step

    def resolved(self, model: CDVAE) -> tuple[int, float]:
        n = model.process.steps_per_level if self.steps_per_level is None else int(self.steps_per_level)
        eta = model.process.langevin_step if self.step_size is None else float(self.step_size)
        if not 1 <= n * model.num_levels <= MAX_LANGEVIN_STEPS:
            raise ValueError(f"steps per level must be between 1 and {MAX_LANGEVIN_STEPS // model.num_levels}, got {n}")
        if not (math.isfinite(eta) and 0 < eta <= 1):
            raise ValueError(f"the Langevin step size eta must be in (0, 1], got {eta}")
        if self.record_every < 1:
            raise ValueError("record_every must be at least 1")
        if self.types not in ("composition", "decoder"):
            raise ValueError(f"types must be 'composition' or 'decoder', got '{self.types}'")
        return n, eta


@dataclass(frozen=True)
class LangevinStep:
    """The numbers of one Langevin update, kept per recorded frame in ``Trajectory.coefficients`` (the
    equation panel shows them): the noise level l (0 on the first frame: nothing done yet), its width
    sigma_l, the step size gamma = eta sigma_l^2 with its eta, and which step of the level it was (1..n of n)."""

    level: int
    sigma: float
    gamma: float
    eta: float
    step_in_level: int
    steps_per_level: int
    num_levels: int


@dataclass(frozen=True)
class LangevinRun:
    """A decoded batch: the trajectory, per frame its noise level (K,) (0 on the first frame, before
    any step) and step size gamma (K,), and what the heads predicted."""

    trajectory: Trajectory
    levels: torch.Tensor
    step_sizes: torch.Tensor
    decoded: Decoded


@torch.no_grad()
def langevin_decode(model: CDVAE, z: torch.Tensor, config: LangevinConfig = LangevinConfig(),
                    num_atoms: torch.Tensor | None = None, types: torch.Tensor | None = None,
                    sampler_name: str = "langevin",
                    progress: Callable[[int, int], None] | None = None) -> LangevinRun:
    """Decode latents z (B, D) by annealed Langevin dynamics.

    num_atoms (B,) and types (N,) override the heads' predictions (types are then kept fixed: the
    composition-given mode that compares with structure prediction). ``progress(done, total)`` is called
    after every Langevin step.
    """
    steps_per_level, eta = config.resolved(model)
    model.eval()
    device = model.device
    z = z.to(device).float()
    decoded = model.decode_heads(z, None if num_atoms is None else num_atoms.to(device))
    counts = decoded.num_atoms
    B = counts.shape[0]
    noise = CrystalNoise(tuple(config.seed + i for i in range(B)), counts.tolist(), device)
    batch = torch.repeat_interleave(torch.arange(B, device=device), counts)
    graph = CrystalGraph.build(counts, batch)
    fixed_types = types is not None
    atom_types = types.to(device).long() if fixed_types else composition_types(decoded.composition, counts)
    if atom_types.shape[0] != batch.shape[0]:
        raise ValueError(f"{atom_types.shape[0]} types for {batch.shape[0]} atoms")
    lattice = decoded.lattice
    frac = noise.uniform_coords()

    frames: dict[str, list] = {k: [] for k in ("frac", "types", "probs", "pred", "score", "dist", "level", "gamma",
                                                  "remaining", "step")}

    def record(remaining: int, level: int, gamma: float, probs: torch.Tensor, pred: torch.Tensor, score_rms: torch.Tensor,
               step_in_level: int = 0) -> None:
        frames["frac"].append(frac.float().cpu()); frames["types"].append(atom_types.cpu())
        frames["probs"].append(probs.float().cpu()); frames["pred"].append(pred.float().cpu())
        frames["score"].append(score_rms.float().cpu())
        frames["dist"].append(min_distances(frac.float(), lattice, counts, batch).float().cpu())
        frames["level"].append(level); frames["gamma"].append(gamma); frames["remaining"].append(remaining)
        frames["step"].append(LangevinStep(level, float(model.sigma[level]) if level else 0.0, gamma, eta, step_in_level,
                                           steps_per_level, model.num_levels))

    probs0 = torch.zeros(batch.shape[0], model.allowed_types.shape[0], device=device)
    probs0[torch.arange(batch.shape[0]), atom_types] = 1.0
    total, done = steps_per_level * model.num_levels, 0
    record(total, 0, 0.0, probs0, frac, torch.zeros(B, device=device))
    for level in range(model.num_levels, 0, -1):
        sigma = float(model.sigma[level])
        gamma = eta * sigma ** 2
        level_tensor = torch.full((B,), level, dtype=torch.long, device=device)
        for within in range(1, steps_per_level + 1):
            normalized, logits = model.score(z, atom_types, frac, lattice, counts, batch, level_tensor, graph)
            score = normalized * model.score_norm[level].sqrt()
            probs = torch.softmax(logits, -1)
            if not fixed_types:
                atom_types = (probs.argmax(-1) if config.types == "decoder"
                              else assign_sites(atom_types, probs, counts))
            frac = wrap(frac + gamma * score + math.sqrt(2 * gamma) * noise.coords())
            done += 1
            if progress is not None:
                progress(done, total)
            if done % config.record_every == 0 or done == total:
                rms = torch.sqrt(graph.mean_over_atoms((normalized ** 2).mean(-1, keepdim=True))).squeeze(-1)
                record(total - done, level, gamma, probs, wrap(frac + sigma ** 2 * score), rms, within)
    K = len(frames["frac"])
    steps = torch.tensor(frames["remaining"], dtype=torch.int64)
    lattices = lattice.float().cpu().unsqueeze(0).expand(K, -1, -1, -1).contiguous()
    trajectory = Trajectory(
        timesteps=steps, num_atoms=counts.cpu(), lattice=lattices, frac_coords=torch.stack(frames["frac"]),
        types=torch.stack(frames["types"]), type_probs=None if fixed_types else torch.stack(frames["probs"]),
        pred_lattice=lattices.clone(), pred_frac_coords=torch.stack(frames["pred"]),
        lattice_noise_norm=torch.zeros(K, B), coord_score_norm=torch.stack(frames["score"]),
        min_distance=torch.stack(frames["dist"]), volume=volumes(lattice.float()).cpu().unsqueeze(0).expand(K, -1).clone(),
        sampler=sampler_name, seed=config.seed, coefficients=tuple(frames["step"]))
    return LangevinRun(trajectory, torch.tensor(frames["level"]), torch.tensor(frames["gamma"], dtype=torch.float64),
                       decoded)


def assign_sites(types: torch.Tensor, probs: torch.Tensor, num_atoms: torch.Tensor) -> torch.Tensor:
    """Keep each crystal's multiset of types and give them to its atoms so that the sum of log p(type)
    the decoder assigns is largest (an optimal assignment per crystal; at most a few dozen atoms each).

    types (N,) the current types; probs (N, C); num_atoms (B,) -> (N,) the same counts, reassigned.
    """
    from scipy.optimize import linear_sum_assignment

    log_p = torch.log(probs.double().clamp(min=1e-12)).cpu()
    current = types.cpu()
    out, start = [], 0
    for n in num_atoms.tolist():
        pool = current[start:start + n]
        cost = -log_p[start:start + n][:, pool].numpy()      # (atom, slot)
        rows, cols = linear_sum_assignment(cost)
        assigned = torch.empty(n, dtype=torch.long)
        assigned[torch.as_tensor(rows)] = pool[torch.as_tensor(cols)]
        out.append(assigned)
        start += n
    return torch.cat(out).to(types.device)


@torch.no_grad()
def reconstruct(model: CDVAE, batch, config: LangevinConfig = LangevinConfig(), use_mean: bool = True) -> LangevinRun:
    """Encode a clean ``CrystalBatch`` and decode it again (CDVAE's reconstruction): z = mu (or a draw
    from q(z | M) with ``use_mean=False``, from the config's seed); atom count, lattice, composition
    and positions all come from z."""
    batch = batch.to(model.device)
    mu, log_var = model.encode(batch)
    z = mu
    if not use_mean:
        generator = torch.Generator(device=model.device).manual_seed(config.seed)
        z = mu + torch.exp(0.5 * log_var) * torch.randn(mu.shape, generator=generator, device=model.device)
    return langevin_decode(model, z, config)


@torch.no_grad()
def generate_from_prior(model: CDVAE, num: int, config: LangevinConfig = LangevinConfig(),
                        num_atoms: torch.Tensor | None = None, types: torch.Tensor | None = None,
                        progress: Callable[[int, int], None] | None = None) -> LangevinRun:
    """``num`` crystals from z ~ N(0, I), z drawn from the config's seed: the same seed gives the same
    crystals in ``sample``, ``render``, ``evaluate`` and the app. ``num_atoms`` (num,) and ``types`` (N,)
    as in ``langevin_decode``."""
    generator = torch.Generator(device=model.device).manual_seed(config.seed)
    return langevin_decode(model, model.prior(num, generator), config, num_atoms=num_atoms, types=types,
                           progress=progress)
