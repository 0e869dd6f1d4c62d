"""The sampling loop: from noise (or a noised crystal) to crystals, for any sampler. Returns a ``Trajectory``.

One loop for every reverse process of ``diffusion/samplers/``:

    network call (precision, trace, chunks, guidance: samplers/network.py)
      -> sampler.step(state, t, s, out, noise)   (samplers/ddpm.py, ddim.py, pc.py)
      -> symmetry constraints, when the request has them (samplers/constraints.py)
      -> record the state, the x0 estimate and the coefficients used

t runs down the sampler's grid T = t_0 > t_1 > ... > 0 and s is the step after t (s = t - 1
when every step is run). A sampler with a corrector (pc) first moves the state at level t
with its own network evaluations. Start from a structure (CSP; SDEdit, Meng et al. 2022):
instead of the prior at T, the loop starts at t0 from the given crystals noised by the forward
process and runs the same strided grid below t0: small t0 keeps the start, t0 = T forgets it.
"""
from __future__ import annotations

from typing import Callable

import torch

from .corruption import MASK, NUM_TYPE_CLASSES, q_sample, q_sample_coords
from .crystal_diffusion import CrystalDiffusion
from .samplers import (SAMPLERS, CrystalNoise, SamplerName, SampleRequest, SamplerState, SamplingConfig,
                       ScheduleValues, check_step_lr, make_sampler, resolved_step_lr, step_grid)
from .samplers.config import validate_request
from .samplers.constraints import BatchedSymmetry, project_state
from .samplers.network import SamplingNetwork
from .samplers.recording import Recorder
from .trajectory import Trajectory

ProgressCallback = Callable[[int, int], None]
__all__ = ["SAMPLERS", "CrystalNoise", "ProgressCallback", "SampleRequest", "SamplerName", "SamplingConfig",
           "check_step_lr", "resolved_step_lr", "sample", "step_grid"]


@torch.inference_mode()
def sample(model: CrystalDiffusion, request: SampleRequest, config: SamplingConfig = SamplingConfig(),
           progress: ProgressCallback | None = None) -> Trajectory:
    """Run the reverse process for every crystal of the request on the model's device."""
    config.validate(model.num_steps)
    validate_request(model, request)
    device = model.device
    num_atoms = torch.tensor(request.num_atoms, device=device)
    batch = torch.repeat_interleave(torch.arange(len(request.num_atoms), device=device), num_atoms)
    noise = CrystalNoise(request.seeds, list(request.num_atoms), device)
    types, allowed_types = _atom_types(model, request, device)
    sampler = make_sampler(config.sampler, ScheduleValues.of(model), config.lattice_clip, allowed_types,
                           resolved_step_lr(model, config))
    grid = sampler.grid(model.num_steps, config.steps, request.start_step)
    network = SamplingNetwork(model, num_atoms, batch, grid, *_conditions(model, request), config.guidance,
                              config.trace, config.precision, replay=config.cuda_graphs and device.type == "cuda")
    state = _start(model, request, num_atoms, types, noise)
    symmetry = None
    if request.symmetry is not None:
        # every state the network sees and every recorded frame is in the group: the start too
        symmetry = BatchedSymmetry.of(request.symmetry, request.num_atoms, model.normalization.lattice, device)
        state = project_state(state, symmetry)

    pairs = list(zip(grid, grid[1:] + [0]))
    recorded = len(range(0, len(pairs), config.record_stride)) if config.record == "all" else 0
    recorder = Recorder(recorded + 1, ab_initio=allowed_types is not None)  # + the final state
    used = []
    for i, (t, s) in enumerate(pairs):
        for _ in range(sampler.corrector_steps):
            state = sampler.correct(state, t, s, network(i, state), noise)
            if symmetry is not None:
                state = project_state(state, symmetry)
        out = network(i, state)
        result = sampler.step(state, t, s, out, noise)
        if config.record == "all" and i % config.record_stride == 0:
            recorder.add_step(t, state, result.x0, out)
        used.append(result.coefficients)
        state = result.state if symmetry is None else project_state(result.state, symmetry)
        if progress is not None:
            progress(i + 1, len(pairs))
    recorder.add_final(state)
    return recorder.trajectory(model, num_atoms, batch, sampler.name, request.seeds[0], tuple(used))


def _atom_types(model: CrystalDiffusion, request: SampleRequest, device: torch.device
                ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(N,) the types at the start, and the (101,) elements an ab initio model may reveal (None for CSP)."""
    if model.process.task != "gen":
        return torch.tensor([z for atoms in request.atomic_numbers for z in atoms], dtype=torch.long, device=device), None
    allowed = torch.zeros(NUM_TYPE_CLASSES, dtype=torch.bool, device=device)
    allowed[list(model.normalization.elements) or list(range(1, NUM_TYPE_CLASSES))] = True
    return torch.full((sum(request.num_atoms),), MASK, dtype=torch.long, device=device), allowed


def _conditions(model: CrystalDiffusion, request: SampleRequest) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """(B,) normalized property and (B,) space group, each None when not asked for."""
    prop = None
    if request.prop is not None:
        prop = model.normalize_property(torch.tensor(request.prop, dtype=torch.float32, device=model.device))
    space_group = None if request.space_group is None else torch.tensor(request.space_group, device=model.device)
    return prop, space_group


def _start(model: CrystalDiffusion, request: SampleRequest, num_atoms: torch.Tensor, types: torch.Tensor,
           noise: CrystalNoise) -> SamplerState:
    """The state the loop starts from: the prior at T, or the request's crystals noised to t0."""
    if request.start is None:
        # the prior: lattice latent N(0, I), coordinates uniform on the torus (types: given, or all masked)
        return SamplerState(noise.lattice(), noise.uniform_coords(), types)
    device, t0 = model.device, int(request.start_step)
    x0 = model.lattice_latent(torch.stack([c.lattice for c in request.start]).to(device), num_atoms)
    x = q_sample(x0, torch.full_like(num_atoms, t0), noise.lattice(), model.abar)
    frac0 = torch.cat([c.frac_coords for c in request.start]).to(device, torch.float32)
    frac = q_sample_coords(frac0, model.sigma[t0], noise.coords())
    return SamplerState(x, frac, types)
