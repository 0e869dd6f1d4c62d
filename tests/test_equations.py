"""The course equations with a schedule's numbers filled in (explorer/equations.py, no Streamlit)."""
from __future__ import annotations

import math

import pytest

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
