"""The latent space of a CDVAE: encode crystals, map the latents to 2D, walk between two of them, and
follow the property head's gradient (CDVAE section 5, property optimization).

Pure functions on tensors; decoding a latent is ``langevin.langevin_decode``. Shapes: M crystals,
D latent numbers, S steps.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..crystal import CrystalBatch
from .model import CDVAE

MAX_PATH_STEPS = 2000


@torch.no_grad()
def encode_means(model: CDVAE, crystals, batch_size: int = 256) -> torch.Tensor:
    """(M, D) the mean of q(z | M) of each crystal (the latent a crystal is drawn at)."""
    out = []
    for start in range(0, len(crystals), batch_size):
        batch = CrystalBatch.from_crystals(list(crystals[start:start + batch_size])).to(model.device)
        out.append(model.encode(batch)[0].float().cpu())
    if not out:
        return torch.zeros(0, model.model_config.latent_dim)
    return torch.cat(out)


@dataclass(frozen=True)
class Projection:
    """A 2D principal-component map of latents: mean (D,), components (2, D) orthonormal rows,
    explained (2,) the share of the latents' variance along each axis."""

    mean: torch.Tensor
    components: torch.Tensor
    explained: torch.Tensor

    def project(self, z: torch.Tensor) -> torch.Tensor:
        """(M, D) -> (M, 2)."""
        return (z.float() - self.mean) @ self.components.T

    def lift(self, points: torch.Tensor) -> torch.Tensor:
        """(M, 2) -> (M, D): the latents on the map's plane (a point off the data has no crystal of its own)."""
        return self.mean + points.float() @ self.components


def principal_plane(latents: torch.Tensor) -> Projection:
    """The plane of the two largest principal components of (M, D) latents (M >= 2)."""
    if latents.shape[0] < 2:
        raise ValueError("a map needs at least two latents")
    mean = latents.float().mean(0)
    centered = latents.float() - mean
    _, singular, vh = torch.linalg.svd(centered, full_matrices=False)
    variance = singular ** 2
    k = min(2, vh.shape[0])
    components = vh[:k]
    explained = variance[:k] / variance.sum().clamp(min=1e-12)
    if k < 2:  # all latents on a line: any orthogonal second axis
        extra = torch.zeros_like(components[0]); extra[int(torch.argmin(components[0].abs()))] = 1.0
        extra = extra - (extra @ components[0]) * components[0]
        components = torch.stack([components[0], extra / extra.norm()])
        explained = torch.cat([explained, torch.zeros(1)])
    return Projection(mean, components, explained)


def interpolate(z_a: torch.Tensor, z_b: torch.Tensor, num: int) -> torch.Tensor:
    """(num, D) latents evenly spaced on the straight line from z_a (D,) to z_b (D,), both ends included
    (CDVAE interpolates linearly)."""
    if num < 2:
        raise ValueError("an interpolation needs at least 2 points")
    weights = torch.linspace(0.0, 1.0, num).unsqueeze(-1)
    return (1 - weights) * z_a.float() + weights * z_b.float()


@dataclass(frozen=True)
class PropertyPath:
    """Gradient steps on z: latents (S+1, D) from the start, the property head's prediction at each
    (S+1,) in the data's units."""

    latents: torch.Tensor
    predicted: torch.Tensor


def optimize_property(model: CDVAE, z0: torch.Tensor, steps: int = 100, lr: float = 0.05,
                      maximize: bool = False) -> PropertyPath:
    """Move z0 (D,) by Adam steps along the gradient of the property head (down, or up with ``maximize``),
    as CDVAE's property optimization does; the decoder is not involved until the caller decodes the path."""
    if model.property_head is None:
        raise ValueError("this model has no property head (train it with --property)")
    if not 1 <= steps <= MAX_PATH_STEPS:
        raise ValueError(f"steps must be between 1 and {MAX_PATH_STEPS}, got {steps}")
    if not 0 < lr <= 1:
        raise ValueError(f"the step size must be in (0, 1], got {lr}")
    z = z0.detach().float().clone().to(model.device).unsqueeze(0).requires_grad_(True)
    optimizer = torch.optim.Adam([z], lr=lr)
    scale, shift = model.normalization.property_std, model.normalization.property_mean
    latents, predicted = [], []
    sign = -1.0 if maximize else 1.0
    for step in range(steps + 1):
        value = model.property_head(z).squeeze()
        latents.append(z.detach().squeeze(0).cpu().clone())
        predicted.append(float(value.detach()) * scale + shift)
        if step == steps:
            break
        optimizer.zero_grad()
        (sign * value).backward()
        optimizer.step()
    for parameter in model.parameters():
        parameter.grad = None
    return PropertyPath(torch.stack(latents), torch.tensor(predicted))
