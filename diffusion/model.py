"""The periodic denoiser: a DiffCSP-style message-passing network (Jiao et al., NeurIPS 2023).

Symmetries built in (checked numerically in tests/test_model.py):
- atom permutation: per-atom outputs permute with the atoms, crystal outputs are unchanged;
- rotation of the lattice L -> L R^T: only the Gram matrix L L^T enters, so coordinate
  and type outputs are unchanged and the lattice output O = H L rotates with L;
- periodic translation and choice of image: only sin/cos Fourier features of the
  fractional differences f_j - f_i enter.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import nn

from .corruption import NUM_TYPE_CLASSES
from .crystal import CrystalGraph

NUM_SPACE_GROUPS = 230


@dataclass(frozen=True)
class DenoiserConfig:
    """Architecture hyper-parameters (stored in every checkpoint)."""

    hidden: int = 256
    layers: int = 4
    frequencies: int = 32
    time_dim: int = 128
    predict_types: bool = False      # the ab initio ("gen") task also denoises atom types
    use_property: bool = False       # scalar property condition (classifier-free guidance)
    use_space_group: bool = False    # space-group condition (classifier-free guidance)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "DenoiserConfig":
        names = set(cls.__dataclass_fields__)
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"unknown model config keys: {sorted(unknown)}")
        check_sizes(d, SIZE_LIMITS)
        return cls(**d)


# What a checkpoint's config may ask for: checked before any layer is built, so a file that asks for a
# network of absurd size is refused instead of exhausting memory (all shipped models are far below).
SIZE_LIMITS = {"hidden": 4096, "layers": 64, "frequencies": 512, "time_dim": 4096, "encoder_layers": 64,
               "latent_dim": 4096, "num_steps": 100_000, "num_levels": 10_000, "steps_per_level": 10_000}


def check_sizes(config: dict, limits: dict[str, int]) -> None:
    """Raise ``ValueError`` when an integer size in ``config`` is not an integer in 1..limit."""
    for key, limit in limits.items():
        if key in config:
            value = config[key]
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= limit:
                raise ValueError(f"{key} = {value!r} is not a size this program builds (1 to {limit})")


@dataclass(frozen=True)
class DenoiserOutput:
    """lattice: (B, 3, 3) equivariant output O = H L~ (H invariant);
    coord_score: (N, 3) normalized score of the fractional coordinates;
    type_logits: (N, 101) logits of the clean type (MASK + Z=1..100), or None for CSP."""

    lattice: torch.Tensor
    coord_score: torch.Tensor
    type_logits: torch.Tensor | None


def sinusoidal_embedding(t: torch.Tensor, dim: int, max_period: float = 10_000.0,
                         dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """(B,) steps (any float scale) -> (B, dim) sin/cos features (Vaswani et al. 2017)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device, dtype=dtype) / half)
    angles = t.to(dtype).unsqueeze(-1) * freqs
    return torch.cat([torch.sin(angles), torch.cos(angles)], -1)


def fourier_features(diff: torch.Tensor, frequencies: int) -> torch.Tensor:
    """(E, 3) fractional differences -> (E, 6K) sin/cos(2 pi k d), k = 1..K; periodic in d."""
    k = torch.arange(1, frequencies + 1, device=diff.device, dtype=diff.dtype)
    angles = 2 * math.pi * diff.unsqueeze(-1) * k
    return torch.cat([torch.sin(angles), torch.cos(angles)], -1).flatten(1)


class MessageLayer(nn.Module):
    """Pre-norm residual message passing over all atom pairs of each crystal.

    The edge MLP's first linear map on [h_i, h_j, e_ij] is split into per-node projections
    gathered onto edges, which is the same function at a fraction of the cost.
    """

    def __init__(self, hidden: int):
        super().__init__()
        self.norm = nn.LayerNorm(hidden)
        self.src_proj = nn.Linear(hidden, hidden)
        self.dst_proj = nn.Linear(hidden, hidden, bias=False)
        self.edge_mlp = nn.Sequential(nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU())
        self.node_mlp = nn.Sequential(nn.Linear(2 * hidden, hidden), nn.SiLU(), nn.Linear(hidden, hidden))

    def forward(self, h: torch.Tensor, graph: CrystalGraph, edge_term: torch.Tensor,
                crystal_term: torch.Tensor) -> torch.Tensor:
        """h: (N, H); graph: the batch's edges; edge_term: (E, H) this layer's projection of edge
        features; crystal_term: (N, H) this layer's projection of the crystal's lattice, one row per atom."""
        hn = self.norm(h)
        # per-edge work runs in the edge MLP's dtype (bfloat16 in a reduced-precision copy, see
        # precision.py: the casts happen on the N atoms, not the E pairs); the sum over edges and the
        # residual stream stay in h's dtype. index_select: the same gather as indexing, less overhead.
        low = self.edge_mlp[1].weight.dtype
        messages = self.edge_mlp(torch.index_select((self.src_proj(hn) + crystal_term).to(low), 0, graph.src)
                                 + torch.index_select(self.dst_proj(hn).to(low), 0, graph.dst) + edge_term.to(low))
        return h + self.node_mlp(torch.cat([hn, graph.mean_over_edges(messages.to(h.dtype))], -1))


class CrystalDenoiser(nn.Module):
    """phi(A_t, F_t, L~_t, t, conditions) -> (lattice output, coordinate score, type logits)."""

    def __init__(self, config: DenoiserConfig):
        super().__init__()
        self.config = config
        h = config.hidden
        self.type_embedding = nn.Embedding(NUM_TYPE_CLASSES, h)
        self.time_mlp = nn.Sequential(nn.Linear(config.time_dim, h), nn.SiLU(), nn.Linear(h, h))
        # crystal-level context: time + log N + lattice invariants + conditions, added to every atom
        self.size_proj = nn.Linear(1, h)
        self.lattice_mlp = nn.Sequential(nn.Linear(6, h), nn.SiLU(), nn.Linear(h, h))
        if config.use_property:
            self.property_mlp = nn.Sequential(nn.Linear(1, h), nn.SiLU(), nn.Linear(h, h))
            self.property_null = nn.Parameter(torch.zeros(h))
        if config.use_space_group:
            self.space_group_embedding = nn.Embedding(NUM_SPACE_GROUPS + 1, h)  # 0 = "none"
        self.edge_feature_dim = 6 * config.frequencies
        self.edge_proj = nn.Linear(self.edge_feature_dim, config.layers * h, bias=False)
        self.gram_proj = nn.Linear(9, config.layers * h)
        self.layers = nn.ModuleList([MessageLayer(h) for _ in range(config.layers)])
        self.out_norm = nn.LayerNorm(h)
        self.coord_head = nn.Linear(h, 3, bias=False)
        self.lattice_head = nn.Sequential(nn.Linear(h, h), nn.SiLU(), nn.Linear(h, 9))
        self.type_head = nn.Linear(h, NUM_TYPE_CLASSES) if config.predict_types else None

    @property
    def dtype(self) -> torch.dtype:
        """The dtype of the network's inputs, outputs and residual stream. Its matrix products may run in a
        lower precision (``diffusion.precision``), which never changes this."""
        return self.out_norm.weight.dtype

    def time_context(self, t: torch.Tensor) -> torch.Tensor:
        """(B,) steps -> (B, H) time part of the context (samplers compute it once per grid)."""
        return self.time_mlp(sinusoidal_embedding(t, self.config.time_dim, dtype=self.dtype))

    def condition_context(self, num_atoms: torch.Tensor, prop: torch.Tensor | None,
                          space_group: torch.Tensor | None) -> torch.Tensor:
        """(B, H) the parts of the context that stay fixed along a trajectory: size and conditions.

        prop: (B,) normalized, NaN = dropped; space_group: (B,) 0 = none.
        """
        dtype = self.dtype
        ctx = self.size_proj(torch.log(num_atoms.to(dtype)).unsqueeze(-1))
        if self.config.use_property:
            if prop is None:
                prop = torch.full(num_atoms.shape, math.nan, dtype=dtype, device=num_atoms.device)
            missing = torch.isnan(prop).unsqueeze(-1)
            embedded = self.property_mlp(torch.nan_to_num(prop.to(dtype)).unsqueeze(-1))
            ctx = ctx + torch.where(missing, self.property_null.expand_as(embedded), embedded)
        if self.config.use_space_group:
            if space_group is None:
                space_group = torch.zeros_like(num_atoms)
            ctx = ctx + self.space_group_embedding(space_group)
        return ctx

    def context(self, t: torch.Tensor, num_atoms: torch.Tensor, lattice_invariants: torch.Tensor,
                prop: torch.Tensor | None, space_group: torch.Tensor | None,
                fixed_context: torch.Tensor | None = None) -> torch.Tensor:
        """(B, H) crystal-level context vector.

        lattice_invariants: (B, 6) rotation-invariant description of the cell (the process's
        normalized lattice latent, O(1) in scale); prop: (B,) normalized, NaN = dropped;
        space_group: (B,) 0 = none; fixed_context: (B, H) precomputed
        ``time_context(t) + condition_context(...)`` (then t, prop and space_group are not read).
        """
        if fixed_context is None:
            fixed_context = self.time_context(t) + self.condition_context(num_atoms, prop, space_group)
        return fixed_context + self.lattice_mlp(lattice_invariants.to(self.dtype))

    def edge_projection(self, frac: torch.Tensor, src: torch.Tensor, dst: torch.Tensor,
                        min_edges: int = 128) -> torch.Tensor:
        """(E, layers * H) = edge_proj(fourier_features(f_dst - f_src)) for the edges of ``paired_edges``.

        Large graphs use the pair symmetry: swapping i and j flips the sines and keeps the
        cosines, so with S, C the sine and cosine parts of the projection of edge (i, j),
        edge (j, i) is C - S, and a self pair is the constant sum of the cosine weights.
        Only the i < j third of the edges is projected: the same function for less work.
        The angles and their sines and cosines are always computed in ``frac``'s precision (angles
        reach 2 pi K); the product with the weights, and the result, are in the weights' dtype.
        """
        K = self.config.frequencies
        if src.shape[0] < min_edges:
            return self.edge_proj(fourier_features(frac[dst] - frac[src], K)).to(self.edge_proj.weight.dtype)
        num_pairs = (src.shape[0] - frac.shape[0]) // 2
        k = torch.arange(1, K + 1, device=frac.device, dtype=frac.dtype)
        angles = 2 * math.pi * (frac[dst[:num_pairs]] - frac[src[:num_pairs]]).unsqueeze(-1) * k  # (U, 3, K)
        weight = self.edge_proj.weight.view(-1, 3, 2, K)                       # (layers * H, 3, 2, K)
        low = weight.dtype
        sines = torch.sin(angles).flatten(1).to(low) @ weight[:, :, 0, :].reshape(-1, 3 * K).T  # (U, layers * H)
        cosines = torch.cos(angles).flatten(1).to(low) @ weight[:, :, 1, :].reshape(-1, 3 * K).T
        self_pairs = weight[:, :, 1, :].float().sum((1, 2)).to(low).expand(frac.shape[0], -1)
        return torch.cat([cosines + sines, cosines - sines, self_pairs])

    def forward(self, types: torch.Tensor, frac: torch.Tensor, lattice: torch.Tensor, num_atoms: torch.Tensor,
                batch: torch.Tensor, t: torch.Tensor, lattice_invariants: torch.Tensor | None = None,
                prop: torch.Tensor | None = None, space_group: torch.Tensor | None = None,
                fixed_context: torch.Tensor | None = None, graph: CrystalGraph | None = None) -> DenoiserOutput:
        """Args:
            types: (N,) atom classes (0 = MASK, else Z); frac: (N, 3) in [0, 1);
            lattice: (B, 3, 3) normalized lattice L~ (rows are vectors, dimensionless);
            lattice_invariants: (B, 6) invariant lattice features (default: from the Gram matrix);
            num_atoms: (B,); batch: (N,) crystal of each atom; t: (B,) steps;
            prop: (B,) normalized property or NaN; space_group: (B,) 0..230;
            fixed_context: (B, H) optional precomputed time + condition context (same result, less work);
            graph: the batch's precomputed ``CrystalGraph`` (samplers build it once per trajectory).
        """
        if graph is None:
            graph = CrystalGraph.build(num_atoms, batch)
        B, H, num_layers = num_atoms.shape[0], self.config.hidden, self.config.layers
        gram = (lattice @ lattice.transpose(-1, -2)).reshape(B, 9)
        edge_terms = self.edge_projection(frac, graph.src, graph.dst).view(-1, num_layers, H)
        # the lattice term is the same on every edge of a crystal: added per atom before the
        # gather onto edges (same sum, no (E, layers * H) tensor)
        gram_terms = self.gram_proj(gram).view(B, num_layers, H)[graph.batch]
        if lattice_invariants is None:
            lattice_invariants = gram_invariants(lattice)
        h = self.type_embedding(types) + self.context(t, num_atoms, lattice_invariants, prop, space_group,
                                                               fixed_context)[graph.batch]
        for k, layer in enumerate(self.layers):
            h = layer(h, graph, edge_terms[:, k], gram_terms[:, k])
        h = self.out_norm(h)
        pooled = graph.mean_over_atoms(h)
        lattice_out = self.lattice_head(pooled).view(B, 3, 3) @ lattice
        type_logits = self.type_head(h) if self.type_head is not None else None
        return DenoiserOutput(lattice_out, self.coord_head(h), type_logits)


def gram_invariants(lattice: torch.Tensor) -> torch.Tensor:
    """(B, 3, 3) -> (B, 6) upper triangle of log(L L^T) / 2: rotation-invariant lattice features."""
    evals, evecs = torch.linalg.eigh(lattice @ lattice.transpose(-1, -2))
    log_gram = (evecs * (0.5 * torch.log(evals.clamp(min=1e-12))).unsqueeze(-2)) @ evecs.transpose(-1, -2)
    i, j = torch.triu_indices(3, 3)
    return log_gram[..., i, j]


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
