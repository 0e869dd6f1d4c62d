"""Diffusion in two dimensions (issue 22): data, forward process, training, samplers, GMM and MMD."""
import math

import pytest
import torch

from conftest import torch_threads
from diffusion.schedules import SCHEDULE_NAMES
from diffusion.toy2d import (DATASETS, SAMPLERS, ToyTrainConfig, ddim_path, ddpm_path, drift_field, fit_gmm,
                             forward_numbers, forward_path, gmm_density, gmm_sample, grid_points, make_dataset,
                             make_process, median_bandwidth, mmd, pc_path, q_sample, sample_path, start_noise,
                             train_toy, untrained_model)
from diffusion.toy2d.process import denoising_target

# 500 optimizer steps on T = 100: under a second on one core, and already a clear Swiss roll
QUICK = ToyTrainConfig(num_steps=100, max_steps=500)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def roll():
    return make_dataset("swiss_roll", 500, seed=0)


@pytest.fixture(scope="module")
def trained(roll):
    with torch_threads(1):   # a module fixture is built before the tests' one-thread fixture
        return train_toy(QUICK, roll)


# ----------------------------------------------------------------------------- data
@pytest.mark.parametrize("name", DATASETS)
def test_datasets_shape_scale_and_seed(name):
    data = make_dataset(name, 300, seed=4)
    assert data.points.shape == (300, 2) and data.points.dtype == torch.float32
    assert torch.equal(data.points, make_dataset(name, 300, seed=4).points)
    assert not torch.equal(data.points, make_dataset(name, 300, seed=5).points)
    if data.periodic:
        assert data.points.min() >= 0 and data.points.max() < 1
    else:
        assert data.points.mean(0).abs().max() < 1e-5
        assert abs(float(data.points.pow(2).mean()) - 1) < 1e-4   # unit RMS per coordinate


def test_unknown_dataset():
    with pytest.raises(ValueError, match="swiss_roll"):
        make_dataset("spiral_galaxy")


# ----------------------------------------------------------------------------- forward process
@pytest.mark.parametrize("name", ["swiss_roll", "periodic_box"])
def test_forward_at_zero_is_the_data(name):
    data = make_dataset(name, 200)
    process = make_process("linear", 100, periodic=data.periodic)
    noise = torch.randn(200, 2, generator=torch.Generator().manual_seed(0))
    assert torch.equal(q_sample(process, data.points, torch.zeros(200, dtype=torch.long), noise), data.points)


@pytest.mark.parametrize("schedule", SCHEDULE_NAMES)
def test_vp_forward_at_T_is_standard_normal(schedule):
    x0 = make_dataset("swiss_roll", 20000).points
    process = make_process(schedule, 200)
    t = torch.full((20000,), 200)
    x_T = q_sample(process, x0, t, torch.randn(20000, 2, generator=torch.Generator().manual_seed(1)))
    assert x_T.mean(0).abs().max() < 0.03
    assert torch.allclose(torch.cov(x_T.T), torch.eye(2), atol=0.05)


def test_torus_forward_stays_in_box_and_is_uniform_at_T():
    x0 = make_dataset("periodic_box", 20000).points
    process = make_process("linear", 200, periodic=True)
    gen = torch.Generator().manual_seed(2)
    for t in (1, 50, 200):
        x_t = q_sample(process, x0, torch.full((20000,), t), torch.randn(20000, 2, generator=gen))
        assert x_t.min() >= 0 and x_t.max() < 1
    assert (x_t.mean(0) - 0.5).abs().max() < 0.01
    assert (x_t.var(0) - 1 / 12).abs().max() < 0.003          # the variance of U[0, 1)
    counts = torch.histc(x_t[:, 0], bins=10, min=0, max=1)
    assert (counts / 2000 - 1).abs().max() < 0.1


@pytest.mark.parametrize("periodic", [False, True])
def test_forward_path(periodic):
    x0 = make_dataset("periodic_box" if periodic else "two_moons", 4000).points
    process = make_process("cosine", 50, periodic=periodic)
    path = forward_path(process, x0, seed=0)
    assert path.shape == (51, 4000, 2) and torch.equal(path[0], x0)
    assert torch.equal(path, forward_path(process, x0, seed=0))
    if periodic:
        assert path.min() >= 0 and path.max() < 1
    else:   # the step-by-step marginal at T is the closed form's N(0, I)
        assert path[-1].mean(0).abs().max() < 0.06 and (path[-1].var(0) - 1).abs().max() < 0.08


def test_forward_numbers():
    numbers = forward_numbers(make_process("sigmoid", 100))
    assert numbers.abar.shape == numbers.snr.shape == numbers.sigma.shape == (101,)
    assert torch.allclose(numbers.sqrt_abar ** 2 + numbers.sqrt_one_minus_abar ** 2, torch.ones(101, dtype=torch.float64))
    assert numbers.snr[0] == math.inf and torch.all(numbers.snr[1:-1] > numbers.snr[2:])


def test_torus_target_is_minus_eps_for_small_sigma():
    process = make_process("linear", 100, periodic=True)
    noise = torch.randn(100, 2, generator=torch.Generator().manual_seed(3))
    target = denoising_target(process, torch.ones(100, dtype=torch.long), noise)   # sigma_1 = 0.005
    assert torch.allclose(target, -noise, atol=1e-4)


# ----------------------------------------------------------------------------- model and training
def test_torus_model_is_periodic():
    model = untrained_model(QUICK, periodic=True)
    x = torch.rand(50, 2)
    t = torch.randint(1, 101, (50,))
    assert torch.allclose(model(x, t), model(x + torch.tensor([1.0, -2.0]), t), atol=1e-4)


def test_training_is_deterministic_and_stoppable(roll):
    config = ToyTrainConfig(num_steps=50, max_steps=30, progress_every=10)
    seen = []
    first = train_toy(config, roll, progress=lambda step, loss: seen.append(step))
    assert first.steps == 30 and not first.stopped and seen == [10, 20, 30]
    assert first.losses == train_toy(config, roll).losses
    calls = []
    stopped = train_toy(config, roll, should_stop=lambda: calls.append(1) or len(calls) > 7)
    assert stopped.stopped and stopped.steps == 7 and stopped.losses == first.losses[:7]


def test_training_lowers_mmd_on_the_swiss_roll(roll, trained):
    x_T = start_noise(trained.model.process, 500, seed=3)
    bandwidth = median_bandwidth(roll.points)
    before = mmd(ddim_path(untrained_model(QUICK, periodic=False), x_T, 20).samples, roll.points, bandwidth)
    after = mmd(ddim_path(trained.model, x_T, 20).samples, roll.points, bandwidth)
    assert after < 0.25 * before and after < 0.1, (before, after)
    assert sum(trained.losses[-50:]) < sum(trained.losses[:50])


# ----------------------------------------------------------------------------- samplers
def test_samplers_paths_and_determinism(trained):
    model = trained.model
    x_T = start_noise(model.process, 64, seed=5)
    assert torch.equal(x_T, start_noise(model.process, 64, seed=5))
    for method in SAMPLERS:
        path = sample_path(model, method, x_T, seed=1)
        assert path.points.shape[1:] == (64, 2) and torch.equal(path.points[0], x_T)
        assert path.steps[0] == 100 and path.steps[-1] == 0 and len(path.steps) == len(path.points)
        assert torch.equal(path.points, sample_path(model, method, x_T, seed=1).points)
    assert not torch.equal(ddpm_path(model, x_T, seed=1).samples, ddpm_path(model, x_T, seed=2).samples)
    assert not torch.equal(pc_path(model, x_T, seed=1).samples, ddpm_path(model, x_T, seed=1).samples)
    assert ddpm_path(model, x_T).points.shape == (101, 64, 2)


@pytest.mark.parametrize("steps", [1, 7, 20, 100])
def test_ddim_path_length(trained, steps):
    path = ddim_path(trained.model, start_noise(trained.model.process, 16), steps)
    assert path.points.shape == (steps + 1, 16, 2) and len(set(path.steps)) == steps + 1


def test_torus_samplers_stay_in_the_box():
    model = untrained_model(QUICK, periodic=True)
    x_T = start_noise(model.process, 200, seed=0)
    assert x_T.min() >= 0 and x_T.max() < 1
    for method in SAMPLERS:
        path = sample_path(model, method, x_T, steps=10)
        assert path.points.min() >= 0 and path.points.max() < 1


def test_drift_field(trained):
    grid = grid_points(-2, 2, 9)
    field = drift_field(trained.model, 10, grid)
    assert grid.shape == field.score.shape == field.drift.shape == (81, 2)
    # one step's move points along the score (both pull towards the data)
    assert float((field.drift * field.score).sum(-1).mean()) > 0
    with pytest.raises(ValueError):
        drift_field(trained.model, 0, grid)


# ----------------------------------------------------------------------------- explicit model and MMD
def test_gmm_beats_a_single_gaussian(roll):
    mixture, single = fit_gmm(roll.points, 8), fit_gmm(roll.points, 1)
    assert mixture.avg_log_likelihood > single.avg_log_likelihood + 0.3
    grid = grid_points(-6, 6, 241)
    density = gmm_density(mixture, grid)
    assert density.shape == (241 * 241,) and torch.all(density >= 0)
    assert abs(float(density.sum()) * (12 / 240) ** 2 - 1) < 0.01     # a density: integrates to 1
    samples = gmm_sample(mixture, 500, seed=1)
    assert samples.shape == (500, 2) and torch.equal(samples, gmm_sample(mixture, 500, seed=1))


@pytest.mark.parametrize("name", ["gaussian_mixture", "periodic_box"])
def test_mmd(name):
    data = make_dataset(name, 400, seed=0)
    other = make_dataset(name, 400, seed=1)
    noise = start_noise(make_process(periodic=data.periodic), 400, seed=0)
    assert mmd(data.points, data.points, periodic=data.periodic) < 1e-6
    same_law = mmd(data.points, other.points, periodic=data.periodic)
    different = mmd(data.points, noise, periodic=data.periodic)
    assert 0 < same_law < different and different > 0.05
    assert math.isclose(different, mmd(noise, data.points, periodic=data.periodic), rel_tol=1e-9)   # symmetric
