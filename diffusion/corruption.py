"""Forward processes q(x_t | x_0): one per field of the crystal (lattice, coordinates, types).

Lattice. A cell is diffused in a normalized, orientation-free latent so that every
intermediate cell is a physically sized, non-degenerate box (docs/architecture.md#lattice):

    S   = (L L^T)^(1/2)                symmetric cell with the same lengths/angles as L
    S~  = S / (c N^(1/3))              c^3 = mean volume per atom of the data
    Y   = log(S~)                      matrix logarithm: Y = 0 is a cube at mean density
    z   = vec6(Y) = (Y11, Y22, Y33, sqrt2 Y12, sqrt2 Y13, sqrt2 Y23)   (an isometry)
    x   = (z - mean) / std             per-component data statistics

``x`` follows the variance-preserving DDPM of the course text, x_t = sqrt(abar_t) x_0 +
sqrt(1 - abar_t) eps. Its limit N(0, I) maps back to a random cell around the data's mean
shape and density, and ``expm`` keeps every intermediate cell positive definite.

Coordinates. Variance-exploding wrapped normal on the torus: F_t = (F_0 + sigma_t eps) mod 1.
The network is trained on the *normalized score* s(F_t | F_0) / sqrt(E[s^2]) of the
wrapped normal (DiffCSP's choice); ``wrapped_normal_score`` is d/dx log p (the true sign).

Types (ab initio task). Absorbing ("masked") discrete diffusion (D3PM, Austin et al. 2021):
each atom is replaced by MASK = 0 with probability t/T; the limit is all-masked.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch


MASK = 0
NUM_TYPE_CLASSES = 101  # MASK + Z = 1..100
_SQRT2 = math.sqrt(2.0)
_IMAGES = 4  # periodic images k = -4..4: exact to float precision for sigma <= 0.5
STD_FLOOR = 0.1


# ----------------------------------------------------------------------------- lattice
def sym_to_vec6(m: torch.Tensor) -> torch.Tensor:
    """(..., 3, 3) symmetric -> (..., 6) with the Frobenius norm preserved."""
    return torch.stack([m[..., 0, 0], m[..., 1, 1], m[..., 2, 2],
                        _SQRT2 * m[..., 0, 1], _SQRT2 * m[..., 0, 2], _SQRT2 * m[..., 1, 2]], -1)


def vec6_to_sym(v: torch.Tensor) -> torch.Tensor:
    """(..., 6) -> (..., 3, 3) symmetric; inverse of ``sym_to_vec6``."""
    a, b, c = v[..., 0], v[..., 1], v[..., 2]
    d, e, f = v[..., 3] / _SQRT2, v[..., 4] / _SQRT2, v[..., 5] / _SQRT2
    return torch.stack([torch.stack([a, d, e], -1), torch.stack([d, b, f], -1), torch.stack([e, f, c], -1)], -2)


def _sym_fn(m: torch.Tensor, fn) -> torch.Tensor:
    """Apply a scalar function to the eigenvalues of symmetric (..., 3, 3) matrices."""
    evals, evecs = torch.linalg.eigh(m.double())
    return (evecs * fn(evals).unsqueeze(-2)) @ evecs.transpose(-1, -2)


def lattice_scale(num_atoms: torch.Tensor, length_per_atom: float) -> torch.Tensor:
    """(B,) edge length in angstrom of a cube holding N atoms at the mean density."""
    return length_per_atom * num_atoms.double() ** (1.0 / 3.0)


@dataclass(frozen=True)
class LatticeStats:
    """Normalization statistics of the lattice latent, stored in every checkpoint.

    length_per_atom: c in angstrom, c^3 = geometric-mean volume per atom of the data.
    mean, std: per-component statistics of vec6(log S~) (6 floats each).
    """

    length_per_atom: float
    mean: tuple[float, ...]
    std: tuple[float, ...]

    @classmethod
    def fit(cls, lattices: torch.Tensor, num_atoms: torch.Tensor) -> "LatticeStats":
        """Fit to (M, 3, 3) lattices with (M,) atom counts."""
        volume = torch.linalg.det(lattices.double()).abs()
        c = float(torch.exp(torch.log(volume / num_atoms.double()).mean() / 3.0))
        z = sym_to_vec6(log_normalized_lattice(lattices, num_atoms, c))
        std = z.std(0).clamp(min=STD_FLOOR) if z.shape[0] > 1 else torch.full((6,), STD_FLOOR)
        return cls(c, tuple(z.mean(0).tolist()), tuple(std.tolist()))

    @classmethod
    def around(cls, crystal_volume_per_atom: float, std: float = 0.2) -> "LatticeStats":
        """Generic statistics centred on a cube at a given density (for showing the forward process)."""
        return cls(crystal_volume_per_atom ** (1.0 / 3.0), (0.0,) * 6, (std,) * 6)

    def tensors(self, device=None) -> tuple[torch.Tensor, torch.Tensor]:
        return (torch.tensor(self.mean, dtype=torch.float64, device=device),
                torch.tensor(self.std, dtype=torch.float64, device=device))

    def to_dict(self) -> dict:
        return {"length_per_atom": self.length_per_atom, "mean": list(self.mean), "std": list(self.std)}

    @classmethod
    def from_dict(cls, d: dict) -> "LatticeStats":
        return cls(float(d["length_per_atom"]), tuple(float(x) for x in d["mean"]), tuple(float(x) for x in d["std"]))


def log_normalized_lattice(lattice: torch.Tensor, num_atoms: torch.Tensor, length_per_atom: float) -> torch.Tensor:
    """(B, 3, 3) lattices -> (B, 3, 3) Y = log(S / (c N^(1/3))), symmetric, float64."""
    gram = lattice.double() @ lattice.double().transpose(-1, -2)
    scale = lattice_scale(num_atoms, length_per_atom).view(-1, 1, 1)
    return _sym_fn(gram / scale ** 2, lambda ev: 0.5 * torch.log(ev.clamp(min=1e-12)))


def lattice_to_latent(lattice: torch.Tensor, num_atoms: torch.Tensor, stats: LatticeStats) -> torch.Tensor:
    """(B, 3, 3) lattices in angstrom -> (B, 6) normalized latent x (float32)."""
    mean, std = stats.tensors(lattice.device)
    z = sym_to_vec6(log_normalized_lattice(lattice, num_atoms, stats.length_per_atom))
    return ((z - mean) / std).float()


def latent_to_lattice(x: torch.Tensor, num_atoms: torch.Tensor, stats: LatticeStats) -> torch.Tensor:
    """(B, 6) latent -> (B, 3, 3) symmetric positive-definite lattices in angstrom (float32)."""
    mean, std = stats.tensors(x.device)
    y = vec6_to_sym(x.double() * std + mean)
    scale = lattice_scale(num_atoms, stats.length_per_atom).view(-1, 1, 1)
    return (_sym_fn(y, torch.exp) * scale).float()


def q_sample(x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor, abar: torch.Tensor) -> torch.Tensor:
    """Closed form x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps.

    Args: x0 (B, D); t (B,) integer steps in 0..T; noise (B, D); abar (T+1,) schedule on x0's device.
    """
    abar = abar[t].to(x0.dtype).unsqueeze(-1)
    return abar.sqrt() * x0 + (1 - abar).sqrt() * noise


def q_step(x_prev: torch.Tensor, t: torch.Tensor, noise: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """One forward step x_t = sqrt(alpha_t) x_{t-1} + sqrt(1 - alpha_t) eps; alpha (T+1,); shapes as ``q_sample``."""
    alpha = alpha[t].to(x_prev.dtype).unsqueeze(-1)
    return alpha.sqrt() * x_prev + (1 - alpha).sqrt() * noise


# ----------------------------------------------------------------------------- coordinates
def wrap(frac: torch.Tensor) -> torch.Tensor:
    """Fractional coordinates into [0, 1)."""
    out = torch.remainder(frac, 1.0)
    return torch.where(out >= 1.0, torch.zeros_like(out), out)


def wrapped_normal_log_density(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """log sum_k N(x + k; 0, sigma^2), elementwise; x and sigma broadcast together."""
    k = torch.arange(-_IMAGES, _IMAGES + 1, dtype=x.dtype, device=x.device)
    d = x.unsqueeze(-1) + k
    s = sigma.unsqueeze(-1)
    return torch.logsumexp(-d ** 2 / (2 * s ** 2) - torch.log(s * math.sqrt(2 * math.pi)), -1)


def wrapped_normal_score(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """d/dx log p_sigma(x) of the wrapped normal: sum_k -(x+k)/sigma^2 w_k / sum_k w_k.

    x: any shape (a displacement F_t - F_0); sigma broadcastable to x, > 0.
    """
    k = torch.arange(-_IMAGES, _IMAGES + 1, dtype=x.dtype, device=x.device)
    d = x.unsqueeze(-1) + k
    s2 = sigma.unsqueeze(-1) ** 2
    weights = torch.softmax(-d ** 2 / (2 * s2), -1)
    return (-d / s2 * weights).sum(-1)


def score_norm(sigmas: torch.Tensor, grid: int = 1001, chunk: int = 128) -> torch.Tensor:
    """E_{x ~ WN(0, sigma^2)}[score(x)^2] for each sigma, by quadrature over one period.

    The expectation is over *wrapped* x in [-1/2, 1/2): integrating the unwrapped normal
    would overestimate it for large sigma. sigmas: (T,) > 0; returns (T,) float64.
    Below sigma = 0.1 the periodic images carry less than exp(-50) of the mass, so the
    normal's value 1 / sigma^2 is exact to float precision and no quadrature is needed.
    """
    sigmas = sigmas.double()
    out = 1.0 / sigmas ** 2
    wide = sigmas >= 0.1
    if wide.any():
        x = torch.linspace(-0.5, 0.5, grid, dtype=torch.float64)[:-1] + 0.5 / (grid - 1)
        values = []
        for part in sigmas[wide].split(chunk):
            s = part.unsqueeze(-1).expand(-1, x.shape[0])
            xs = x.expand_as(s)
            p = torch.exp(wrapped_normal_log_density(xs, s))
            values.append((p * wrapped_normal_score(xs, s) ** 2).sum(-1) / p.sum(-1))
        out[wide] = torch.cat(values)
    return out


def q_sample_coords(frac0: torch.Tensor, sigma: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """F_t = (F_0 + sigma_t eps) mod 1. frac0, noise: (N, 3); sigma: (N, 1) per atom."""
    return wrap(frac0 + sigma * noise)


# ----------------------------------------------------------------------------- types
def mask_probability(t: torch.Tensor, num_steps: int) -> torch.Tensor:
    """Probability that an atom type is masked at step t (linear absorbing schedule): t / T."""
    return t.double() / num_steps


def q_sample_types(types0: torch.Tensor, t_per_atom: torch.Tensor, num_steps: int, uniform: torch.Tensor) -> torch.Tensor:
    """Mask each atom type with probability t/T. types0, t_per_atom, uniform: (N,)."""
    masked = uniform < mask_probability(t_per_atom, num_steps)
    return torch.where(masked, torch.full_like(types0, MASK), types0)
