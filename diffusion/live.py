"""Live training: a tiny denoiser trained on a handful of crystals, one optimizer step at a time.

Made for teaching (the app's Train page): the loss is ``CrystalDiffusion.loss``, the very
objective of ``train.py``, on a model built by ``train.build_model``; only the scale differs
(a few crystals, ~100k parameters, T of a few hundred steps, no EMA, no checkpoints). Each
optimizer step shows every crystal ``replicas`` times, each copy at its own random t and noise, and
the learning rate decays to zero on a cosine over the run: a tiny model needs many noise draws per
crystal to learn where the atoms go (docs/teaching.md#train-in-class has the measurements).

``LiveTrainer`` runs ``train_live`` in a background thread on the CPU with one torch
thread, and stops at the first of: its step budget, a stop request, a wall-time limit, or
``keep_going()`` returning False (the app passes "is the browser session still open?").
``noise_prediction`` shows what the network has learned: one crystal noised to step t,
the noise that was drawn next to the noise the model predicts.

No Streamlit here.
"""
from __future__ import annotations

import copy
import math
import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import Callable, Sequence

import torch
from pymatgen.core.periodic_table import Element

from .crystal import Crystal, CrystalBatch, CrystalGraph
from .crystal_diffusion import CrystalDiffusion
from .schedules import SCHEDULE_NAMES
from .train import TrainConfig, build_model

MAX_LIVE_STEPS = 10_000
MAX_LIVE_REPLICAS = 64
MAX_ATOMS_PER_STEP = 384       # what one step may hold (16 crystals of 24 atoms once): keeps a step cheap
MAX_LIVE_CRYSTALS = 16
MAX_LIVE_ATOMS = 24            # per crystal: keeps one step of 16 crystals well under 0.1 s on one core
MAX_LIVE_SECONDS = 600.0
KEEP_GOING_EVERY_S = 0.5       # how often the trainer asks ``keep_going`` (it may take a lock)


@dataclass(frozen=True)
class LiveConfig:
    """A tiny structure-prediction (CSP) model and its short training run."""

    steps: int = 5000              # optimizer steps (each one sees every crystal ``replicas`` times)
    replicas: int = 16             # copies of each crystal per step (at most; see ``replicas_for``)
    num_steps: int = 200           # diffusion steps T
    schedule: str = "cosine"
    hidden: int = 64
    layers: int = 2
    frequencies: int = 16
    lr: float = 2e-3
    max_seconds: float = 300.0     # wall-time limit of the whole run
    seed: int = 0

    def validate(self, crystals: Sequence[Crystal]) -> None:
        """Raise ``ValueError`` with a readable reason when this run is not allowed."""
        if not crystals:
            raise ValueError("pick at least one crystal to train on")
        if len(crystals) > MAX_LIVE_CRYSTALS:
            raise ValueError(f"at most {MAX_LIVE_CRYSTALS} crystals, got {len(crystals)}")
        largest = max(c.num_atoms for c in crystals)
        if largest > MAX_LIVE_ATOMS:
            raise ValueError(f"at most {MAX_LIVE_ATOMS} atoms per crystal, got one with {largest}")
        if not 1 <= self.steps <= MAX_LIVE_STEPS:
            raise ValueError(f"steps must be between 1 and {MAX_LIVE_STEPS}, got {self.steps}")
        if not 1 <= self.replicas <= MAX_LIVE_REPLICAS:
            raise ValueError(f"replicas must be between 1 and {MAX_LIVE_REPLICAS}, got {self.replicas}")
        if not 10 <= self.num_steps <= 1000:
            raise ValueError(f"T must be between 10 and 1000, got {self.num_steps}")
        if self.schedule not in SCHEDULE_NAMES:
            raise ValueError(f"unknown schedule '{self.schedule}'")
        if not (math.isfinite(self.lr) and 0 < self.lr <= 0.1):
            raise ValueError(f"the learning rate must be in (0, 0.1], got {self.lr}")
        if not 0 < self.max_seconds <= MAX_LIVE_SECONDS:
            raise ValueError(f"max_seconds must be in (0, {MAX_LIVE_SECONDS:g}], got {self.max_seconds}")


@dataclass(frozen=True)
class LossPoint:
    """The training loss after one optimizer step (the terms of ``LossTerms``, as floats)."""

    step: int
    total: float
    lattice: float
    coords: float
    seconds: float                 # since the run started


def build_live_model(crystals: Sequence[Crystal], config: LiveConfig = LiveConfig()) -> CrystalDiffusion:
    """A fresh CSP model with statistics fitted on ``crystals`` (``train.build_model``), seeded."""
    config.validate(crystals)
    train_config = TrainConfig(data=(), out="live", task="csp", hidden=config.hidden, layers=config.layers,
                               frequencies=config.frequencies, num_steps=config.num_steps, schedule=config.schedule,
                               max_atoms=max(c.num_atoms for c in crystals))
    with torch.random.fork_rng(devices=[]):  # same seed, same weights, without touching the caller's RNG
        torch.manual_seed(config.seed)
        return build_model(train_config, list(crystals))


def train_live(model: CrystalDiffusion, crystals: Sequence[Crystal], config: LiveConfig,
               should_stop: Callable[[], bool] = lambda: False, on_step: Callable[[LossPoint], None] | None = None,
               lock: threading.Lock | None = None) -> str:
    """Train ``model`` in place for up to ``config.steps`` Adam steps on all of ``crystals`` at once
    (each ``replicas_for`` times), the learning rate decaying from ``config.lr`` to 0 on a cosine.

    ``should_stop`` is asked before every step; ``on_step`` gets each step's loss; ``lock``
    (if given) is held while the weights change, so another thread can copy them safely.
    Returns why it ended: "finished", "stopped" or "time limit".
    """
    config.validate(crystals)
    batch = CrystalBatch.from_crystals(list(crystals) * replicas_for(crystals, config)).to(model.device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    generator = torch.Generator(device=model.device).manual_seed(config.seed)
    lock = lock or threading.Lock()
    started = time.perf_counter()
    model.train()
    for step in range(1, config.steps + 1):
        if should_stop():
            return "stopped"
        if time.perf_counter() - started > config.max_seconds:
            return "time limit"
        for group in optimizer.param_groups:
            group["lr"] = cosine_learning_rate(config.lr, step, config.steps)
        terms = model.loss(batch, generator, drop_probability=0.0)  # the training objective of train.py
        optimizer.zero_grad(set_to_none=True)
        terms.total.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
        with lock:
            optimizer.step()
        if on_step is not None:
            on_step(LossPoint(step, float(terms.total.detach()), float(terms.lattice), float(terms.coords),
                              time.perf_counter() - started))
    return "finished"


def replicas_for(crystals: Sequence[Crystal], config: LiveConfig) -> int:
    """How many copies of each crystal one step holds: ``config.replicas``, fewer when the copies of
    many or large crystals would pass ``MAX_ATOMS_PER_STEP`` atoms (never fewer than one)."""
    atoms = sum(c.num_atoms for c in crystals)
    return max(1, min(config.replicas, MAX_ATOMS_PER_STEP // max(atoms, 1)))


def cosine_learning_rate(peak: float, step: int, steps: int) -> float:
    """The learning rate of optimizer step ``step`` (1..steps): peak at step 1, falling to 0 on a half cosine."""
    return 0.5 * peak * (1 + math.cos(math.pi * (step - 1) / max(steps, 1)))


class LiveTrainer:
    """One live training run in a background thread (CPU, one torch thread).

    ``status`` goes "ready" -> "running" -> "finished" | "stopped" | "time limit" |
    "session ended" | "failed: <reason>". ``history`` and ``snapshot()`` may be read from
    any thread while it runs.
    """

    def __init__(self, crystals: Sequence[Crystal], config: LiveConfig = LiveConfig(),
                 keep_going: Callable[[], bool] | None = None):
        self.crystals = list(crystals)
        self.config = config
        self.model = build_live_model(self.crystals, config)  # validates
        self.keep_going = keep_going
        self.status = "ready"
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._history: list[LossPoint] = []
        self._thread: threading.Thread | None = None
        self._left_session = False
        self._last_asked = time.monotonic()

    # -- control ---------------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("this trainer has already been started (one run per trainer)")
        self.status = "running"
        self._thread = threading.Thread(target=self._run, name="live-training", daemon=True)
        self._thread.start()

    def stop(self, wait: float | None = None) -> None:
        """Ask the run to stop before its next step; optionally wait up to ``wait`` seconds for it."""
        self._stop.set()
        if wait is not None:
            self.join(wait)

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the thread; True when it has ended (or never started)."""
        if self._thread is not None:
            self._thread.join(timeout)
            return not self._thread.is_alive()
        return True

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # -- reading ---------------------------------------------------------------------------
    @property
    def history(self) -> list[LossPoint]:
        with self._lock:
            return list(self._history)

    @property
    def step(self) -> int:
        with self._lock:
            return self._history[-1].step if self._history else 0

    def snapshot(self) -> CrystalDiffusion:
        """A copy of the current weights in eval mode (the run goes on training its own copy)."""
        with self._lock:
            model = copy.deepcopy(self.model)
        for parameter in model.parameters():
            parameter.grad = None
            parameter.requires_grad_(False)
        return model.eval()

    # -- the thread ------------------------------------------------------------------------
    def _should_stop(self) -> bool:
        if self._stop.is_set():
            return True
        now = time.monotonic()
        if self.keep_going is not None and now - self._last_asked >= KEEP_GOING_EVERY_S:
            self._last_asked = now
            try:
                alive = bool(self.keep_going())
            except Exception:
                alive = False
            if not alive:
                self._left_session = True
                return True
        return False

    def _record(self, point: LossPoint) -> None:
        with self._lock:
            self._history.append(point)

    def _run(self) -> None:
        torch.set_num_threads(1)  # per thread: the app's other work keeps its threads
        self._last_asked = time.monotonic()
        try:
            reason = train_live(self.model, self.crystals, self.config, self._should_stop, self._record, self._lock)
            self.status = "session ended" if reason == "stopped" and self._left_session else reason
        except Exception as exc:  # reported on the page; the thread must not die silently
            self.status = f"failed: {exc}"
        finally:
            self.model.eval()


def composition_text(crystal: Crystal) -> str:
    """The cell's formula with every count written out, in order of appearance ("Sr1Ti1O3")."""
    counts = Counter(int(z) for z in crystal.atomic_numbers.tolist())
    return "".join(f"{Element.from_Z(z).symbol}{n}" for z, n in counts.items())


@dataclass(frozen=True)
class NoisePrediction:
    """True and predicted noise of one crystal noised to step t (the quantities of the loss).

    lattice_true, lattice_pred: (6,) noise eps of the lattice latent and the model's eps_hat.
    coords_true, coords_pred: (N, 3) normalized wrapped-normal score of the coordinates
        (the regression target of the loss, unit variance) and the model's prediction.
    """

    t: int
    lattice_true: torch.Tensor
    lattice_pred: torch.Tensor
    coords_true: torch.Tensor
    coords_pred: torch.Tensor

    @property
    def lattice_mse(self) -> float:
        return float(((self.lattice_pred - self.lattice_true) ** 2).mean())

    @property
    def coords_mse(self) -> float:
        return float(((self.coords_pred - self.coords_true) ** 2).mean())


@torch.no_grad()
def noise_prediction(model: CrystalDiffusion, crystal: Crystal, t: int, seed: int = 0) -> NoisePrediction:
    """Noise ``crystal`` to step t (1..T) as the loss does, and ask the model for the noise.

    The same seed draws the same eps for every t, so moving t shows one noise draw at
    growing strength. Conditions (property, space group) are left empty.
    """
    if not 1 <= int(t) <= model.num_steps:
        raise ValueError(f"t must be between 1 and {model.num_steps}, got {t}")
    device = model.device
    batch = CrystalBatch.from_crystals([crystal]).to(device)
    generator = torch.Generator(device=device).manual_seed(int(seed))
    tt = torch.full((1,), int(t), dtype=torch.long, device=device)
    graph = CrystalGraph.build(batch.num_atoms, batch.batch)  # one graph for the targets and the prediction
    noised = model.corrupt(batch, tt, generator, graph)   # the same draws and formulas as the loss, at a chosen t
    x_t, eps, frac_t, target = noised.x_t, noised.eps, noised.frac_t, noised.target_score
    scale = model.score_norm[noised.t_atom].sqrt().unsqueeze(-1)
    prop = torch.full((1,), math.nan, device=device) if model.model_config.use_property else None
    space_group = torch.zeros(1, dtype=torch.long, device=device) if model.model_config.use_space_group else None
    prediction = model.predict(batch.atomic_numbers, frac_t, x_t, batch.num_atoms, batch.batch, tt, prop, space_group,
                               graph=graph)
    return NoisePrediction(int(t), eps[0].float().cpu(), prediction.lattice_eps[0].float().cpu(),
                           target.float().cpu(), (prediction.coord_score / scale).float().cpu())
