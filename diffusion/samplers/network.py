"""The denoiser as the sampling loop calls it: ``network(i, state) -> Prediction`` at grid index i.

Everything here wraps the one network evaluation and none of it changes the math a sampler does:

- precision: bfloat16 matrix products on a copy of the model (``precision.py``);
- contexts: the time embedding of every grid step and the condition embedding, computed once
  (the loop then runs only the message passing);
- tracing and chunking: ``NetworkEvaluator`` replays a TorchScript trace, a few crystals at a time;
- classifier-free guidance: eps = (1 + w) eps(c) - w eps(none), in one doubled batch.
"""
from __future__ import annotations

import math

import torch

from ..crystal import CrystalGraph
from ..precision import with_precision
from ..crystal_diffusion import CrystalDiffusion, Prediction
from .base import SamplerState
from .evaluator import NetworkEvaluator, default_max_edges


class SamplingNetwork:
    """The model at a fixed batch and step grid.

    num_atoms: (B,); batch: (N,) crystal of each atom; grid: the sampler's steps, descending;
    prop: (B,) normalized property or None; space_group: (B,) or None; guidance: w (used only
    when there is a condition to guide with); trace: replay a TorchScript trace of the step; replay: on a GPU,
    replay that trace from a CUDA graph (``graph_replay.py``).
    """

    def __init__(self, model: CrystalDiffusion, num_atoms: torch.Tensor, batch: torch.Tensor, grid: list[int],
                 prop: torch.Tensor | None, space_group: torch.Tensor | None, guidance: float = 0.0,
                 trace: bool = True, precision: str = "float32", replay: bool = False):
        model = with_precision(model, precision)
        self.grid_t = torch.tensor(grid, device=model.device)
        self.time_table = model.denoiser.time_context(self.grid_t)  # (S, H)
        self.conditions = model.condition_context(num_atoms, prop, space_group)  # (B, H)
        self.num_crystals, self.guidance = int(num_atoms.shape[0]), float(guidance)
        chunk = default_max_edges(model.device)
        self.evaluate = NetworkEvaluator(model, CrystalGraph.build(num_atoms, batch), trace, chunk, replay)
        self.evaluate_doubled = None
        if self.guidance != 0.0 and (prop is not None or space_group is not None):
            # "no condition" is a NaN property and space group 0, as the model was trained with dropped conditions
            self.unconditional = model.condition_context(
                num_atoms, None if prop is None else torch.full_like(prop, math.nan),
                None if space_group is None else torch.zeros_like(space_group))
            self.evaluate_doubled = NetworkEvaluator(model, CrystalGraph.build(torch.cat([num_atoms, num_atoms])), trace,
                                                     chunk, replay)

    def __call__(self, i: int, state: SamplerState) -> Prediction:
        """The (guided) prediction at grid step i for the state's types (N,), frac (N, 3) and x (B, 6)."""
        t = self.grid_t[i].expand(self.num_crystals)
        context = self.time_table[i] + self.conditions
        if self.evaluate_doubled is None:
            return self.evaluate(state.types, state.frac, state.x, t, context)
        return self._guided(state, t, context, self.time_table[i] + self.unconditional)

    def _guided(self, state: SamplerState, t: torch.Tensor, context: torch.Tensor,
                unconditional: torch.Tensor) -> Prediction:
        """(1 + w) conditional - w unconditional for every output, both halves in one batch."""
        B, N, w = self.num_crystals, state.types.shape[0], self.guidance
        pair = lambda v: torch.cat([v, v])
        pred = self.evaluate_doubled(pair(state.types), pair(state.frac), pair(state.x), pair(t),
                                     torch.cat([context, unconditional]))
        mix = lambda v, n: (1 + w) * v[:n] - w * v[n:]
        logits = None if pred.type_logits is None else mix(pred.type_logits, N)
        return Prediction(mix(pred.lattice_eps, B), mix(pred.coord_score, N), logits)
