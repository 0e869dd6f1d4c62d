"""The course equations with a schedule's numbers filled in (explorer/equations.py, no Streamlit)."""
from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from diffusion import make_schedule
from explorer.equations import (GLOSSARY, forward_closed_form, forward_panels, forward_step, number, reverse_pair,
                                reverse_panels, wrapped_normal)


@pytest.fixture(scope="module")
def cosine():
    return make_schedule("cosine", 1000)


def test_number_keeps_small_and_near_one_values_readable():
    assert number(0.73112) == "0.7311"
    assert number(0.99999) == "0.99999", "not rounded to 1"
    assert number(1.0) == "1" and number(0.0) == "0"
    assert number(4.128e-5) == r"4.128\times 10^{-5}"
    assert number(float("inf")) == r"\infty"


def test_forward_equations_carry_the_schedule_values_at_t(cosine):
    t = 700
    alpha, abar, sigma = (float(getattr(cosine, n)[t]) for n in ("alpha", "abar", "sigma"))
    step = forward_step(cosine, t)
    assert r"\sqrt{\alpha_t}" in step and "x_{699}" in step
    assert number(alpha) in step and number(math.sqrt(alpha)) in step and number(math.sqrt(1 - alpha)) in step
    closed = forward_closed_form(cosine, t)
    assert number(math.sqrt(abar)) in closed and number(math.sqrt(1 - abar)) in closed
    assert number(abar / (1 - abar)) in closed, "the SNR"
    assert number(sigma) in wrapped_normal(cosine, t) and r"\bmod 1" in wrapped_normal(cosine, t)
    panels = forward_panels(cosine, t)
    assert [p.field for p in panels] == ["lattice", "lattice", "coords"]
    assert all(p.note for p in panels)
    assert forward_panels(cosine, 300)[1].latex != panels[1].latex, "another t, other numbers"


def test_forward_at_the_ends(cosine):
    assert "x_0" in forward_step(cosine, 0) and "x_{-1}" not in forward_step(cosine, 0)
    assert r"\infty" in forward_closed_form(cosine, 0)
    assert "1000" in forward_closed_form(cosine, 1000)
    with pytest.raises(ValueError, match="between 0 and T"):
        forward_step(cosine, 1001)


def test_reverse_pair_follows_the_sampler_grid():
    assert reverse_pair(50, None, 30) == (30, 29)
    assert reverse_pair(50, 8, 50) == (50, 43)
    assert reverse_pair(50, 8, 0) == (1, 0), "at t = 0: the last update"
    with pytest.raises(ValueError, match="grid"):
        reverse_pair(50, 8, 30)


def test_ddpm_update_uses_alpha_t_or_the_strided_ratio():
    s = make_schedule("cosine", 50)
    full = reverse_panels(s, None, 30, "ddpm")[0].latex[0]
    alpha = float(s.alpha[30])
    assert r"\frac{1}{\sqrt{\alpha_t}}" in full and number(1 / math.sqrt(alpha)) in full
    assert number(float(s.beta[30]) / math.sqrt(1 - float(s.abar[30]))) in full
    assert number(math.sqrt(float(s.beta[30]))) in full, "sqrt(beta_t) z"
    strided = reverse_panels(s, 8, 43, "ddpm")[0].latex[0]
    ratio = float(s.abar[43] / s.abar[36])
    assert r"\alpha_{t|s}" in strided and r"\alpha_{43|36}" in strided and number(ratio) in strided
    last = reverse_panels(s, 8, 0, "ddpm")[0].latex[0]
    assert "z = 0" in last, "no noise on the last step"


def test_each_sampler_shows_its_own_equations():
    s = make_schedule("cosine", 50)
    ddpm, pc, ddim = (reverse_panels(s, 8, 43, name) for name in ("ddpm", "pc", "ddim"))
    assert r"\hat x_0" in ddim[0].latex[0] and r"\sqrt{\beta" not in ddim[0].latex[0], "DDIM adds no noise"
    assert "z" not in ddim[1].latex[0].replace("tfrac", ""), "probability flow: no noise"
    assert len(pc[1].latex) == 2 and r"\gamma" in pc[1].latex[0], "corrector, then predictor"
    assert len(ddpm[1].latex) == 1 and pc[1].latex[1] == ddpm[1].latex[0]
    sigma_t, sigma_s = float(s.sigma[43]), float(s.sigma[36])
    assert number(sigma_t ** 2 - sigma_s ** 2) in ddpm[1].latex[0]
    assert number(0.5 * (sigma_t ** 2 - sigma_s ** 2)) in ddim[1].latex[0]
    with pytest.raises(ValueError, match="unknown sampler"):
        reverse_panels(s, 8, 43, "euler")


def test_types_and_guidance_panels():
    s = make_schedule("linear", 50)
    panels = reverse_panels(s, 8, 43, "ddim", task="gen", guidance=1.5)
    fields = [p.field for p in panels]
    assert fields == ["lattice", "coords", "types", "guidance"]
    assert r"\frac{7}{43}" in panels[2].latex[0]
    assert "2.5" in panels[3].latex[0] and "1.5" in panels[3].latex[0]
    assert [p.field for p in reverse_panels(s, 8, 43, "ddim")] == ["lattice", "coords"]


def test_glossary_terms():
    terms = [term.lower() for term, _ in GLOSSARY]
    for word in ("schedule", "snr", "wrapped normal", "score", "guidance", "predictor-corrector"):
        assert any(word in term for term in terms), word


# ---------------------------------------------------------------- the panel shows the sampler's own numbers

CHECKPOINTS = Path(__file__).resolve().parent.parent / "checkpoints"


@pytest.fixture(scope="module")
def perov_small():
    from diffusion.checkpoints import load_model
    return load_model(CHECKPOINTS / "perov_5_small.pt")


def _panel_text(panels) -> str:
    return "\n".join(line for p in panels for line in p.latex)


def _used_numbers(c) -> list[float]:
    """Every coefficient a sampler's update used that appears in the equations."""
    from diffusion.samplers import DDIMCoefficients, PCCoefficients

    numbers = [c.sigma_t, c.sigma_s, c.eps_scale, c.signal_scale]
    if isinstance(c, DDIMCoefficients):
        return numbers + [c.signal_scale_s, c.eps_scale_s, c.coord_drift]
    numbers += [c.alpha, c.mean_x0, c.mean_xt, c.coord_drift] + ([c.lattice_noise, c.coord_noise] if c.s > 0 else [])
    if isinstance(c, PCCoefficients):
        numbers += [c.gamma, c.corrector_noise, c.step_lr]
    return numbers


@pytest.mark.parametrize("sampler", ["ddpm", "pc", "ddim"])
def test_panel_numbers_are_the_ones_the_sampler_used(perov_small, sampler):
    from diffusion.crystal_diffusion import Prediction
    from diffusion.samplers import CrystalNoise, SamplerState, ScheduleValues, make_sampler
    from diffusion.sampling import SampleRequest, SamplingConfig, resolved_step_lr, sample

    config = SamplingConfig(sampler=sampler, steps=8)
    traj = sample(perov_small, SampleRequest((5,), (3,), ((38, 22, 8, 8, 8),)), config)
    step_lr = resolved_step_lr(perov_small, config)
    own = make_sampler(sampler, ScheduleValues.of(perov_small), step_lr=step_lr)
    state = SamplerState(torch.zeros(1, 6), torch.full((5, 3), 0.5), torch.tensor([38, 22, 8, 8, 8]))
    out = Prediction(torch.zeros(1, 6), torch.zeros(5, 3), None)
    for c in traj.coefficients:
        # what sampler.step returns for this update is what the run kept
        assert own.step(state, c.t, c.s, out, CrystalNoise((0,), [5], torch.device("cpu"))).coefficients == c
        shown = reverse_panels(perov_small.schedule, 8, c.t, sampler, step_lr=step_lr or 5e-7, trajectory=traj)
        text = _panel_text(shown)
        for value in _used_numbers(c):
            assert number(value) in text, (sampler, c.t, value)
        # without the trajectory the sampler computes the same numbers for the model's schedule
        alone = reverse_panels(perov_small.schedule, 8, c.t, sampler, step_lr=step_lr or 5e-7)
        assert _panel_text(alone) == text
    assert _panel_text(reverse_panels(None, None, 0, sampler, trajectory=traj)) == _panel_text(
        reverse_panels(perov_small.schedule, 8, traj.coefficients[-1].t, sampler, step_lr=step_lr or 5e-7))


def test_panel_of_a_run_from_a_template_follows_its_own_grid(perov_small):
    """A run started at t0 has a grid of its own: the recorded coefficients give its updates."""
    from diffusion.sampling import SampleRequest, SamplingConfig, sample

    from diffusion.crystal import Crystal

    lattice = torch.eye(3, dtype=torch.float64) * 3.9
    frac = torch.tensor([[0, 0, 0], [.5, .5, .5], [.5, .5, 0], [.5, 0, .5], [0, .5, .5]], dtype=torch.float64)
    start = Crystal(torch.tensor([38, 22, 8, 8, 8]), frac, lattice)
    request = SampleRequest((5,), (1,), ((38, 22, 8, 8, 8),), start=(start,), start_step=300)
    traj = sample(perov_small, request, SamplingConfig(sampler="ddpm", steps=20))
    first = traj.coefficients[0]
    assert first.t == 300 and int(traj.timesteps[0]) == 300
    text = _panel_text(reverse_panels(perov_small.schedule, 20, 300, "ddpm", trajectory=traj))
    assert f"x_{{{first.s}}}" in text and number(first.mean_x0) in text
    assert text == _panel_text(reverse_panels(perov_small.schedule, 20, 300, "ddpm", start_step=300))
    with pytest.raises(ValueError, match="grid"):
        reverse_panels(perov_small.schedule, 20, 300, "ddpm")  # the plain grid of 20 steps does not hold 300


def test_type_reveal_panel_uses_the_recorded_probability():
    from diffusion.checkpoints import load_model
    from diffusion.sampling import SampleRequest, SamplingConfig, sample

    model = load_model(CHECKPOINTS / "perov_5_gen.pt")
    traj = sample(model, SampleRequest((5,), (2,)), SamplingConfig(sampler="ddim", steps=5))
    c = traj.coefficients[1]
    panels = reverse_panels(model.schedule, 5, c.t, "ddim", task="gen", trajectory=traj)
    assert number(c.reveal) in panels[2].latex[0] and rf"\frac{{{c.t - c.s}}}{{{c.t}}}" in panels[2].latex[0]


def test_a_trajectory_without_coefficients_falls_back_to_the_sampler(perov_small):
    """Trajectories made before the coefficients were kept (or unpickled from then) still get their panel."""
    import dataclasses
    import pickle

    from diffusion.sampling import SampleRequest, SamplingConfig, sample

    traj = sample(perov_small, SampleRequest((5,), (4,), ((38, 22, 8, 8, 8),)), SamplingConfig(steps=6))
    again = pickle.loads(pickle.dumps(traj))
    assert again.coefficients == traj.coefficients
    old = dataclasses.replace(traj, coefficients=())
    t = int(traj.timesteps[1])
    assert _panel_text(reverse_panels(perov_small.schedule, 6, t, "ddpm", trajectory=old)) == _panel_text(
        reverse_panels(perov_small.schedule, 6, t, "ddpm", trajectory=traj))
