"""AppTest: the equations beside the picture (Forward process, Generate) and the slide exports."""
from __future__ import annotations

import io
import math
from pathlib import Path

from PIL import Image
from streamlit.testing.v1 import AppTest

from diffusion import make_schedule
from explorer.equations import number

ROOT = Path(__file__).resolve().parent.parent


def _latex(at: AppTest) -> str:
    return "\n".join(e.value for e in at.latex)


def _generate_with(at: AppTest, sampler: str, steps: int = 8):
    """Pick a sampler and a step count on Generate, run it, and return the new result."""
    at.selectbox(key="gen.sampler").set_value(sampler).run()
    at.number_input(key="gen.steps").set_value(steps)
    at.button(key="gen.go").click().run()
    assert not at.exception and not at.error
    return at.session_state["gen.results"][-1]


def test_forward_equations_follow_the_slider(app_env):
    at = AppTest.from_file(str(ROOT / "pages" / "2_Forward_process.py"), default_timeout=120).run()
    assert not at.exception
    cosine = make_schedule("cosine", 1000)
    at.slider(key="fwd.t").set_value(700).run()
    assert not at.exception
    text = _latex(at)
    assert "x_{700}" in text and "x_{699}" in text
    assert number(math.sqrt(float(cosine.abar[700]))) in text, "sqrt(abar_t) at the slider's t"
    assert number(float(cosine.sigma[700])) in text, "sigma_t of the wrapped normal"
    at.slider(key="fwd.t").set_value(200).run()
    moved = _latex(at)
    assert moved != text and "x_{200}" in moved and number(math.sqrt(float(cosine.abar[200]))) in moved
    assert any("Glossary" in e.label for e in at.expander)


def test_generate_equations_follow_the_slider_and_exports(app_env):
    at = AppTest.from_file(str(ROOT / "pages" / "3_Generate.py"), default_timeout=120).run()
    result = _generate_with(at, "ddpm")
    schedule = result.schedule
    assert schedule.num_steps == 50
    text = _latex(at)
    assert "x_{0}" in text and "x_{1}" in text and "z = 0" in text, "at t = 0: the last update"
    at.select_slider(key=f"gen.t.{result.id}").set_value(43).run()
    assert not at.exception
    moved = _latex(at)
    assert moved != text
    assert r"\alpha_{43|36}" in moved and number(float(schedule.abar[43] / schedule.abar[36])) in moved
    assert number(float(schedule.sigma[43])) in moved and number(float(schedule.sigma[36])) in moved
    ddim = _generate_with(at, "ddim")
    at.select_slider(key=f"gen.t.{ddim.id}").set_value(43).run()
    assert r"\hat x_0" in _latex(at) and r"\sqrt{\beta" not in _latex(at), "DDIM shows its own update"
    assert any("Glossary" in e.label for e in at.expander)

    labels = [b.label for b in at.get("download_button")]
    assert any("GIF" in label for label in labels) and any("PNG" in label for label in labels)
    from explorer.downloads import export_picture
    gif = Image.open(io.BytesIO(export_picture(ddim, "gif", 4)))
    assert gif.n_frames == 4 and gif.size == (480, 480)
    assert export_picture(ddim, "gif", 4) is export_picture(ddim, "gif", 4), "cached"
    assert Image.open(io.BytesIO(export_picture(ddim, "png", 3))).size == (3 * 320, 320)


def test_generate_pc_uses_and_shows_the_models_own_corrector_step(checkpoint_dir, tmp_path, monkeypatch):
    """A checkpoint whose pc step size was chosen by benchmarks/corrector_step.py: Generate samples with
    it and its equation panel shows that eta, not the 5e-7 default."""
    import shutil

    from diffusion.checkpoints import set_corrector_step_lr
    for suffix in (".pt", ".json"):
        shutil.copy(checkpoint_dir / f"tiny_csp{suffix}", tmp_path / f"tiny_csp{suffix}")
    set_corrector_step_lr(tmp_path / "tiny_csp.pt", 3e-5, {"command": "test", "at_step": 20, "rows": []})
    monkeypatch.setenv("CRYSTAL_DIFFUSION_CHECKPOINTS", str(tmp_path))
    at = AppTest.from_file(str(ROOT / "pages" / "3_Generate.py"), default_timeout=120).run()
    result = _generate_with(at, "pc")
    assert result.step_lr == 3e-5
    at.select_slider(key=f"gen.t.{result.id}").set_value(43).run()
    text = _latex(at)
    assert rf"\eta = {number(3e-5)}" in text and rf"\eta = {number(5e-7)}" not in text
