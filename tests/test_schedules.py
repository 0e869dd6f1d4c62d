import math

import pytest
import torch

from diffusion.schedules import SCHEDULE_NAMES, geometric_sigmas, make_schedule


@pytest.mark.parametrize("name", SCHEDULE_NAMES)
def test_schedule_shapes_and_monotone(name):
    s = make_schedule(name, 1000)
    for field in (s.beta, s.alpha, s.abar, s.snr, s.sigma):
        assert field.shape == (1001,)
    assert s.beta[0] == 0 and s.abar[0] == 1 and s.sigma[0] == 0
    assert torch.all(s.beta[1:] > 0) and torch.all(s.beta <= 0.999)
    assert torch.all(s.abar[1:] < s.abar[:-1]), "abar must decrease"
    assert s.abar[-1] < 0.01, "x_T must be (almost) pure noise"
    assert torch.allclose(s.abar, torch.cumprod(1 - s.beta, 0))
    assert torch.allclose(s.snr[1:], s.abar[1:] / (1 - s.abar[1:]))


def test_cosine_matches_closed_form():
    s = make_schedule("cosine", 1000)
    t = torch.tensor([100, 500, 900], dtype=torch.float64)
    f = lambda x: torch.cos((x / 1000 + 0.008) / 1.008 * math.pi / 2) ** 2
    assert torch.allclose(s.abar[t.long()], f(t) / f(torch.zeros(1, dtype=torch.float64)), atol=1e-6)


def test_geometric_sigmas():
    sig = geometric_sigmas(1000, 0.005, 0.5)
    assert sig[0] == 0 and abs(sig[1] - 0.005) < 1e-12 and abs(sig[-1] - 0.5) < 1e-12
    ratios = sig[2:] / sig[1:-1]
    assert torch.allclose(ratios, ratios[0].expand_as(ratios))


@pytest.mark.parametrize("bad", [0, -5, 2.5])
def test_bad_num_steps(bad):
    with pytest.raises(ValueError):
        make_schedule("linear", bad)


def test_unknown_schedule():
    with pytest.raises(ValueError, match="unknown schedule"):
        make_schedule("exotic", 10)
