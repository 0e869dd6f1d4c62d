"""The explicit model next to the diffusion model: a Gaussian mixture fitted by EM.

A mixture writes its density down (log-likelihood, contours, exact samples); a diffusion model
only learns the score. sklearn's ``GaussianMixture`` does the EM fit (scikit-learn comes with
matminer); everything after the fit is plain torch on its weights, means and covariances.
On the torus the mixture is fitted in the flat square [0, 1)^2: it does not know the box is periodic.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class GaussianMixtureFit:
    """weights: (K,); means: (K, 2); covariances: (K, 2, 2), all float64;
    avg_log_likelihood: mean log p(x) over the points it was fitted to (nats per point)."""

    weights: torch.Tensor
    means: torch.Tensor
    covariances: torch.Tensor
    avg_log_likelihood: float

    @property
    def components(self) -> int:
        return len(self.weights)


def gmm_log_density(fit: GaussianMixtureFit, points: torch.Tensor) -> torch.Tensor:
    """log p(x) = log sum_k w_k N(x; mu_k, Sigma_k). points (G, 2) -> (G,) float64."""
    normals = torch.distributions.MultivariateNormal(fit.means, covariance_matrix=fit.covariances)
    per_component = normals.log_prob(points.double().unsqueeze(1))          # (G, K)
    return torch.logsumexp(per_component + fit.weights.log(), -1)


def fit_gmm(points: torch.Tensor, components: int = 8, seed: int = 0) -> GaussianMixtureFit:
    """EM fit of a full-covariance mixture to (n, 2) points (k-means start, seeded)."""
    from sklearn.mixture import GaussianMixture   # imported here: only this page needs it

    data = points.double().numpy()
    em = GaussianMixture(components, covariance_type="full", random_state=int(seed), reg_covar=1e-6).fit(data)
    weights, means, covs = (torch.from_numpy(a).double() for a in (em.weights_, em.means_, em.covariances_))
    partial = GaussianMixtureFit(weights, means, covs, math.nan)
    return GaussianMixtureFit(weights, means, covs, float(gmm_log_density(partial, points).mean()))


def gmm_density(fit: GaussianMixtureFit, grid: torch.Tensor) -> torch.Tensor:
    """p(x) on a grid (G, 2) -> (G,) float64, e.g. for contours."""
    return gmm_log_density(fit, grid).exp()


def gmm_sample(fit: GaussianMixtureFit, n: int, seed: int = 0) -> torch.Tensor:
    """(n, 2) float32 exact samples: a component by its weight, then its Gaussian."""
    generator = torch.Generator().manual_seed(int(seed))
    which = torch.multinomial(fit.weights, n, replacement=True, generator=generator)
    z = torch.randn(n, 2, generator=generator, dtype=torch.float64)
    chol = torch.linalg.cholesky(fit.covariances)                             # (K, 2, 2)
    return (fit.means[which] + (chol[which] @ z.unsqueeze(-1)).squeeze(-1)).float()
