"""The diffusion model: a denoiser plus the schedules and statistics that define its process.

``CrystalDiffusion`` owns every per-step constant as a buffer (so ``.to(device)`` and
``state_dict`` just work), maps network outputs to the quantities of each field's
process (``predict``), and defines the training objective (``loss``).
"""
from __future__ import annotations

import functools
import math
from dataclasses import asdict, dataclass
from typing import Literal

import torch
from torch import nn
import torch.nn.functional as F

from .corruption import (MASK, LatticeStats, lattice_scale, lattice_to_latent, latent_to_lattice, q_sample,
                         q_sample_coords, q_sample_types, score_norm, sym_to_vec6, wrapped_normal_score)
from .crystal import CrystalBatch, CrystalGraph
from .model import SIZE_LIMITS, CrystalDenoiser, DenoiserConfig, check_sizes
from .schedules import geometric_sigmas, make_schedule

Task = Literal["csp", "gen"]
TRACE_CACHE_ATTRIBUTE = "_traced_steps"  # where samplers/evaluator.py keeps a model's traced sampling steps


@dataclass(frozen=True)
class ProcessConfig:
    """The forward process and conditioning (stored in every checkpoint).

    corrector_step_lr: the predictor-corrector sampler's default Langevin step size for this
    model (``sampling.py``, pc), chosen on the validation split; DiffCSP recommends it per dataset
    (5e-7 for Perov-5, 1e-5 for MP-20 structure prediction). Older checkpoints load with 5e-7.
    """

    task: Task = "csp"
    num_steps: int = 1000
    schedule: str = "cosine"
    sigma_min: float = 0.005
    sigma_max: float = 0.5
    property_name: str | None = None
    use_space_group: bool = False
    type_loss_weight: float = 1.0
    corrector_step_lr: float = 5e-7

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ProcessConfig":
        unknown = set(d) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown process config keys: {sorted(unknown)}")
        check_sizes(d, SIZE_LIMITS)
        return cls(**d)


@dataclass(frozen=True)
class Normalization:
    """Data statistics the model needs at sampling time (stored in every checkpoint)."""

    lattice: LatticeStats
    property_mean: float = 0.0
    property_std: float = 1.0
    elements: tuple[int, ...] = ()
    max_atoms: int = 20
    num_atoms_counts: tuple[int, ...] = ()   # histogram of atoms per cell, index = N

    def to_dict(self) -> dict:
        d = asdict(self)
        d["lattice"] = self.lattice.to_dict()
        d["elements"], d["num_atoms_counts"] = list(self.elements), list(self.num_atoms_counts)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Normalization":
        check_sizes({"max_atoms": int(d["max_atoms"])}, {"max_atoms": 1000})
        return cls(LatticeStats.from_dict(d["lattice"]), float(d["property_mean"]), float(d["property_std"]),
                   tuple(int(z) for z in d["elements"]), int(d["max_atoms"]), tuple(int(c) for c in d["num_atoms_counts"]))


@dataclass(frozen=True)
class Prediction:
    """Model outputs at step t, translated into each process's variables.

    lattice_eps: (B, 6) predicted noise of the lattice latent;
    coord_score: (N, 3) predicted score d/dF log p(F_t) (unnormalized);
    type_logits: (N, 101) or None.
    """

    lattice_eps: torch.Tensor
    coord_score: torch.Tensor
    type_logits: torch.Tensor | None


@dataclass(frozen=True)
class LossTerms:
    total: torch.Tensor
    lattice: torch.Tensor
    coords: torch.Tensor
    types: torch.Tensor


def draw(kind: str, shape: tuple[int, ...], device: torch.device, generator: torch.Generator | None = None,
         low: int = 0, high: int = 0) -> torch.Tensor:
    """Random numbers for the loss ("randn", "rand" or "randint" in [low, high)), drawn on the generator's
    device and moved to ``device``: a CPU generator gives the same draws whether the model runs on the CPU
    or a GPU (validation losses compare across machines); a generator on the data's device costs no copy."""
    where = generator.device if generator is not None else device
    if kind == "randint":
        values = torch.randint(low, high, shape, device=where, generator=generator)
    else:
        values = getattr(torch, kind)(shape, device=where, generator=generator)
    return values.to(device)


def remove_translation(score: torch.Tensor, graph: CrystalGraph) -> torch.Tensor:
    """Subtract each crystal's mean over atoms from a (N, 3) coordinate score.

    The data distribution is invariant to a common shift of all fractional coordinates,
    so the true score of p_t(F_t) has zero mean over each crystal's atoms. The common
    part of a conditional target s(F_t | F_0) is unpredictable noise (variance ~1/N):
    projecting it out gives the same optimum with less gradient noise.
    """
    return score - graph.mean_over_atoms(score)[graph.batch]


@functools.lru_cache(maxsize=8)
def _score_norms(num_steps: int, sigma_min: float, sigma_max: float) -> torch.Tensor:
    """(T+1,) E[score^2] per step (index 0 unused = 1); cached: every model load needs it."""
    sigmas = geometric_sigmas(num_steps, sigma_min, sigma_max)
    return torch.cat([torch.ones(1, dtype=torch.float64), score_norm(sigmas[1:])])


@dataclass(frozen=True)
class Corrupted:
    """A batch noised to steps t: x_t (B, 6) lattice latent and its noise eps (B, 6); frac_t (N, 3);
    target_score (N, 3) normalized and translation-free; t_atom (N,) the step of each atom."""

    x_t: torch.Tensor
    eps: torch.Tensor
    frac_t: torch.Tensor
    target_score: torch.Tensor
    t_atom: torch.Tensor


class CrystalDiffusion(nn.Module):
    def __init__(self, model_config: DenoiserConfig, process: ProcessConfig, normalization: Normalization):
        super().__init__()
        if process.task == "gen" and not model_config.predict_types:
            raise ValueError("the 'gen' task needs a denoiser with predict_types=True")
        self.model_config, self.process, self.normalization = model_config, process, normalization
        self.denoiser = CrystalDenoiser(model_config)
        schedule = make_schedule(process.schedule, process.num_steps, process.sigma_min, process.sigma_max)
        self.schedule = schedule
        for name in ("beta", "alpha", "abar", "sigma"):
            self.register_buffer(name, getattr(schedule, name).float(), persistent=False)
        self.register_buffer("score_norm", _score_norms(process.num_steps, process.sigma_min, process.sigma_max).float(),
                             persistent=False)

    def __getstate__(self) -> dict:
        """Copies and pickles leave out the sampler's cached traces (``samplers/evaluator.py``): a trace
        is bound to the parameters of the model that recorded it, not to those of a copy."""
        state = dict(super().__getstate__())
        state.pop(TRACE_CACHE_ATTRIBUTE, None)
        return state

    @property
    def num_steps(self) -> int:
        return self.process.num_steps

    @property
    def device(self) -> torch.device:
        return self.abar.device

    # -- conversions ---------------------------------------------------------------------
    def lattice_latent(self, lattice: torch.Tensor, num_atoms: torch.Tensor) -> torch.Tensor:
        return lattice_to_latent(lattice, num_atoms, self.normalization.lattice)

    def lattice_from_latent(self, x: torch.Tensor, num_atoms: torch.Tensor) -> torch.Tensor:
        return latent_to_lattice(x, num_atoms, self.normalization.lattice)

    def normalize_property(self, value: torch.Tensor) -> torch.Tensor:
        return (value - self.normalization.property_mean) / self.normalization.property_std

    # -- the network -----------------------------------------------------------------------
    def predict(self, types: torch.Tensor, frac: torch.Tensor, x: torch.Tensor, num_atoms: torch.Tensor,
                batch: torch.Tensor, t: torch.Tensor, prop: torch.Tensor | None = None,
                space_group: torch.Tensor | None = None, fixed_context: torch.Tensor | None = None,
                graph: CrystalGraph | None = None) -> Prediction:
        """Evaluate the denoiser at state (types (N,), frac (N, 3), lattice latent x (B, 6)) and steps t (B,).

        prop is the *normalized* property (B,) with NaN meaning "no condition"; fixed_context
        (B, H) is ``denoiser.time_context(t) + condition_context(...)`` when the caller has it
        precomputed (samplers do: it is the same at every step but for the time row); graph is
        the batch's ``CrystalGraph`` when the caller reuses one.
        """
        eps, normalized_score, logits = self._network(types, frac, x, num_atoms, batch, t, prop, space_group,
                                                      fixed_context, graph)
        return Prediction(eps, normalized_score * self.score_norm[t][batch].sqrt().unsqueeze(-1), logits)

    def condition_context(self, num_atoms: torch.Tensor, prop: torch.Tensor | None,
                          space_group: torch.Tensor | None) -> torch.Tensor:
        """(B, H) the denoiser's size + condition context, with the conditions this model uses."""
        return self.denoiser.condition_context(num_atoms, prop if self.model_config.use_property else None,
                                               space_group if self.model_config.use_space_group else None)

    def _network(self, types, frac, x, num_atoms, batch, t, prop, space_group, fixed_context=None, graph=None):
        """Raw network outputs: (B, 6) lattice eps, (N, 3) normalized score, logits or None."""
        if graph is None:
            graph = CrystalGraph.build(num_atoms, batch)
        # the latent x is itself rotation invariant (built from L L^T) and O(1): the network's best view of the cell
        out = self.denoiser(types, frac, self._normalized(x, num_atoms), num_atoms, batch, t, x,
                            prop if self.model_config.use_property else None,
                            space_group if self.model_config.use_space_group else None, fixed_context, graph)
        eps = sym_to_vec6(0.5 * (out.lattice + out.lattice.transpose(-1, -2)))
        return eps, remove_translation(out.coord_score, graph), out.type_logits

    # -- training objective -----------------------------------------------------------------
    def corrupt(self, batch: CrystalBatch, t: torch.Tensor, generator: torch.Generator | None = None,
                graph: CrystalGraph | None = None, eps: torch.Tensor | None = None,
                noise: torch.Tensor | None = None) -> "Corrupted":
        """Noise a clean batch to steps t (B,): lattice latent by q_sample, coordinates by the wrapped
        normal; also the training targets (eps and the normalized, translation-free score).
        eps (B, 6) and noise (N, 3), the standard normal draws, are drawn from ``generator`` unless given."""
        device = batch.device
        x0 = self.lattice_latent(batch.lattice, batch.num_atoms)
        if eps is None:
            eps = draw("randn", tuple(x0.shape), device, generator)
        x_t = q_sample(x0, t, eps, self.abar)
        t_atom = t[batch.batch]
        sigma = self.sigma[t_atom].unsqueeze(-1)
        if noise is None:
            noise = draw("randn", tuple(batch.frac_coords.shape), device, generator)
        frac_t = q_sample_coords(batch.frac_coords, sigma, noise)
        target_score = wrapped_normal_score(sigma * noise, sigma) / self.score_norm[t_atom].sqrt().unsqueeze(-1)
        if graph is None:
            graph = CrystalGraph.build(batch.num_atoms, batch.batch)
        return Corrupted(x_t, eps, frac_t, remove_translation(target_score, graph), t_atom)

    def loss(self, batch: CrystalBatch, generator: torch.Generator | None = None, drop_probability: float = 0.1,
             space_group_drop: float | None = None) -> LossTerms:
        """Denoising loss on a clean batch: lattice eps-MSE + normalized-score MSE (+ masked-type CE).

        Each condition is dropped independently (classifier-free guidance): the property with
        ``drop_probability``, the space group with ``space_group_drop`` (default: the same). A model
        meant to work well from the composition alone wants a larger space-group drop than the
        usual 0.1, since only the dropped crystals train its "no space group" mode.
        """
        device, B, N = batch.device, batch.num_crystals, batch.frac_coords.shape[0]
        t = draw("randint", (B,), device, generator, low=1, high=self.num_steps + 1)
        graph = CrystalGraph.build(batch.num_atoms, batch.batch)
        noised = self.corrupt(batch, t, generator, graph)
        x_t, eps, frac_t, target_score, t_atom = noised.x_t, noised.eps, noised.frac_t, noised.target_score, noised.t_atom
        types = batch.atomic_numbers
        if self.process.task == "gen":
            types = q_sample_types(types, t_atom, self.num_steps, draw("rand", (N,), device, generator))
        prop = self.normalize_property(batch.prop) if self.model_config.use_property else None
        space_group = batch.space_group if self.model_config.use_space_group else None
        if prop is not None:  # classifier-free guidance: learn the unconditional model too
            drop = draw("rand", (B,), device, generator) < drop_probability
            prop = torch.where(drop, torch.full_like(prop, math.nan), prop)
        if space_group is not None:
            sg_drop = drop_probability if space_group_drop is None else space_group_drop
            drop = draw("rand", (B,), device, generator) < sg_drop
            space_group = torch.where(drop, torch.zeros_like(space_group), space_group)
        eps_hat, score_hat, logits = self._network(types, frac_t, x_t, batch.num_atoms, batch.batch, t, prop, space_group,
                                                   graph=graph)
        lattice_loss = F.mse_loss(eps_hat, eps)
        coord_loss = F.mse_loss(score_hat, target_score)
        type_loss = torch.zeros((), device=device)
        if logits is not None:
            masked = types == MASK
            if masked.any():
                type_loss = F.cross_entropy(logits[masked], batch.atomic_numbers[masked])
        total = lattice_loss + coord_loss + self.process.type_loss_weight * type_loss
        return LossTerms(total, lattice_loss.detach(), coord_loss.detach(), type_loss.detach())

    def forward(self, batch: CrystalBatch, generator: torch.Generator | None = None,
                drop_probability: float = 0.1, space_group_drop: float | None = None) -> LossTerms:
        """The training loss (``forward`` so that DistributedDataParallel can wrap the model)."""
        return self.loss(batch, generator, drop_probability, space_group_drop)

    def _normalized(self, x: torch.Tensor, num_atoms: torch.Tensor) -> torch.Tensor:
        """(B, 6) latent -> (B, 3, 3) dimensionless lattice L~ = L / (c N^(1/3)) fed to the network."""
        lattice = self.lattice_from_latent(x, num_atoms)
        return lattice / lattice_scale(num_atoms, self.normalization.lattice.length_per_atom).view(-1, 1, 1).float()
