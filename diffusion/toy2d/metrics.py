"""Sample quality for any generator, explicit or implicit: the maximum mean discrepancy.

MMD^2(P, Q) = E k(x, x') + E k(y, y') - 2 E k(x, y) with the RBF kernel k(a, b) = exp(-|a - b|^2 / (2 h^2))
(Gretton et al. 2012). It is 0 exactly when P = Q (the RBF kernel is characteristic), needs only
samples, and so compares a diffusion model (no density) and a Gaussian mixture (a density) alike.
"""
from __future__ import annotations

import torch


def circle_embedding(points: torch.Tensor) -> torch.Tensor:
    """(n, d) on the torus [0, 1)^d -> (n, 2d): each coordinate as (cos 2 pi x, sin 2 pi x) / (2 pi)."""
    angle = 2 * torch.pi * points.double()
    return torch.cat([torch.cos(angle), torch.sin(angle)], -1) / (2 * torch.pi)


def pairwise_sq_distances(a: torch.Tensor, b: torch.Tensor, periodic: bool = False) -> torch.Tensor:
    """(n, d), (m, d) -> (n, m) squared Euclidean distances.

    On the torus: the chord distance of ``circle_embedding``, which equals the minimum-image
    distance for close points. Not the minimum-image distance itself: an RBF of that is not a
    positive-definite kernel, and its MMD^2 can come out negative (it does on ``periodic_box``).
    """
    if periodic:
        a, b = circle_embedding(a), circle_embedding(b)
    return (a.double().unsqueeze(1) - b.double().unsqueeze(0)).pow(2).sum(-1)


def median_bandwidth(points: torch.Tensor, periodic: bool = False, max_points: int = 2000) -> float:
    """The median heuristic: h = median pairwise distance among the points (an even stride of at most
    max_points of them: the median of 4 million distances is as good as that of all and much cheaper)."""
    subset = points[::-(-len(points) // max_points)]
    d2 = pairwise_sq_distances(subset, subset, periodic)
    off_diagonal = d2[~torch.eye(len(subset), dtype=torch.bool)]
    return float(off_diagonal.median().sqrt())


def mmd(x: torch.Tensor, y: torch.Tensor, bandwidth: float | None = None, periodic: bool = False) -> float:
    """MMD (the square root of the biased V-statistic MMD^2, so mmd(x, x) == 0) between (n, d) and (m, d).

    bandwidth: the RBF h; None = the median heuristic on x and y pooled. Pass the data's own
    median (``median_bandwidth(data)``) to compare several sample sets on one scale.
    """
    if bandwidth is None:
        bandwidth = median_bandwidth(torch.cat([x, y]), periodic)
    if not bandwidth > 0:
        raise ValueError(f"bandwidth must be > 0, got {bandwidth}")

    def mean_kernel(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return torch.exp(-pairwise_sq_distances(a, b, periodic) / (2 * bandwidth ** 2)).mean()

    squared = mean_kernel(x, x) + mean_kernel(y, y) - 2 * mean_kernel(x, y)
    return float(squared.clamp(min=0).sqrt())
