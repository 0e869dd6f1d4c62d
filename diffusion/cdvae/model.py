"""CDVAE: a crystal variational autoencoder whose decoder is a noise-conditional score network.

Xie, Fu, Ganea, Barzilay, Jaakkola, "Crystal Diffusion Variational Autoencoder for Periodic Material
Generation", ICLR 2022. Written here in the core's style, on its periodic graph, not copied:

- **encoder** q(z | M): the periodic message-passing layers of ``diffusion/model.py`` over the clean
  crystal, mean-pooled into the mean and log-variance of a latent z (D numbers);
- **heads** p(. | z): the number of atoms (a class 1..max_atoms), the composition (a distribution over
  elements shared by the crystal's atoms), the lattice (the 6-number normalized log-metric latent of
  ``corruption.lattice_to_latent``: lengths and angles relative to the data, always a valid cell) and,
  optionally, a scalar property;
- **decoder** s(F, A | z, sigma_l): the diffusion model's denoiser (``CrystalDenoiser`` with a type
  head) conditioned on z through its crystal context and on the noise level l instead of a time step.
  It is trained by denoising score matching on a geometric ladder sigma_1 < ... < sigma_L of wrapped
  normal widths for the fractional coordinates, with atom types corrupted towards the predicted
  composition with probability weight tau_l (CDVAE's type noise), and it predicts the clean types.

Generation (``langevin.py``): z from the prior (or encoded from a crystal), heads -> N, lattice and a
first composition, then annealed Langevin dynamics on the coordinates from sigma_L down to sigma_1,
the types set to the decoder's most likely ones after every step.

Shapes: B crystals, N atoms in total, D latent numbers, H hidden units, L noise levels.
No Streamlit here.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn
import torch.nn.functional as F

from ..corruption import NUM_TYPE_CLASSES, latent_to_lattice, lattice_scale, lattice_to_latent, score_norm, wrap, \
    wrapped_normal_score
from ..crystal import CrystalBatch, CrystalGraph
from ..crystal_diffusion import Normalization, draw, remove_translation
from ..model import SIZE_LIMITS, CrystalDenoiser, DenoiserConfig, MessageLayer, check_sizes, fourier_features, \
    gram_invariants

FAMILY = "cdvae"


@dataclass(frozen=True)
class CDVAEConfig:
    """Architecture (stored in every checkpoint as ``model_config``)."""

    hidden: int = 256
    layers: int = 4                 # decoder message-passing layers
    encoder_layers: int = 3
    frequencies: int = 32
    time_dim: int = 128             # embedding of the noise level
    latent_dim: int = 128
    use_property: bool = False      # a property head on z (for property optimization in latent space)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "CDVAEConfig":
        unknown = set(d) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown CDVAE config keys: {sorted(unknown)}")
        check_sizes(d, SIZE_LIMITS)
        return cls(**d)


@dataclass(frozen=True)
class CDVAEProcess:
    """The noise ladder, the loss weights and the default sampler (stored as ``process``).

    sigma_*: wrapped-normal widths of the fractional coordinates, geometric over ``num_levels`` levels
    (sigma_max = 0.5 is already close to uniform on the torus). type_sigma_*: CDVAE's type-noise weights
    (the corrupted type is drawn from onehot(A) + tau_l p_composition, normalized).
    langevin_step: eta of the step size gamma_l = eta * sigma_l^2 (see langevin.py);
    steps_per_level: Langevin steps at each level. Both are the sampler's defaults for this model.
    """

    task: str = "gen"
    num_levels: int = 50
    sigma_min: float = 0.005
    sigma_max: float = 0.5
    type_sigma_min: float = 0.01
    type_sigma_max: float = 5.0
    kl_weight: float = 0.01
    num_atoms_weight: float = 1.0
    composition_weight: float = 1.0
    lattice_weight: float = 1.0
    coords_weight: float = 1.0
    type_weight: float = 1.0
    property_weight: float = 1.0
    property_name: str | None = None
    langevin_step: float = 0.3          # chosen on the perov_5 and carbon_24 validation splits (docs/cdvae.md)
    steps_per_level: int = 10

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "CDVAEProcess":
        unknown = set(d) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown CDVAE process keys: {sorted(unknown)}")
        check_sizes(d, SIZE_LIMITS)
        return cls(**d)


@dataclass(frozen=True)
class CDVAELossTerms:
    """Every term of the loss (0-d tensors); ``lattice``, ``coords`` and ``types`` as in ``LossTerms``."""

    total: torch.Tensor
    lattice: torch.Tensor
    coords: torch.Tensor
    types: torch.Tensor
    num_atoms: torch.Tensor
    composition: torch.Tensor
    kl: torch.Tensor
    property: torch.Tensor


@dataclass(frozen=True)
class Decoded:
    """What the heads read from z: num_atoms (B,) int64; lattice_latent (B, 6); lattice (B, 3, 3) in
    angstrom; composition (B, 101) probabilities over MASK + Z (MASK and unseen elements get 0);
    property (B,) in the data's units or None."""

    num_atoms: torch.Tensor
    lattice_latent: torch.Tensor
    lattice: torch.Tensor
    composition: torch.Tensor
    property: torch.Tensor | None


def mlp(inputs: int, hidden: int, outputs: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(inputs, hidden), nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU(),
                         nn.Linear(hidden, outputs))


class CrystalEncoder(nn.Module):
    """Clean crystal -> (mu, log_var) of q(z | M), invariant to rotation, translation and atom order.

    The message layers and edge features are the denoiser's (``diffusion/model.py``): Fourier features
    of fractional differences (periodic, translation-free), the cell only through L L^T, mean pooling.
    """

    def __init__(self, config: CDVAEConfig):
        super().__init__()
        h, self.layers_count, self.frequencies = config.hidden, config.encoder_layers, config.frequencies
        self.type_embedding = nn.Embedding(NUM_TYPE_CLASSES, h)
        self.size_proj = nn.Linear(1, h)
        self.lattice_mlp = nn.Sequential(nn.Linear(6, h), nn.SiLU(), nn.Linear(h, h))
        self.edge_proj = nn.Linear(6 * config.frequencies, config.encoder_layers * h, bias=False)
        self.gram_proj = nn.Linear(9, config.encoder_layers * h)
        self.layers = nn.ModuleList([MessageLayer(h) for _ in range(config.encoder_layers)])
        self.out_norm = nn.LayerNorm(h)
        self.to_mu = nn.Linear(h, config.latent_dim)
        self.to_log_var = nn.Linear(h, config.latent_dim)

    def forward(self, types: torch.Tensor, frac: torch.Tensor, lattice: torch.Tensor, num_atoms: torch.Tensor,
                graph: CrystalGraph) -> tuple[torch.Tensor, torch.Tensor]:
        """types (N,); frac (N, 3); lattice (B, 3, 3) normalized cell L~ (dimensionless); num_atoms (B,)
        -> mu (B, D), log_var (B, D)."""
        B, H = num_atoms.shape[0], self.out_norm.normalized_shape[0]
        edges = self.edge_proj(fourier_features(frac[graph.dst] - frac[graph.src], self.frequencies))
        edges = edges.view(-1, self.layers_count, H)
        gram = self.gram_proj((lattice @ lattice.transpose(-1, -2)).reshape(B, 9)).view(B, self.layers_count, H)
        context = self.size_proj(torch.log(num_atoms.float()).unsqueeze(-1)) + self.lattice_mlp(gram_invariants(lattice))
        h = self.type_embedding(types) + context[graph.batch]
        for k, layer in enumerate(self.layers):
            h = layer(h, graph, edges[:, k], gram[graph.batch, k])
        pooled = graph.mean_over_atoms(self.out_norm(h))
        return self.to_mu(pooled), self.to_log_var(pooled).clamp(-12.0, 8.0)


def composition_types(probabilities: torch.Tensor, num_atoms: torch.Tensor) -> torch.Tensor:
    """(B, C) composition probabilities and (B,) atom counts -> (N,) atom types, the counts of each
    element rounded from N p by largest remainders (CDVAE's ``sample_composition`` idea), at least one
    atom of the most likely element, atoms ordered by element."""
    types = []
    for p, n in zip(probabilities.double().cpu(), num_atoms.tolist()):
        share = p * n
        counts = torch.floor(share).long()
        left = n - int(counts.sum())
        if left > 0:
            counts[torch.argsort(share - counts, descending=True)[:left]] += 1
        if int(counts.sum()) == 0:
            counts[int(torch.argmax(p))] = n
        types.append(torch.repeat_interleave(torch.arange(p.shape[0]), counts))
    return torch.cat(types).to(probabilities.device)


class CDVAE(nn.Module):
    """Encoder, heads and score decoder; ``loss`` is the training objective, ``langevin.py`` samples."""

    family = FAMILY

    def __init__(self, model_config: CDVAEConfig, process: CDVAEProcess, normalization: Normalization):
        super().__init__()
        if process.property_name and not model_config.use_property:
            raise ValueError("a property name needs a model with use_property=True")
        self.model_config, self.process, self.normalization = model_config, process, normalization
        c, h = model_config, model_config.hidden
        self.encoder = CrystalEncoder(c)
        self.num_atoms_head = mlp(c.latent_dim, h, normalization.max_atoms + 1)
        self.composition_head = mlp(c.latent_dim, h, NUM_TYPE_CLASSES)
        self.lattice_head = mlp(c.latent_dim, h, 6)
        self.property_head = mlp(c.latent_dim, h, 1) if c.use_property else None
        self.decoder = CrystalDenoiser(DenoiserConfig(hidden=h, layers=c.layers, frequencies=c.frequencies,
                                                      time_dim=c.time_dim, predict_types=True))
        self.latent_proj = nn.Linear(c.latent_dim, h)
        L = process.num_levels
        ratio = torch.arange(L, dtype=torch.float64) / max(L - 1, 1)
        sigma = process.sigma_min * (process.sigma_max / process.sigma_min) ** ratio
        tau = process.type_sigma_min * (process.type_sigma_max / process.type_sigma_min) ** ratio
        # index 0 is "clean" (unused by the loss), levels 1..L as the diffusion model's steps
        self.register_buffer("sigma", torch.cat([torch.zeros(1, dtype=torch.float64), sigma]).float(), persistent=False)
        self.register_buffer("type_sigma", torch.cat([torch.zeros(1, dtype=torch.float64), tau]).float(),
                             persistent=False)
        self.register_buffer("score_norm", torch.cat([torch.ones(1, dtype=torch.float64), score_norm(sigma)]).float(),
                             persistent=False)
        allowed = torch.zeros(NUM_TYPE_CLASSES, dtype=torch.bool)
        allowed[list(normalization.elements) or list(range(1, NUM_TYPE_CLASSES))] = True
        self.register_buffer("allowed_types", allowed, persistent=False)

    @property
    def num_levels(self) -> int:
        return self.process.num_levels

    @property
    def device(self) -> torch.device:
        return self.sigma.device

    # -- encoder and heads -------------------------------------------------------------------
    def normalized_cell(self, lattice: torch.Tensor, num_atoms: torch.Tensor) -> torch.Tensor:
        """(B, 3, 3) angstrom -> (B, 3, 3) L / (c N^(1/3)), the dimensionless cell the networks see."""
        return lattice / lattice_scale(num_atoms, self.normalization.lattice.length_per_atom).view(-1, 1, 1).to(lattice)

    def encode(self, batch: CrystalBatch, graph: CrystalGraph | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """A clean batch -> mu (B, D), log_var (B, D)."""
        graph = graph or CrystalGraph.build(batch.num_atoms, batch.batch)
        return self.encoder(batch.atomic_numbers, batch.frac_coords.float(),
                            self.normalized_cell(batch.lattice.float(), batch.num_atoms), batch.num_atoms, graph)

    def _masked_logits(self, logits: torch.Tensor) -> torch.Tensor:
        """Types the model never saw (and MASK) get probability 0."""
        return logits.masked_fill(~self.allowed_types, -1e9)

    @torch.no_grad()
    def decode_heads(self, z: torch.Tensor, num_atoms: torch.Tensor | None = None) -> Decoded:
        """(B, D) latents -> the crystal-level predictions; ``num_atoms`` (B,) overrides the predicted counts."""
        if num_atoms is None:
            logits = self.num_atoms_head(z)
            logits[:, 0] = -1e9
            num_atoms = logits.argmax(-1)
        latent = self.lattice_head(z)
        lattice = latent_to_lattice(latent, num_atoms, self.normalization.lattice)
        composition = torch.softmax(self._masked_logits(self.composition_head(z)), -1)
        prop = None
        if self.property_head is not None:
            prop = self.property_head(z).squeeze(-1) * self.normalization.property_std + self.normalization.property_mean
        return Decoded(num_atoms.long(), latent, lattice, composition, prop)

    # -- the score decoder --------------------------------------------------------------------
    def score(self, z: torch.Tensor, types: torch.Tensor, frac: torch.Tensor, lattice: torch.Tensor,
              num_atoms: torch.Tensor, batch: torch.Tensor, level: torch.Tensor,
              graph: CrystalGraph | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Decoder at noise level ``level`` (B,) in 1..L: -> normalized coordinate score (N, 3),
        translation-free (multiply by sqrt(score_norm[level]) for the score itself), type logits (N, 101)."""
        graph = graph or CrystalGraph.build(num_atoms, batch)
        latent = lattice_to_latent(lattice, num_atoms, self.normalization.lattice)
        context = (self.decoder.time_context(level) + self.decoder.condition_context(num_atoms, None, None)
                   + self.latent_proj(z))
        out = self.decoder(types, frac, self.normalized_cell(lattice, num_atoms), num_atoms, batch, level,
                           lattice_invariants=latent, fixed_context=context, graph=graph)
        return remove_translation(out.coord_score, graph), self._masked_logits(out.type_logits)

    # -- training objective -------------------------------------------------------------------
    def loss(self, batch: CrystalBatch, generator: torch.Generator | None = None, drop_probability: float = 0.0,
             space_group_drop: float | None = None) -> CDVAELossTerms:
        """The CDVAE objective on a clean batch (the drop arguments exist for the training loop's
        signature; CDVAE has no classifier-free guidance).

        KL(q(z|M) || N(0, I)) weighted by ``kl_weight``, cross-entropies for the atom count, the
        composition (every atom's type against the crystal's predicted distribution) and the decoded
        types, MSE for the lattice latent and the normalized coordinate score at a random level per crystal.
        """
        p, device = self.process, batch.device
        B, N = batch.num_crystals, batch.frac_coords.shape[0]
        graph = CrystalGraph.build(batch.num_atoms, batch.batch)
        mu, log_var = self.encode(batch, graph)
        z = mu + torch.exp(0.5 * log_var) * draw("randn", tuple(mu.shape), device, generator)
        kl = (-0.5 * (1 + log_var - mu ** 2 - log_var.exp()).sum(-1)).mean()
        num_atoms_loss = F.cross_entropy(self.num_atoms_head(z), batch.num_atoms.clamp(max=self.normalization.max_atoms))
        composition_logits = self._masked_logits(self.composition_head(z))
        composition_loss = F.cross_entropy(composition_logits[batch.batch], batch.atomic_numbers)
        lattice_target = lattice_to_latent(batch.lattice, batch.num_atoms, self.normalization.lattice)
        lattice_loss = F.mse_loss(self.lattice_head(z), lattice_target)
        property_loss = torch.zeros((), device=device)
        if self.property_head is not None and p.property_name:
            target = (batch.prop - self.normalization.property_mean) / self.normalization.property_std
            known = torch.isfinite(target)
            if known.any():
                property_loss = F.mse_loss(self.property_head(z).squeeze(-1)[known], target[known])
        # corrupt coordinates and types at one level per crystal
        level = draw("randint", (B,), device, generator, low=1, high=self.num_levels + 1)
        level_atom = level[batch.batch]
        sigma = self.sigma[level_atom].unsqueeze(-1)
        noise = draw("randn", (N, 3), device, generator)
        frac_t = wrap(batch.frac_coords.float() + sigma * noise)
        target = wrapped_normal_score(sigma * noise, sigma) / self.score_norm[level_atom].sqrt().unsqueeze(-1)
        target = remove_translation(target, graph)
        mix = F.one_hot(batch.atomic_numbers, NUM_TYPE_CLASSES).float()
        mix = mix + self.type_sigma[level_atom].unsqueeze(-1) * torch.softmax(composition_logits.detach(), -1)[batch.batch]
        uniform = draw("rand", (N, 1), device, generator)
        cumulative = torch.cumsum(mix / mix.sum(-1, keepdim=True), -1)
        noisy_types = (cumulative < uniform).sum(-1).clamp(max=NUM_TYPE_CLASSES - 1)
        score_hat, type_logits = self.score(z, noisy_types, frac_t, batch.lattice.float(), batch.num_atoms,
                                            batch.batch, level, graph)
        coords_loss = F.mse_loss(score_hat, target)
        type_loss = F.cross_entropy(type_logits, batch.atomic_numbers)
        total = (p.kl_weight * kl + p.num_atoms_weight * num_atoms_loss + p.composition_weight * composition_loss
                 + p.lattice_weight * lattice_loss + p.coords_weight * coords_loss + p.type_weight * type_loss
                 + p.property_weight * property_loss)
        return CDVAELossTerms(total, lattice_loss.detach(), coords_loss.detach(), type_loss.detach(),
                              num_atoms_loss.detach(), composition_loss.detach(), kl.detach(), property_loss.detach())

    def forward(self, batch: CrystalBatch, generator: torch.Generator | None = None, drop_probability: float = 0.0,
                space_group_drop: float | None = None) -> CDVAELossTerms:
        """The training loss (``forward`` so that DistributedDataParallel can wrap the model)."""
        return self.loss(batch, generator, drop_probability, space_group_drop)

    def prior(self, num: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """(num, D) latents from N(0, I)."""
        return draw("randn", (num, self.model_config.latent_dim), self.device, generator)

