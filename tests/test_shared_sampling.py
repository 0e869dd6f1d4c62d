"""A classroom at once: concurrent sampling requests share network calls (``diffusion/shared_sampling.py``),
and each caller still gets its own crystals, its own errors and its own progress."""
from __future__ import annotations

import threading

import pytest
import torch

from diffusion.placement import build_request
from diffusion.sampling import SamplingConfig, sample
from diffusion.shared_sampling import SharedSampler, merge_requests, split_rows

# float32 rounding: matrix-product kernels sum in another order for another batch size (module docstring)
ROUNDING = 1e-4

COMPOSITIONS = ([38, 22, 8, 8, 8], [56, 40, 8, 8, 8], [19, 73, 8, 8, 8], [55, 20, 9, 9, 9], [19, 12, 9, 9, 9])


def _requests(count: int):
    return [build_request([100 + i], atoms=[COMPOSITIONS[i % len(COMPOSITIONS)]], prop=[-0.5 + 0.1 * i])
            for i in range(count)]


def _together(calls):
    """Run the calls in threads that start at the same moment; (results, errors, thread ids) per call."""
    results, errors = [None] * len(calls), [None] * len(calls)
    idents = [None] * len(calls)
    start = threading.Barrier(len(calls))

    def go(i):
        idents[i] = threading.get_ident()
        start.wait()
        try:
            results[i] = calls[i]()
        except Exception as exc:  # collected for the assertions
            errors[i] = exc

    threads = [threading.Thread(target=go, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results, errors, idents


def _assert_same(shared, lone):
    assert shared.num_crystals == lone.num_crystals
    assert torch.equal(shared.num_atoms, lone.num_atoms)
    assert torch.equal(shared.types, lone.types)
    assert torch.equal(shared.timesteps, lone.timesteps)
    assert shared.seed == lone.seed
    for name in ("lattice", "frac_coords", "pred_lattice", "volume", "min_distance"):
        assert torch.allclose(getattr(shared, name), getattr(lone, name), atol=ROUNDING, rtol=0), name


def test_requests_that_arrive_together_share_one_run_and_get_their_lone_results(tiny_csp):
    config = SamplingConfig(sampler="ddim", steps=20, guidance=1.0)
    requests = _requests(6)
    shared = SharedSampler(gather_seconds=0.3)
    results, errors, _ = _together([lambda r=r: shared.sample(tiny_csp, r, config) for r in requests])
    assert errors == [None] * 6
    assert shared.stats.runs == 1 and shared.stats.largest_batch == 6
    for request, result in zip(requests, results):
        _assert_same(result, sample(tiny_csp, request, config))


def test_a_merged_batch_differs_from_lone_runs_only_by_rounding(tiny_csp):
    # the same comparison without threads: the rows of one merged request against each request alone
    config = SamplingConfig(sampler="pc", steps=10)
    requests = _requests(4)
    merged = sample(tiny_csp, merge_requests(requests), config)
    for request, rows in zip(requests, split_rows(requests)):
        _assert_same(merged.select(rows, request.seeds[0]), sample(tiny_csp, request, config))


def test_different_settings_do_not_mix(tiny_csp):
    requests = _requests(4)
    configs = [SamplingConfig(sampler="ddim", steps=10), SamplingConfig(sampler="ddpm", steps=10)] * 2
    shared = SharedSampler(gather_seconds=0.3)
    results, errors, _ = _together([lambda r=r, c=c: shared.sample(tiny_csp, r, c) for r, c in zip(requests, configs)])
    assert errors == [None] * 4
    assert shared.stats.runs == 2
    for request, config, result in zip(requests, configs, results):
        assert result.sampler == config.sampler
        _assert_same(result, sample(tiny_csp, request, config))


def test_a_bad_request_fails_alone_and_the_others_get_their_crystals(tiny_csp):
    config = SamplingConfig(sampler="ddim", steps=10)
    requests = _requests(3)
    bad = build_request([7], atoms=[[38, 22, 8, 8, 8]], space_groups=[221])   # tiny_csp has no space-group condition
    shared = SharedSampler(gather_seconds=0.3)
    calls = [lambda r=r: shared.sample(tiny_csp, r, config) for r in requests + [bad]]
    results, errors, _ = _together(calls)
    assert errors[:3] == [None] * 3
    assert isinstance(errors[3], ValueError) and "space-group condition" in str(errors[3])
    for request, result in zip(requests, results[:3]):
        _assert_same(result, sample(tiny_csp, request, config))


def test_when_a_merged_run_fails_each_request_is_rerun_alone(tiny_csp):
    poisoned_seed = 101

    def fragile(model, request, config, progress=None):
        if poisoned_seed in request.seeds:
            raise RuntimeError("this crystal broke the run")
        return sample(model, request, config, progress)

    config = SamplingConfig(sampler="ddim", steps=10)
    requests = _requests(3)   # seeds 100, 101, 102
    shared = SharedSampler(gather_seconds=0.3, run=fragile)
    results, errors, _ = _together([lambda r=r: shared.sample(tiny_csp, r, config) for r in requests])
    assert errors[0] is None and errors[2] is None
    assert isinstance(errors[1], RuntimeError)
    assert shared.stats.reruns == 3
    for i in (0, 2):
        _assert_same(results[i], sample(tiny_csp, requests[i], config))


def test_progress_reaches_each_caller_in_its_own_thread(tiny_csp):
    config = SamplingConfig(sampler="ddim", steps=15)
    requests = _requests(4)
    seen = [[] for _ in requests]
    shared = SharedSampler(gather_seconds=0.3)

    def call(i):
        return shared.sample(tiny_csp, requests[i], config,
                             lambda done, total: seen[i].append((threading.get_ident(), done, total)))

    _, errors, idents = _together([lambda i=i: call(i) for i in range(4)])
    assert errors == [None] * 4
    for i, calls in enumerate(seen):
        assert calls, "every caller hears about its run"
        assert {ident for ident, _, _ in calls} == {idents[i]}
        assert calls[-1][1:] == (15, 15)


def test_ab_initio_requests_merge_too(tiny_gen):
    config = SamplingConfig(sampler="ddpm", steps=10)
    requests = [build_request([5 + i], num_atoms=[3 + i]) for i in range(3)]
    shared = SharedSampler(gather_seconds=0.3)
    results, errors, _ = _together([lambda r=r: shared.sample(tiny_gen, r, config) for r in requests])
    assert errors == [None] * 3 and shared.stats.runs == 1
    for request, result in zip(requests, results):
        _assert_same(result, sample(tiny_gen, request, config))


def test_select_rejects_rows_that_are_not_there(tiny_csp):
    trajectory = sample(tiny_csp, _requests(1)[0], SamplingConfig(sampler="ddim", steps=5))
    with pytest.raises(ValueError, match="crystal rows"):
        trajectory.select([1])


class _Stopped(BaseException):
    """What Streamlit raises in a session's thread to stop its script (a BaseException, like StopException)."""


def test_when_the_leaders_session_stops_the_others_still_get_their_crystals(tiny_csp):
    config = SamplingConfig(sampler="ddim", steps=10)
    requests = _requests(4)
    shared = SharedSampler(gather_seconds=0.3)
    stopped_thread = []

    def call(i):
        def progress(done, total):
            # the first caller to lead is stopped at its first progress report
            if not stopped_thread:
                stopped_thread.append(threading.get_ident())
            if stopped_thread[0] == threading.get_ident():
                raise _Stopped()
        try:
            return shared.sample(tiny_csp, requests[i], config, progress)
        except _Stopped:
            return "stopped"

    results, errors, _ = _together([lambda i=i: call(i) for i in range(4)])
    assert errors == [None] * 4
    assert results.count("stopped") == 1
    # the three others went back to the queue together and ran as one batch (not one after another)
    assert shared.stats.runs == 1 and shared.stats.largest_batch == 3
    for request, result in zip(requests, results):
        if result != "stopped":
            _assert_same(result, sample(tiny_csp, request, config))


def test_identical_requests_from_two_sessions_each_get_their_crystal(tiny_csp):
    # two students, same formula, same seed, each with their own copy of the same template start: the requests
    # are equal field for field (tensors inside), and each caller must still get its own result
    from dataclasses import replace

    from diffusion.textbook import textbook_crystal
    from diffusion.crystal import Crystal

    def request():
        start = Crystal.from_structure(textbook_crystal("perovskite SrTiO3").structure())
        plain = build_request([0], atoms=[start.atomic_numbers.tolist()], prop=[-0.5])
        return replace(plain, start=(start,), start_step=10)

    config = SamplingConfig(sampler="ddim", steps=10)
    first, second = request(), request()
    shared = SharedSampler(gather_seconds=0.3)
    results, errors, _ = _together([lambda r=r: shared.sample(tiny_csp, r, config) for r in (first, second)])
    assert errors == [None, None]
    assert shared.stats.runs == 1 and shared.stats.largest_batch == 2
    for result in results:
        _assert_same(result, sample(tiny_csp, first, config))
