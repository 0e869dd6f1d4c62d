"""The traced sampling step computes exactly what the eager model computes, with current weights."""
import copy

import pytest
import torch

from diffusion.crystal import CrystalGraph, fully_connected_edges
from diffusion.sampling import SampleRequest, SamplingConfig, sample
from diffusion.crystal_diffusion import TRACE_CACHE_ATTRIBUTE
from diffusion.samplers.evaluator import NetworkEvaluator

PEROVSKITES = ((38, 22, 8, 8, 8), (56, 22, 8, 8, 8), (11, 17))


def _close(a, b) -> bool:
    return a.shape == b.shape and torch.allclose(a, b, atol=1e-5, equal_nan=True)


def _assert_same_trajectory(a, b):
    for name in ("timesteps", "types", "lattice", "frac_coords", "pred_lattice", "pred_frac_coords",
                 "lattice_noise_norm", "coord_score_norm", "min_distance", "volume"):
        assert _close(getattr(a, name).float(), getattr(b, name).float()), name


@pytest.mark.parametrize("sampler,guidance", [("ddpm", 0.0), ("pc", 2.0), ("ddim", 1.0)])
def test_traced_sampling_equals_eager_sampling(tiny_csp, sampler, guidance):
    request = SampleRequest(tuple(len(a) for a in PEROVSKITES), (1, 2, 3), PEROVSKITES, prop=(0.5, 1.0, 2.0))
    traced = sample(tiny_csp, request, SamplingConfig(sampler=sampler, steps=12, guidance=guidance, trace=True))
    eager = sample(tiny_csp, request, SamplingConfig(sampler=sampler, steps=12, guidance=guidance, trace=False))
    _assert_same_trajectory(traced, eager)
    assert tiny_csp.__dict__.get(TRACE_CACHE_ATTRIBUTE), "the traced path was not taken"


def test_traced_ab_initio_sampling_equals_eager(tiny_gen):
    request = SampleRequest((5, 7), (4, 5))
    traced = sample(tiny_gen, request, SamplingConfig(steps=15, trace=True))
    eager = sample(tiny_gen, request, SamplingConfig(steps=15, trace=False))
    _assert_same_trajectory(traced, eager)
    assert _close(traced.type_probs, eager.type_probs)


def test_trace_follows_weight_updates(tiny_csp):
    """The Train page samples from a model that keeps training: a cached trace must not keep old weights."""
    model = copy.deepcopy(tiny_csp)
    graph = CrystalGraph.build(torch.tensor([5]))
    args = (torch.tensor(PEROVSKITES[0]), torch.rand(5, 3), torch.randn(1, 6), torch.tensor([20]),
            torch.randn(1, model.model_config.hidden))
    evaluate = NetworkEvaluator(model, graph)
    assert evaluate.traced
    before = evaluate(*args).coord_score
    with torch.no_grad():
        for p in model.denoiser.coord_head.parameters():
            p.mul_(2.0)
    after = NetworkEvaluator(model, graph)(*args).coord_score  # served from the cache
    eager = NetworkEvaluator(model, graph, trace=False)(*args).coord_score
    assert torch.allclose(after, eager, atol=1e-6) and not torch.allclose(after, before)


def test_graph_means_match_direct_averages():
    num_atoms = torch.tensor([1, 4, 3])
    graph = CrystalGraph.build(num_atoms)
    src, dst = fully_connected_edges(num_atoms)
    assert sorted(zip(graph.src.tolist(), graph.dst.tolist())) == sorted(zip(src.tolist(), dst.tolist()))
    edge_values = torch.randn(graph.src.shape[0], 2)
    expected = torch.stack([edge_values[graph.src == i].mean(0) for i in range(8)])
    assert torch.allclose(graph.mean_over_edges(edge_values), expected, atol=1e-6)
    atom_values = torch.randn(8, 3)
    expected = torch.stack([atom_values[graph.batch == b].mean(0) for b in range(3)])
    assert torch.allclose(graph.mean_over_atoms(atom_values), expected, atol=1e-6)


def test_chunked_evaluation_equals_one_pass(tiny_gen):
    """Large batches are evaluated a few whole crystals at a time; the crystals never interact."""
    num_atoms = torch.tensor([5, 5, 2, 7])
    graph = CrystalGraph.build(num_atoms)
    N, B = int(num_atoms.sum()), 4
    args = (torch.randint(0, 30, (N,)), torch.rand(N, 3), torch.randn(B, 6), torch.tensor([3, 9, 27, 40]),
            torch.randn(B, tiny_gen.model_config.hidden))
    whole = NetworkEvaluator(tiny_gen, graph)
    chunked = NetworkEvaluator(tiny_gen, graph, max_edges=30)
    assert len(whole.chunks) == 1 and [c[0] for c in chunked.chunks] == [slice(0, 1), slice(1, 3), slice(3, 4)]
    a, b = whole(*args), chunked(*args)
    for name in ("lattice_eps", "coord_score", "type_logits"):
        # to the outputs' own scale: scores reach ~100 at small t, and float32 rounding of differently
        # blocked products (one pass vs chunks, 1 vs 2 threads) differs by ~1e-5 of that; crosstalk
        # between crystals would be of the order of the outputs themselves
        x, y = getattr(a, name), getattr(b, name)
        assert torch.allclose(x, y, rtol=1e-4, atol=1e-4 * float(y.abs().max())), name


def test_a_copied_model_does_not_share_traces(tiny_csp):
    """live.py deep-copies a training model to sample from it: the copy must trace its own weights."""
    graph = CrystalGraph.build(torch.tensor([3, 2]))
    args = (torch.tensor([38, 22, 8, 11, 17]), torch.rand(5, 3), torch.randn(2, 6), torch.tensor([20, 30]),
            torch.randn(2, tiny_csp.model_config.hidden))
    assert NetworkEvaluator(tiny_csp, graph).traced  # the original now has this shape's trace cached
    clone = copy.deepcopy(tiny_csp)
    assert not clone.__dict__.get(TRACE_CACHE_ATTRIBUTE)
    with torch.no_grad():
        for p in clone.denoiser.coord_head.parameters():
            p.mul_(3.0)
    traced = NetworkEvaluator(clone, graph)(*args).coord_score
    eager = NetworkEvaluator(clone, graph, trace=False)(*args).coord_score
    assert torch.allclose(traced, eager, atol=1e-6)
