"""Reverse processes (samplers). Each returns a ``Trajectory``.

Notation as in ``schedules.py``; ``s`` is the step after ``t`` on the (possibly strided)
grid T = t_0 > t_1 > ... > 0. With ``steps == T`` the grid is every step and s = t - 1.

ddpm  Lattice: ancestral DDPM (Ho et al. 2020, Algorithm 2):
          x_s = 1/sqrt(alpha_t) (x_t - beta_t / sqrt(1 - abar_t) eps_hat) + sqrt(beta_t) z,
      written in the equivalent posterior-mean form with x0_hat clipped to the data range
      (the last cosine beta is ~1, so unclipped the first step amplifies eps errors ~30x).
      Coordinates: ancestral step of the variance-exploding wrapped normal
          F_s = w(F_t + (sigma_t^2 - sigma_s^2) score + sqrt((sigma_t^2 - sigma_s^2) sigma_s^2 / sigma_t^2) z).
pc    ddpm preceded by one Langevin corrector step on F at level t (DiffCSP, Algorithm 2):
          F <- w(F + gamma score + sqrt(2 gamma) z),  gamma = step_lr (sigma_t / sigma_1)^2.
ddim  Deterministic: DDIM for the lattice (Song et al. 2021, eta = 0) and the probability-flow
      ODE for the coordinates, F_s = w(F_t + (sigma_t^2 - sigma_s^2) score / 2). Few steps.
Start from a structure (CSP, SDEdit, Meng et al. 2022): instead of the prior at T, the reverse
      process starts at step t0 from a given crystal noised by the forward process
      (x_t0 = sqrt(abar_t0) x_0 + sqrt(1 - abar_t0) eps, F_t0 = w(F_0 + sigma_t0 z)) and runs
      the same strided grid below t0: small t0 keeps the start, t0 = T forgets it.
Types (ab initio): absorbing diffusion; a masked atom is revealed between t and s with
      probability (m_t - m_s) / m_t, m_t = t / T, drawn from the model's p(type | x_t).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Literal

import torch

from .corruption import MASK, NUM_TYPE_CLASSES, wrap
from .crystal import Crystal, CrystalGraph
from .geometry import min_distances, volumes
from .precision import Precision, check_precision, with_precision
from .process import CrystalDiffusion, Prediction
from .step_predictor import StepPredictor
from .trajectory import Trajectory

SamplerName = Literal["ddpm", "pc", "ddim"]
SAMPLERS: tuple[str, ...] = ("ddpm", "pc", "ddim")
ProgressCallback = Callable[[int, int], None]


@dataclass(frozen=True)
class SamplingConfig:
    """How to run the reverse process.

    steps: network-evaluation steps on a strided grid (None = all T steps).
    guidance: classifier-free guidance weight w: eps = (1 + w) eps(c) - w eps(none).
    record: "all" keeps every ``record_stride``-th frame, "final" only the sample.
    trace: replay the network step from a TorchScript trace (same outputs, less overhead).
    precision: "float32", or "bfloat16" for the network's matrix products only (``precision.py``:
        faster on CPUs with AVX512-BF16 and on GPUs; the trajectory differs in the last digits).
    step_lr: the pc corrector's step size; None = the model's own (``ProcessConfig.corrector_step_lr``).
    """

    sampler: SamplerName = "ddpm"
    steps: int | None = None
    guidance: float = 0.0
    step_lr: float | None = None
    record: Literal["all", "final"] = "all"
    record_stride: int = 1
    lattice_clip: float = 5.0
    trace: bool = True
    precision: Precision = "float32"

    def validate(self, num_steps: int) -> None:
        if self.sampler not in SAMPLERS:
            raise ValueError(f"unknown sampler '{self.sampler}'; choose one of {', '.join(SAMPLERS)}")
        if self.steps is not None and not 1 <= self.steps <= num_steps:
            raise ValueError(f"steps must be between 1 and the model's T = {num_steps}, got {self.steps}")
        if not math.isfinite(self.guidance) or not -1.0 <= self.guidance <= 20.0:
            raise ValueError(f"guidance must be a number in [-1, 20], got {self.guidance}")
        if self.step_lr is not None:
            check_step_lr(self.step_lr, "step_lr")
        if self.record_stride < 1:
            raise ValueError("record_stride must be >= 1")
        check_precision(self.precision)


@dataclass(frozen=True)
class SampleRequest:
    """What to generate: one entry per crystal.

    num_atoms: atoms per crystal; atomic_numbers: the composition of each crystal (CSP) or
    None (ab initio); prop: target property in data units (None = unconditional);
    space_group: 1..230 per crystal (None = unconditional); seeds: one per crystal, so a
    crystal's trajectory does not depend on what else is in the batch.
    start, start_step: CSP only: begin at step t0 = start_step from these crystals (atoms in
    the order of atomic_numbers) noised by the forward process, instead of from the prior at T.
    """

    num_atoms: tuple[int, ...]
    seeds: tuple[int, ...]
    atomic_numbers: tuple[tuple[int, ...], ...] | None = None
    prop: tuple[float, ...] | None = None
    space_group: tuple[int, ...] | None = None
    start: tuple[Crystal, ...] | None = None
    start_step: int | None = None


def step_grid(num_steps: int, steps: int | None, start_step: int | None = None) -> list[int]:
    """Descending steps T = t_0 > ... > t_{S-1} >= 1 evenly spread; sampling then ends at 0.

    With start_step t0 < T the grid covers t0..1 with the same stride (steps * t0 / T
    evaluations, at least one)."""
    top = num_steps if start_step is None else int(start_step)
    if steps is not None and top < num_steps:
        steps = max(1, math.ceil(steps * top / num_steps))
    if steps is None or steps >= top:
        return list(range(top, 0, -1))
    grid = torch.linspace(top, 1, steps).round().long().tolist()
    return sorted(set(grid), reverse=True)


def check_step_lr(value: float, what: str = "the corrector step size") -> float:
    """A pc corrector step size must be a number in (0, 1]; returns it as a float."""
    if not (isinstance(value, (int, float)) and math.isfinite(value) and 0.0 < value <= 1.0):
        raise ValueError(f"{what} must be a number in (0, 1], got {value}")
    return float(value)


def resolved_step_lr(model: CrystalDiffusion, config: SamplingConfig) -> float | None:
    """The corrector step size a pc run uses: the config's, else the model's recommended one;
    None for the samplers without a corrector."""
    if config.sampler != "pc":
        return None
    if config.step_lr is not None:
        return check_step_lr(config.step_lr, "step_lr")
    return check_step_lr(model.process.corrector_step_lr, "the model's corrector step size")


class CrystalNoise:
    """Independent random streams per crystal (one ``torch.Generator`` each)."""

    def __init__(self, seeds: tuple[int, ...], num_atoms: list[int], device: torch.device):
        self.generators = [torch.Generator(device=device).manual_seed(int(s)) for s in seeds]
        self.num_atoms, self.device = num_atoms, device

    def lattice(self) -> torch.Tensor:
        return torch.cat([torch.randn(1, 6, generator=g, device=self.device) for g in self.generators])

    def coords(self) -> torch.Tensor:
        return torch.cat([torch.randn(n, 3, generator=g, device=self.device) for g, n in zip(self.generators, self.num_atoms)])

    def uniform_coords(self) -> torch.Tensor:
        return torch.cat([torch.rand(n, 3, generator=g, device=self.device) for g, n in zip(self.generators, self.num_atoms)])

    def uniform_atoms(self) -> torch.Tensor:
        return torch.cat([torch.rand(n, generator=g, device=self.device) for g, n in zip(self.generators, self.num_atoms)])

    def categorical(self, probs: torch.Tensor) -> torch.Tensor:
        """One draw per row of (N, C) probabilities, each crystal from its own stream."""
        out, start = [], 0
        for g, n in zip(self.generators, self.num_atoms):
            out.append(torch.multinomial(probs[start:start + n], 1, generator=g).squeeze(-1))
            start += n
        return torch.cat(out)


class _Recorder:
    """Copies the raw state of each recorded step into storage allocated once for all frames.

    One block per quantity rather than thousands of small tensors kept alive between the step's
    large temporaries: the heap then does not fragment (recording every frame of 256 crystals
    otherwise grew the resident size by ~2 MB per frame for ~60 kB of data). Diagnostics are
    derived for all frames at the end.
    """

    def __init__(self, num_frames: int):
        self.num_frames, self.count = num_frames, 0
        self.buffers: dict[str, torch.Tensor] = {}

    def add(self, **tensors: torch.Tensor) -> None:
        if self.count >= self.num_frames:
            raise RuntimeError("more frames recorded than planned")
        for key, value in tensors.items():
            if key not in self.buffers:
                self.buffers[key] = value.new_empty((self.num_frames, *value.shape))
            self.buffers[key][self.count].copy_(value)
        self.count += 1

    def stacked(self, key: str) -> torch.Tensor:
        return self.buffers[key][: self.count]


def _frame_geometry(model: CrystalDiffusion, latents: torch.Tensor, predicted: torch.Tensor, frac: torch.Tensor,
                    num_atoms: torch.Tensor, max_edges: int = 1 << 16
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Lattices, volumes, minimum distances and predicted lattices of every recorded frame.

    latents, predicted: (F, B, 6) the frame's lattice latent x_t and its x0 estimate; frac: (F, N, 3)
    -> lattices (F, B, 3, 3), volumes (F, B), min distances (F, B), predicted lattices (F, B, 3, 3).
    Frames are treated as F * B crystals, as many frames at a time as fit ``max_edges`` atom
    pairs (each pair is expanded to 27 periodic images: ~1 kB per pair), to bound memory.
    """
    F, B = latents.shape[:2]
    chunk = max(1, max_edges // int((num_atoms ** 2).sum()))
    lattices, pred_lattices, distances = [], [], []
    for start in range(0, F, chunk):
        n = min(chunk, F - start)
        counts = num_atoms.repeat(n)
        lattice = model.lattice_from_latent(latents[start:start + n].reshape(n * B, 6), counts)
        pred_lattices.append(model.lattice_from_latent(predicted[start:start + n].reshape(n * B, 6), counts).view(n, B, 3, 3))
        batch = torch.repeat_interleave(torch.arange(n * B, device=counts.device), counts)
        distances.append(min_distances(frac[start:start + n].reshape(-1, 3), lattice, counts, batch).view(n, B))
        lattices.append(lattice.view(n, B, 3, 3))
    lattice = torch.cat(lattices)
    return lattice, volumes(lattice.reshape(-1, 3, 3)).view(F, B), torch.cat(distances), torch.cat(pred_lattices)


def _guided(predictors: tuple[StepPredictor, StepPredictor | None], types: torch.Tensor, frac: torch.Tensor,
            x: torch.Tensor, t: torch.Tensor, fixed: tuple[torch.Tensor, torch.Tensor], w: float) -> Prediction:
    """Classifier-free guidance: (1 + w) * conditional - w * unconditional, in one doubled batch.

    predictors: for the batch and for the batch doubled (None when there is no guidance);
    fixed: the (conditional, unconditional) time + condition contexts of this step, each (B, H).
    """
    plain, doubled = predictors
    if doubled is None:
        return plain(types, frac, x, t, fixed[0])
    B, n_atoms = x.shape[0], types.shape[0]
    pred = doubled(torch.cat([types, types]), torch.cat([frac, frac]), torch.cat([x, x]), torch.cat([t, t]),
                   torch.cat(fixed))
    mix = lambda v, n: (1 + w) * v[:n] - w * v[n:]
    logits = None if pred.type_logits is None else mix(pred.type_logits, n_atoms)
    return Prediction(mix(pred.lattice_eps, B), mix(pred.coord_score, n_atoms), logits)


def _validate_request(model: CrystalDiffusion, request: SampleRequest) -> None:
    B = len(request.num_atoms)
    if B == 0:
        raise ValueError("nothing to sample: num_atoms is empty")
    if len(request.seeds) != B:
        raise ValueError("give one seed per crystal")
    if any(n < 1 for n in request.num_atoms):
        raise ValueError("every crystal needs at least one atom")
    if model.process.task == "csp":
        if request.atomic_numbers is None:
            raise ValueError("this model predicts structures from a composition: give the atoms of each crystal")
        if [len(a) for a in request.atomic_numbers] != list(request.num_atoms):
            raise ValueError("atomic_numbers and num_atoms disagree")
    elif request.atomic_numbers is not None:
        raise ValueError("this is an ab initio model: it generates the atom types itself; give only the number of atoms")
    if request.prop is not None and not model.model_config.use_property:
        raise ValueError("this model was not trained with a property condition")
    if request.space_group is not None and not model.model_config.use_space_group:
        raise ValueError("this model was not trained with a space-group condition")
    if request.start is not None:
        if model.process.task != "csp":
            raise ValueError("starting from a structure needs a crystal-structure-prediction (csp) model")
        if len(request.start) != B:
            raise ValueError("give one start structure per crystal")
        if [tuple(c.atomic_numbers.tolist()) for c in request.start] != [tuple(a) for a in request.atomic_numbers]:
            raise ValueError("each start structure must have the crystal's atoms in the order of atomic_numbers")
        if request.start_step is None or not 1 <= request.start_step <= model.num_steps:
            raise ValueError(f"start_step must be between 1 and the model's T = {model.num_steps}, "
                             f"got {request.start_step}")
    elif request.start_step is not None:
        raise ValueError("start_step needs start structures")


@torch.inference_mode()
def sample(model: CrystalDiffusion, request: SampleRequest, config: SamplingConfig = SamplingConfig(),
           progress: ProgressCallback | None = None) -> Trajectory:
    """Run the reverse process for every crystal of the request on the model's device."""
    config.validate(model.num_steps)
    _validate_request(model, request)
    model = with_precision(model, config.precision)
    device = model.device
    counts = list(request.num_atoms)
    num_atoms = torch.tensor(counts, device=device)
    B = len(counts)
    batch = torch.repeat_interleave(torch.arange(B, device=device), num_atoms)
    noise = CrystalNoise(request.seeds, counts, device)
    prop = None
    if request.prop is not None:
        prop = model.normalize_property(torch.tensor(request.prop, dtype=torch.float32, device=device))
    space_group = None if request.space_group is None else torch.tensor(request.space_group, device=device)

    gen = model.process.task == "gen"
    if gen:
        types = torch.full((int(num_atoms.sum()),), MASK, dtype=torch.long, device=device)
        allowed = torch.zeros(NUM_TYPE_CLASSES, dtype=torch.bool, device=device)
        allowed[list(model.normalization.elements) or list(range(1, NUM_TYPE_CLASSES))] = True
    else:
        types = torch.tensor([z for atoms in request.atomic_numbers for z in atoms], dtype=torch.long, device=device)
    if request.start is None:
        # prior: lattice latent N(0, I), coordinates uniform on the torus, types all masked
        x = noise.lattice()
        frac = noise.uniform_coords()
    else:
        # the given structures noised to t0 by the forward processes
        t0 = int(request.start_step)
        x0 = model.lattice_latent(torch.stack([c.lattice for c in request.start]).to(device), num_atoms)
        x = math.sqrt(model.abar[t0].item()) * x0 + math.sqrt(1 - model.abar[t0].item()) * noise.lattice()
        start_frac = torch.cat([c.frac_coords for c in request.start]).to(device, torch.float32)
        frac = wrap(start_frac + model.sigma[t0].item() * noise.coords())

    grid = step_grid(model.num_steps, config.steps, request.start_step)
    pairs = list(zip(grid, grid[1:] + [0]))
    total = len(pairs)
    recorded = len(range(0, total, config.record_stride)) if config.record == "all" else 0
    recorder = _Recorder(recorded + 1)  # + the final state
    # every per-step constant computed once: Python floats for the schedule, one batched
    # time-MLP call for the whole grid, the graph's index tensors (the loop then runs only
    # the message passing and the update)
    sigma, abar = model.sigma.tolist(), model.abar.tolist()
    sigma_1 = sigma[1]
    step_lr = resolved_step_lr(model, config)
    grid_t = torch.tensor(grid, device=device)
    time_table = model.denoiser.time_context(grid_t)  # (S, H)
    conditions = model.condition_context(num_atoms, prop, space_group)  # (B, H)
    unconditional = model.condition_context(
        num_atoms, None if prop is None else torch.full_like(prop, math.nan),
        None if space_group is None else torch.zeros_like(space_group))
    guided = config.guidance != 0.0 and (prop is not None or space_group is not None)
    predictors = (StepPredictor(model, CrystalGraph.build(num_atoms, batch), config.trace),
                  StepPredictor(model, CrystalGraph.build(torch.cat([num_atoms, num_atoms])), config.trace) if guided else None)
    recorded_steps: list[int] = []
    for i, (t, s) in enumerate(pairs):
        tt = grid_t[i].expand(B)
        fixed = (time_table[i] + conditions, time_table[i] + unconditional)
        sigma_t, sigma_s, abar_t, abar_s = sigma[t], sigma[s], abar[t], abar[s]
        if config.sampler == "pc":
            pred = _guided(predictors, types, frac, x, tt, fixed, config.guidance)
            gamma = step_lr * (sigma_t / sigma_1) ** 2
            frac = wrap(frac + gamma * pred.coord_score + math.sqrt(2 * gamma) * noise.coords())
        pred = _guided(predictors, types, frac, x, tt, fixed, config.guidance)

        x0 = ((x - math.sqrt(1 - abar_t) * pred.lattice_eps) / math.sqrt(abar_t)).clamp(-config.lattice_clip,
                                                                                        config.lattice_clip)
        d2 = sigma_t ** 2 - sigma_s ** 2
        probs = None
        if gen:
            logits = pred.type_logits.masked_fill(~allowed, float("-inf"))
            probs = torch.softmax(logits, -1)
        if config.record == "all" and i % config.record_stride == 0:
            # raw state only; norms and Tweedie estimates are derived for all frames at once after the loop
            recorded_steps.append(t)
            recorder.add(x=x, frac=frac, types=types, probs=probs if gen else torch.zeros(0, device=device),
                         x0=x0, score=pred.coord_score, eps=pred.lattice_eps)

        if config.sampler == "ddim":
            eps = (x - math.sqrt(abar_t) * x0) / math.sqrt(1 - abar_t)
            x = math.sqrt(abar_s) * x0 + math.sqrt(1 - abar_s) * eps
            frac = wrap(frac + 0.5 * d2 * pred.coord_score)
        else:
            alpha_ts = abar_t / abar_s
            beta_ts = 1 - alpha_ts
            mean = (math.sqrt(abar_s) * beta_ts / (1 - abar_t)) * x0 + (math.sqrt(alpha_ts) * (1 - abar_s) / (1 - abar_t)) * x
            x = mean + math.sqrt(beta_ts) * noise.lattice() if s > 0 else mean
            frac = wrap(frac + d2 * pred.coord_score + math.sqrt(d2 * sigma_s ** 2 / sigma_t ** 2) * noise.coords())
        if gen:
            reveal = noise.uniform_atoms() < (t - s) / t
            drawn = noise.categorical(probs)
            types = torch.where((types == MASK) & reveal, drawn, types)
        if progress is not None:
            progress(i + 1, total)

    final_probs = torch.nn.functional.one_hot(types, NUM_TYPE_CLASSES).float() if gen else torch.zeros(0, device=device)
    recorder.add(x=x, frac=frac, types=types, probs=final_probs, x0=x, score=torch.zeros_like(frac),
                 eps=torch.full_like(x, math.nan))
    recorded_steps.append(0)
    steps = torch.tensor(recorded_steps, device=device)
    frac_frames, score_frames = recorder.stacked("frac"), recorder.stacked("score")
    lattice, volume, min_dist, pred_lattice = _frame_geometry(model, recorder.stacked("x"), recorder.stacked("x0"),
                                                              frac_frames, num_atoms)
    # Tweedie's estimate of F_0 per frame: F_t + sigma_t^2 score (the final frame has sigma_0 = 0)
    sigma_frames = model.sigma[steps].view(-1, 1, 1)
    pred_frac = wrap(frac_frames + sigma_frames ** 2 * score_frames)
    score_norm = _rms_per_crystal(score_frames * model.score_norm[steps].rsqrt().view(-1, 1, 1), batch, B)
    score_norm[-1] = math.nan
    return Trajectory(
        timesteps=steps.cpu(), num_atoms=num_atoms.cpu(),
        lattice=lattice.cpu(), frac_coords=frac_frames.cpu(), types=recorder.stacked("types").cpu(),
        type_probs=recorder.stacked("probs").cpu() if gen else None,
        pred_lattice=pred_lattice.cpu(), pred_frac_coords=pred_frac.cpu(),
        lattice_noise_norm=recorder.stacked("eps").norm(dim=-1).cpu(), coord_score_norm=score_norm.cpu(),
        min_distance=min_dist.cpu(), volume=volume.cpu(),
        sampler=config.sampler, seed=int(request.seeds[0]),
    )


def _rms_per_crystal(values: torch.Tensor, batch: torch.Tensor, B: int) -> torch.Tensor:
    """(F, N, 3) -> (F, B) root-mean-square over each crystal's atoms and axes, per frame."""
    sq = values.new_zeros(values.shape[0], B).index_add_(1, batch, values.pow(2).sum(-1))
    count = torch.bincount(batch, minlength=B).clamp(min=1) * 3
    return (sq / count).sqrt()
