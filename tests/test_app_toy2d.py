"""The Diffusion in 2D page headless (issue #22): the forward slider with its equation, training in the page,
the three samplers from one start with the drift arrows, the mixture beside them, and the URL."""
from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

PAGE = str(Path(__file__).resolve().parent.parent / "pages" / "0_Diffusion_in_2D.py")


def _charts(at: AppTest) -> int:
    return len(at.get("plotly_chart"))


def test_forward_train_reverse_and_mixture(app_env):
    at = AppTest.from_file(PAGE, default_timeout=300).run()
    assert not at.exception
    assert at.session_state["toy.dataset"] == "swiss_roll"
    assert any("Train the denoiser above" in i.value for i in at.info)
    at.slider(key="toy.t").set_value(100).run()
    assert not at.exception
    assert any("x_{100}" in latex.value for latex in at.latex), "the equation carries the live numbers"
    before = _charts(at)
    at.number_input(key="toy.steps").set_value(300)
    at.button(key="toy.train").click().run()
    assert not at.exception and not at.error
    (result,) = at.session_state["toy.trained"].values()
    assert result.steps == 300 and result.losses[-1] < result.losses[0]
    assert _charts(at) >= before + 4, "loss + DDPM, DDIM and pc panels"
    captions = [c.value for c in at.caption if c.value.startswith("MMD of the final samples")]
    assert len(captions) == 3
    assert len(at.table) == 1 and len(at.table[0].value) == 2, "mixture and diffusion side by side"
    at.slider(key="toy.rt").set_value(50).run()
    assert not at.exception
    assert at.query_params["data"] in ("swiss_roll", ["swiss_roll"]), "the data set is in the link"


def _opened_with(**params: str) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=300)
    for name, value in params.items():
        at.query_params[name] = value
    return at.run()


def test_the_torus_and_hostile_urls(app_env):
    at = _opened_with(data="../../etc/passwd", seed="-7", schedule="nonsense", t="99999")
    assert not at.exception
    assert at.session_state["toy.dataset"] == "swiss_roll" and at.session_state["toy.seed"] == 0
    assert at.session_state["toy.t"] == 0
    at.selectbox(key="toy.dataset").set_value("periodic_box").run()
    assert not at.exception
    assert any(r"\bmod 1" in latex.value for latex in at.latex), "the wrapped-normal forward step"


def test_a_link_reproduces_the_forward_view(app_env):
    at = _opened_with(data="two_moons", schedule="cosine", seed="3", t="40")
    assert not at.exception
    assert (at.session_state["toy.dataset"], at.session_state["toy.schedule"], at.session_state["toy.seed"],
            at.session_state["toy.t"]) == ("two_moons", "cosine", 3, 40)
    assert any("x_{40}" in latex.value for latex in at.latex)
