"""Training the toy denoiser: the plain DDPM objective, E_{t, x0, eps} |net(x_t, t) - target|^2.

Deterministic for a seed (weights, batches, steps and noise all come from one generator) and
stoppable: ``should_stop`` is asked before every step, so a page can run it in a thread for a
few seconds and keep whatever it has learned by then.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable

import torch

from .data import ToyDataset
from .model import ToyDenoiser
from .process import denoising_target, make_process, q_sample

ProgressCallback = Callable[[int, float], None]   # (steps done, loss of the last step)


@dataclass(frozen=True)
class ToyTrainConfig:
    """schedule: a crystal schedule name (VP data sets; the torus uses sigma_min..sigma_max);
    num_steps: T; max_steps: optimizer steps; the learning rate decays along a cosine to 0 at max_steps."""

    schedule: str = "linear"
    num_steps: int = 200
    hidden: int = 128          # MLP width
    layers: int = 3            # hidden layers
    time_dim: int = 32         # sinusoidal time embedding
    position_dim: int = 64     # sinusoidal features of x (without them the roll's arms blur)
    frequencies: int = 8       # of those features
    batch_size: int = 256
    max_steps: int = 3000
    lr: float = 3e-3
    seed: int = 0
    sigma_min: float = 0.005
    sigma_max: float = 0.5
    progress_every: int = 50


@dataclass
class ToyTrainResult:
    """model: the trained denoiser (eval mode); losses: one float per step done;
    seconds: wall time; stopped: True when ``should_stop`` ended it before max_steps."""

    model: ToyDenoiser
    config: ToyTrainConfig
    losses: list[float] = field(default_factory=list)
    seconds: float = 0.0
    stopped: bool = False

    @property
    def steps(self) -> int:
        return len(self.losses)


def untrained_model(config: ToyTrainConfig, periodic: bool) -> ToyDenoiser:
    """The model ``train_toy`` starts from (same seed, same weights): the baseline of a comparison."""
    process = make_process(config.schedule, config.num_steps, periodic, config.sigma_min, config.sigma_max)
    # nn.Linear draws its initial weights from the global generator: seed a private copy of it
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        return ToyDenoiser(process, config.hidden, config.layers, config.time_dim, config.position_dim,
                           config.frequencies)


def train_toy(config: ToyTrainConfig, data: ToyDataset, progress: ProgressCallback | None = None,
              should_stop: Callable[[], bool] | None = None) -> ToyTrainResult:
    """Train a fresh ``ToyDenoiser`` on ``data.points`` (n, 2) with Adam."""
    model = untrained_model(config, data.periodic)
    process, points = model.process, data.points.float()
    generator = torch.Generator().manual_seed(config.seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    # a cosine decay: the last few hundred small steps sharpen thin structures such as the roll's arms
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: 0.5 * (1 + math.cos(math.pi * min(step, config.max_steps) / config.max_steps)))
    result = ToyTrainResult(model, config)
    start = time.perf_counter()
    model.train()
    for step in range(config.max_steps):
        if should_stop is not None and should_stop():
            result.stopped = True
            break
        x0 = points[torch.randint(len(points), (config.batch_size,), generator=generator)]
        t = torch.randint(1, process.num_steps + 1, (config.batch_size,), generator=generator)
        noise = torch.randn(x0.shape, generator=generator)
        loss = (model(q_sample(process, x0, t, noise), t) - denoising_target(process, t, noise)).pow(2).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        result.losses.append(loss.item())
        if progress is not None and ((step + 1) % config.progress_every == 0 or step + 1 == config.max_steps):
            progress(step + 1, result.losses[-1])
    model.eval()
    result.seconds = time.perf_counter() - start
    return result
