import math

import torch

from diffusion.corruption import (LatticeStats, latent_to_lattice, lattice_to_latent, q_sample, q_sample_types,
                                  q_step, score_norm, sym_to_vec6, vec6_to_sym, wrapped_normal_log_density,
                                  wrapped_normal_score)
from diffusion.schedules import make_schedule


def test_closed_form_equals_stepwise_chain_in_distribution():
    """x_t from t stepwise applications equals the closed form in mean and variance."""
    sched = make_schedule("linear", 200)
    g = torch.Generator().manual_seed(0)
    n, t = 20_000, 150
    x0 = torch.full((n, 2), 1.5, dtype=torch.float64)
    x = x0.clone()
    for s in range(1, t + 1):
        x = q_step(x, torch.full((n,), s), torch.randn(n, 2, generator=g, dtype=torch.float64), sched.alpha)
    closed = q_sample(x0, torch.full((n,), t), torch.randn(n, 2, generator=g, dtype=torch.float64), sched.abar)
    expected_mean = math.sqrt(sched.abar[t]) * 1.5
    expected_var = 1 - float(sched.abar[t])
    for sample in (x, closed):
        assert abs(float(sample.mean()) - expected_mean) < 0.02
        assert abs(float(sample.var()) - expected_var) < 0.02


def test_wrapped_normal_score_is_gradient_of_log_density():
    x = torch.linspace(-0.49, 0.49, 57, dtype=torch.float64, requires_grad=True)
    for sigma in (0.01, 0.1, 0.3, 0.5, 1.0):
        s = torch.full_like(x, sigma)
        (grad,) = torch.autograd.grad(wrapped_normal_log_density(x, s).sum(), x)
        assert torch.allclose(wrapped_normal_score(x.detach(), s), grad, atol=1e-8, rtol=1e-6)


def test_wrapped_normal_is_periodic_and_normalized():
    x = torch.linspace(-0.5, 0.5, 20001, dtype=torch.float64)[:-1]
    for sigma in (0.05, 0.2, 0.5):  # the sigma range of the process (images k = -4..4)
        s = torch.full_like(x, sigma)
        assert abs(float(torch.exp(wrapped_normal_log_density(x, s)).mean()) - 1.0) < 1e-6
        assert torch.allclose(wrapped_normal_score(x + 1, s), wrapped_normal_score(x, s), atol=1e-8)


def test_score_norm_against_monte_carlo_on_wrapped_samples():
    sigmas = torch.tensor([0.01, 0.2, 0.5], dtype=torch.float64)
    g = torch.Generator().manual_seed(1)
    for sigma, quad in zip(sigmas, score_norm(sigmas)):
        x = torch.remainder(sigma * torch.randn(400_000, generator=g, dtype=torch.float64) + 0.5, 1.0) - 0.5
        mc = wrapped_normal_score(x, sigma.expand_as(x)).pow(2).mean()
        assert abs(float(mc / quad) - 1) < 0.02
    assert abs(float(score_norm(torch.tensor([0.01]))[0]) * 0.01 ** 2 - 1) < 1e-3  # small sigma: 1/sigma^2


def test_vec6_is_an_isometry():
    m = torch.randn(5, 3, 3, dtype=torch.float64)
    m = m + m.transpose(-1, -2)
    v = sym_to_vec6(m)
    assert torch.allclose(vec6_to_sym(v), m)
    assert torch.allclose(v.norm(dim=-1), m.flatten(1).norm(dim=-1))


def test_lattice_latent_round_trip_keeps_shape_and_volume():
    g = torch.Generator().manual_seed(0)
    lattices = torch.eye(3, dtype=torch.float64) * 4 + torch.randn(8, 3, 3, generator=g, dtype=torch.float64)
    n = torch.randint(1, 20, (8,), generator=g)
    stats = LatticeStats.fit(lattices, n)
    back = latent_to_lattice(lattice_to_latent(lattices, n, stats), n, stats).double()
    gram = lambda L: L @ L.transpose(-1, -2)
    assert torch.allclose(gram(back), gram(lattices), atol=1e-3, rtol=1e-4)  # same cell up to rotation


def test_lattice_prior_is_a_physically_sized_cell():
    stats = LatticeStats(2.5, (0.0,) * 6, (0.3,) * 6)
    n = torch.full((2000,), 8)
    lattices = latent_to_lattice(torch.randn(2000, 6, generator=torch.Generator().manual_seed(0)), n, stats)
    volumes = torch.linalg.det(lattices.double())
    assert torch.all(volumes > 0), "every cell of the prior must be non-degenerate"
    median_volume_per_atom = float(volumes.median() / 8)
    assert abs(median_volume_per_atom / 2.5 ** 3 - 1) < 0.1


def test_type_masking_rate():
    types = torch.full((100_000,), 8)
    t = torch.full((100_000,), 300)
    masked = q_sample_types(types, t, 1000, torch.rand(100_000, generator=torch.Generator().manual_seed(0)))
    assert abs(float((masked == 0).double().mean()) - 0.3) < 0.01
