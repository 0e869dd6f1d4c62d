"""The network evaluation inside a sampling loop, traced once per batch shape (``NetworkEvaluator``).

A sampler calls ``model.predict`` hundreds of times on tensors of identical shapes. In eager
mode most of a small crystal's step is Python and dispatcher overhead (module calls, argument
handling), not arithmetic. ``torch.jit.trace`` records the step's tensor operations once and
replays them without the Python layer: the same operations on the same parameters, so the
outputs are identical (checked in tests/test_network_evaluator.py), ~30% less time per step on CPU.

Traces share the model's parameters (they are not frozen), so a model that keeps training
(the Train page) is always evaluated with its current weights. They are kept on the model
object, keyed by everything that shapes the recorded graph, so the app's repeated samples of
the same sizes do not trace again.
"""
from __future__ import annotations

import warnings
from collections import OrderedDict

import torch
from torch import nn

from ..crystal import CrystalGraph
from ..crystal_diffusion import TRACE_CACHE_ATTRIBUTE, CrystalDiffusion, Prediction
from .graph_replay import ReplayedStep

MAX_CACHED_TRACES = 16
DEFAULT_MAX_EDGES = 8192
# The TorchScript interpreter keeps more intermediates alive than eager mode (~300 MB more for
# 256 perovskites); above this many edges a CPU step is arithmetic-bound and tracing gains nothing.
MAX_TRACED_EDGES = 4096


def default_max_edges(device: torch.device) -> int | None:
    """Atom pairs per network chunk: cache-sized chunks on a CPU; none on a GPU, where one large launch is what
    keeps it busy and its memory holds a whole batch (a chunk there would only add launches)."""
    return None if device.type == "cuda" else DEFAULT_MAX_EDGES


def traced_edges_limit(device: torch.device) -> int | None:
    """Largest graph that is traced (None: any): the CPU limit is about host memory, a GPU step is launch-bound."""
    return None if device.type == "cuda" else MAX_TRACED_EDGES


class _PredictWithGraph(nn.Module):
    """``model.predict`` with plain tensor arguments (what ``torch.jit.trace`` records)."""

    def __init__(self, model: CrystalDiffusion):
        super().__init__()
        self.model = model

    def forward(self, types, frac, x, t, fixed, num_atoms, batch, src, dst, inv_degree, inv_size):
        graph = CrystalGraph(num_atoms, batch, src, dst, inv_degree, inv_size)
        pred = self.model.predict(types, frac, x, num_atoms, batch, t, None, None, fixed, graph)
        logits = pred.type_logits if pred.type_logits is not None else frac.new_zeros(0)
        return pred.lattice_eps, pred.coord_score, logits


class _GraphStep:
    """``model.predict`` at one fixed graph, replayed from a (cached) trace when possible, and on a GPU from a
    (cached) CUDA graph of that trace (``graph_replay.py``)."""

    def __init__(self, model: CrystalDiffusion, graph: CrystalGraph, trace: bool, replay: bool = False):
        self.model, self.graph = model, graph
        self.traced = self._cached_trace() if trace else None
        self.replayed = self._cached_replay() if replay and self.traced is not None else None

    def _shapes(self) -> tuple:
        """What a recorded step depends on besides the weights: the cache key of its trace (and, after "replay",
        of its CUDA graph)."""
        g, model = self.graph, self.model
        return str(model.device), model.abar.dtype, tuple(g.src.shape), tuple(g.batch.shape), tuple(g.num_atoms.shape)

    def _cache(self) -> OrderedDict:
        return self.model.__dict__.setdefault(TRACE_CACHE_ATTRIBUTE, OrderedDict())

    def _keep(self, key: tuple, value):
        """Store ``value`` as the most recently used entry, dropping the least recently used beyond the limit."""
        cache = self._cache()
        cache[key] = value
        cache.move_to_end(key)
        while len(cache) > MAX_CACHED_TRACES:
            cache.popitem(last=False)
        return value

    def _cached_replay(self) -> ReplayedStep:
        key = ("replay",) + self._shapes()
        step = self._cache().get(key)
        # a cached recording holds the graph tensors it was made with; another graph of the same shapes
        # (other atom counts per crystal) needs its own
        if step is None or any(not torch.equal(a, b) for a, b in zip(step.constants, self._graph_tensors())):
            step = ReplayedStep(self.traced, self._graph_tensors())
        return self._keep(key, step)

    def _graph_tensors(self) -> tuple[torch.Tensor, ...]:
        g = self.graph
        return g.num_atoms, g.batch, g.src, g.dst, g.inv_degree, g.inv_size

    def _cached_trace(self):
        key, cache = self._shapes(), self._cache()
        if key in cache:
            cache.move_to_end(key)
            return cache[key]
        try:
            traced = self._trace()
        except Exception as error:  # an exotic op or device: eager is always correct
            warnings.warn(f"tracing the sampling step failed, using eager mode: {error}")
            return None
        return self._keep(key, traced)

    def _trace(self):
        model, g = self.model, self.graph
        B, N, device = g.num_crystals, g.batch.shape[0], model.device
        example = (torch.ones(N, dtype=torch.long, device=device), torch.rand(N, 3, device=device),
                   torch.zeros(B, 6, device=device), torch.ones(B, dtype=torch.long, device=device),
                   torch.zeros(B, model.model_config.hidden, device=device, dtype=model.denoiser.dtype))
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # TracerWarnings about shape-derived Python ints: shapes are in the key
            return torch.jit.trace(_PredictWithGraph(model), example + self._graph_tensors(), check_trace=False)

    def __call__(self, types, frac, x, t, fixed) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        if self.traced is None:
            g = self.graph
            pred = self.model.predict(types, frac, x, g.num_atoms, g.batch, t, None, None, fixed, g)
            return pred.lattice_eps, pred.coord_score, pred.type_logits
        # always without autograd: the TorchScript executor specializes its plan on the grad mode
        # of the first calls, and a plan that saves tensors for backward fails on inference tensors
        with torch.no_grad():
            if self.replayed is not None:
                eps, score, logits = self.replayed(types, frac, x, t, fixed)
            else:
                eps, score, logits = self.traced(types, frac, x, t, fixed, *self._graph_tensors())
        return eps, score, logits if self.model.model_config.predict_types else None


class NetworkEvaluator:
    """Evaluates the model at a fixed batch: ``evaluate(types, frac, x, t, fixed) -> Prediction``.

    fixed: (B, H) the precomputed time + condition context of the step (conditions enter only
    through it); only graphs of at most ``MAX_TRACED_EDGES`` edges are traced. Batches with
    more than ``max_edges`` edges are evaluated in consecutive chunks
    of whole crystals: the per-edge tensors of each chunk stay in cache, where a 256-crystal
    batch of 20-atom cells (100k edges, ~100 MB per tensor) would stream through memory; the
    crystals do not interact, so the result is the same. With ``trace=False`` (or if tracing
    fails) each chunk is plain ``model.predict``.
    """

    def __init__(self, model: CrystalDiffusion, graph: CrystalGraph, trace: bool = True,
                 max_edges: int | None = DEFAULT_MAX_EDGES, replay: bool = False):
        self.model = model
        counts = graph.num_atoms.tolist()
        max_edges = max_edges if max_edges is not None else sum(n * n for n in counts)
        traced_limit = traced_edges_limit(model.device)
        self.chunks: list[tuple[slice, slice, _GraphStep]] = []
        start = atom_start = 0
        while start < len(counts):
            stop, edges = start, 0
            while stop < len(counts) and (stop == start or edges + counts[stop] ** 2 <= max_edges):
                edges += counts[stop] ** 2
                stop += 1
            n_atoms = sum(counts[start:stop])
            whole = start == 0 and stop == len(counts)
            sub = graph if whole else CrystalGraph.build(graph.num_atoms[start:stop])
            step = _GraphStep(model, sub, trace and (traced_limit is None or edges <= traced_limit), replay)
            self.chunks.append((slice(start, stop), slice(atom_start, atom_start + n_atoms), step))
            start, atom_start = stop, atom_start + n_atoms

    @property
    def traced(self) -> bool:
        return all(step.traced is not None for _, _, step in self.chunks)

    def __call__(self, types: torch.Tensor, frac: torch.Tensor, x: torch.Tensor, t: torch.Tensor,
                 fixed: torch.Tensor) -> Prediction:
        if len(self.chunks) == 1:
            return Prediction(*self.chunks[0][2](types, frac, x, t, fixed))
        parts = [step(types[atoms], frac[atoms], x[crystals], t[crystals], fixed[crystals])
                 for crystals, atoms, step in self.chunks]
        eps, score, logits = (list(p) for p in zip(*parts))
        return Prediction(torch.cat(eps), torch.cat(score), None if logits[0] is None else torch.cat(logits))
