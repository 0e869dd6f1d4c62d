"""What to sample and how: the request and the config, checked at the boundary with clear errors."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from ..crystal import Crystal
from ..precision import Precision, check_precision
from ..tolerances import NO_SPACE_GROUP_CONDITION
from ..crystal_diffusion import CrystalDiffusion
from .constraints import SymmetryConstraint

SamplerName = Literal["ddpm", "pc", "ddim"]
SAMPLERS: tuple[str, ...] = ("ddpm", "pc", "ddim")


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
    lattice_clip: bound on |x0_hat| in the normalized lattice latent (the data lie within a few units).
    cuda_graphs: on a GPU, replay each traced network step from a CUDA graph (one launch instead of hundreds;
        ``graph_replay.py``); ignored on a CPU.
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
    cuda_graphs: bool = True

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
    symmetry: CSP only: one ``SymmetryConstraint`` (or None: free) per crystal; every frame of a
    constrained crystal is projected into its space group and Wyckoff positions (atoms in the
    constraint's order; ``diffusion/wyckoff.py`` builds them). None = no projection at all.
    """

    num_atoms: tuple[int, ...]
    seeds: tuple[int, ...]
    atomic_numbers: tuple[tuple[int, ...], ...] | None = None
    prop: tuple[float, ...] | None = None
    space_group: tuple[int, ...] | None = None
    start: tuple[Crystal, ...] | None = None
    start_step: int | None = None
    symmetry: tuple[SymmetryConstraint | None, ...] | None = None


# the SampleRequest fields that hold one entry per crystal (merging or splitting a request goes through these)
PER_CRYSTAL_FIELDS = ("num_atoms", "seeds", "atomic_numbers", "prop", "space_group", "start", "symmetry")


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


def validate_request(model: CrystalDiffusion, request: SampleRequest) -> None:
    """ValueError saying what to change unless the request fits the model."""
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
        raise ValueError(NO_SPACE_GROUP_CONDITION)
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
    if request.symmetry is not None:
        _validate_symmetry(model, request)


def _validate_symmetry(model: CrystalDiffusion, request: SampleRequest) -> None:
    if model.process.task != "csp":
        raise ValueError("symmetry constraints need a structure-prediction (csp) model: an orbit's atoms must "
                         "share one element")
    if len(request.symmetry) != len(request.num_atoms):
        raise ValueError("give one symmetry constraint (or None) per crystal")
    if all(c is None for c in request.symmetry):
        raise ValueError("symmetry holds no constraint; leave it None")
    for i, constraint in enumerate(request.symmetry):
        if constraint is None:
            continue
        if tuple(constraint.atomic_numbers.tolist()) != tuple(request.atomic_numbers[i]):
            raise ValueError(f"crystal {i}: give the atoms in the symmetry constraint's order "
                             f"({constraint.atomic_numbers.tolist()}), got {list(request.atomic_numbers[i])}")
        asked = request.space_group[i] if request.space_group is not None else 0
        if asked and asked != constraint.space_group:
            raise ValueError(f"crystal {i}: conditioned on space group {asked} but constrained to "
                             f"{constraint.space_group}")
