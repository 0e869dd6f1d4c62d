"""The GPU path, tested as far as a machine without a GPU allows: the replay protocol of
``samplers/graph_replay.py`` with a stand-in for the CUDA graph, and the CUDA chunking and tracing policy."""
from __future__ import annotations

import warnings

import pytest
import torch

from diffusion.crystal import CrystalGraph
from diffusion.samplers.evaluator import (DEFAULT_MAX_EDGES, MAX_TRACED_EDGES, NetworkEvaluator, default_max_edges,
                                          traced_edges_limit)
from diffusion.samplers.graph_replay import ReplayedStep
from diffusion.sampling import SamplingConfig, sample
from diffusion.placement import build_request


class StandInRecorder:
    """Behaves like a CUDA graph as far as the caller can tell: the outputs live in fixed buffers that each
    replay overwrites from the fixed inputs (the replay runs the function on the CPU)."""

    def __init__(self):
        self.recordings = 0
        self.replays = 0

    def record(self, step, static_inputs):
        self.recordings += 1
        outputs = tuple(o.clone() for o in step(*static_inputs))

        def replay():
            self.replays += 1
            for buffer, value in zip(outputs, step(*static_inputs)):
                buffer.copy_(value)

        return replay, outputs


def _step(a, b, scale):
    return a * scale + b, (a - b).sum(0, keepdim=True)


def test_a_replayed_step_gives_what_the_step_gives_call_after_call():
    recorder = StandInRecorder()
    scale = torch.tensor(3.0)
    replayed = ReplayedStep(_step, constants=(scale,), recorder=recorder)
    kept = []
    for seed in range(4):
        g = torch.Generator().manual_seed(seed)
        a, b = torch.randn(5, 3, generator=g), torch.randn(5, 3, generator=g)
        got = replayed(a, b)
        want = _step(a, b, scale)
        assert all(torch.equal(x, y) for x, y in zip(got, want))
        kept.append((got, want))
    # recorded once; earlier results are copies, not the buffers the next replay overwrote
    assert recorder.recordings == 1 and recorder.replays == 4
    assert all(torch.equal(x, y) for got, want in kept for x, y in zip(got, want))


def test_a_replayed_step_refuses_other_shapes():
    replayed = ReplayedStep(_step, constants=(torch.tensor(1.0),), recorder=StandInRecorder())
    replayed(torch.zeros(5, 3), torch.zeros(5, 3))
    with pytest.raises(ValueError, match="shapes"):
        replayed(torch.zeros(6, 3), torch.zeros(6, 3))


def test_a_step_that_cannot_be_recorded_runs_as_it_is():
    class Refuses:
        def record(self, step, static_inputs):
            raise RuntimeError("operation not permitted when stream is capturing")

    replayed = ReplayedStep(_step, constants=(torch.tensor(2.0),), recorder=Refuses())
    a, b = torch.randn(4, 3), torch.randn(4, 3)
    with pytest.warns(UserWarning, match="step by step"):
        got = replayed(a, b)
    assert replayed.failed and not replayed.recorded
    assert all(torch.equal(x, y) for x, y in zip(got, _step(a, b, torch.tensor(2.0))))
    with warnings.catch_warnings():
        warnings.simplefilter("error")   # one warning, not one per step
        replayed(a, b)


def test_the_traced_network_step_replays_to_the_same_prediction(tiny_csp):
    # the real traced denoiser through the replay protocol, on the CPU
    from diffusion.samplers.evaluator import _GraphStep

    graph = CrystalGraph.build(torch.tensor([5, 3]))
    plain = _GraphStep(tiny_csp, graph, trace=True)
    recorder = StandInRecorder()
    replayed = ReplayedStep(plain.traced, plain._graph_tensors(), recorder=recorder)
    H = tiny_csp.model_config.hidden
    for seed in range(3):
        g = torch.Generator().manual_seed(seed)
        inputs = (torch.tensor([38, 22, 8, 8, 8, 11, 17, 17]), torch.rand(8, 3, generator=g),
                  torch.randn(2, 6, generator=g), torch.tensor([10 * seed + 1, 7]), torch.randn(2, H, generator=g))
        with torch.no_grad():
            want = plain(*inputs)
            got = replayed(*inputs)
        assert torch.equal(got[0], want[0]) and torch.equal(got[1], want[1])
    assert recorder.recordings == 1


def test_a_gpu_gets_one_chunk_and_every_graph_traced():
    cuda, cpu = torch.device("cuda"), torch.device("cpu")
    assert default_max_edges(cpu) == DEFAULT_MAX_EDGES and traced_edges_limit(cpu) == MAX_TRACED_EDGES
    assert default_max_edges(cuda) is None and traced_edges_limit(cuda) is None


def test_without_a_chunk_limit_a_large_batch_is_one_chunk(tiny_csp):
    counts = torch.tensor([20] * 40)   # 16,000 atom pairs: two chunks on a CPU
    graph = CrystalGraph.build(counts)
    assert len(NetworkEvaluator(tiny_csp, graph, trace=False).chunks) == 2
    one = NetworkEvaluator(tiny_csp, graph, trace=False, max_edges=None)
    assert len(one.chunks) == 1


def test_cuda_graphs_setting_leaves_cpu_sampling_alone(tiny_csp):
    request = build_request([0, 1], atoms=[[38, 22, 8, 8, 8], [11, 17]])
    on = sample(tiny_csp, request, SamplingConfig(sampler="ddim", steps=10, cuda_graphs=True))
    off = sample(tiny_csp, request, SamplingConfig(sampler="ddim", steps=10, cuda_graphs=False))
    assert torch.equal(on.frac_coords, off.frac_coords) and torch.equal(on.lattice, off.lattice)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_cuda_replay_matches_the_trace_on_a_gpu(tiny_csp):
    model = tiny_csp.to("cuda")
    try:
        request = build_request([0, 1], atoms=[[38, 22, 8, 8, 8], [11, 17]])
        replayed = sample(model, request, SamplingConfig(sampler="ddim", steps=20))
        traced = sample(model, request, SamplingConfig(sampler="ddim", steps=20, cuda_graphs=False))
        assert torch.allclose(replayed.frac_coords, traced.frac_coords, atol=1e-5)
    finally:
        tiny_csp.to("cpu")
