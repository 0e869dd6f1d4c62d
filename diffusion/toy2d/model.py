"""The toy denoiser: a small MLP of (x_t, t), with sinusoidal features of both.

What it outputs follows its process (``process.py``): eps for the Euclidean VP process, the
normalized wrapped-normal score on the torus. x enters through sinusoidal features, not raw:
an MLP of raw (x, y) is biased towards smooth functions (Tancik et al. 2020) and after 3000 steps
still blurs the Swiss roll's arms into a disc; with features it draws them. On the torus the
features are sin/cos(2 pi k x), k = 1..K, so the network is periodic by construction.
"""
from __future__ import annotations

import torch
from torch import nn

from ..model import fourier_features, sinusoidal_embedding
from .process import ToyProcess, score_from_output

POSITION_SCALE = 25.0   # the highest feature frequency (rad per unit) of x in R^2


class ToyDenoiser(nn.Module):
    """MLP [features(x_t), emb(t)] -> hidden -> ... -> 2 with SiLU; ``layers`` hidden layers of ``hidden``.

    process: the forward process it is trained for (kept with the weights, so samplers need nothing else);
    time_dim: size of the sinusoidal step embedding; position_dim: sinusoidal features per coordinate
    in R^2 (2 * position_dim inputs); frequencies: K of the torus features (4K inputs).
    """

    def __init__(self, process: ToyProcess, hidden: int = 128, layers: int = 3, time_dim: int = 32,
                 position_dim: int = 64, frequencies: int = 8):
        super().__init__()
        if layers < 1 or hidden < 1:
            raise ValueError(f"need layers >= 1 and hidden >= 1, got {layers}, {hidden}")
        self.process = process
        self.time_dim, self.position_dim, self.frequencies = time_dim, position_dim, frequencies
        inputs = (4 * frequencies if process.periodic else 2 * position_dim) + time_dim
        blocks: list[nn.Module] = []
        for i in range(layers):
            blocks += [nn.Linear(inputs if i == 0 else hidden, hidden), nn.SiLU()]
        self.net = nn.Sequential(*blocks, nn.Linear(hidden, 2))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(n, 2) -> (n, 2 position_dim) in R^2, or (n, 4K) sin/cos(2 pi k x) on the torus."""
        if self.process.periodic:
            return fourier_features(x, self.frequencies)
        # periods from 2 pi / 25 ~ 0.25 (well below the ~0.9 gap between the roll's arms) to far beyond the data
        return sinusoidal_embedding(x.flatten() * POSITION_SCALE, self.position_dim).view(len(x), -1)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """x: (n, 2) points at step t; t: (n,) integer steps 1..T -> (n, 2) eps or normalized score."""
        # steps are rescaled to 0..1000 so the embedding sees the same frequencies for any T
        emb = sinusoidal_embedding(t.float() * (1000.0 / self.process.num_steps), self.time_dim)
        return self.net(torch.cat([self.features(x), emb], -1))

    def score(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """(n, 2), (n,) -> (n, 2) the learned score d/dx log p_t(x)."""
        return score_from_output(self.process, self(x, t), t)
