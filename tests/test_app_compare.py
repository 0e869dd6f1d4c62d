"""AppTest of the Compare page with the tiny checkpoints (T = 50) from conftest, and its pure helpers."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from conftest import numbers_tables

from diffusion.trajectory import nearest_frame as frame_at
from explorer.comparison import common_steps, split_settings
from explorer.settings import GenerateSettings

ROOT = Path(__file__).resolve().parent.parent
PAGE = str(ROOT / "pages" / "5_Compare.py")


def _page() -> AppTest:
    return AppTest.from_file(PAGE, default_timeout=120).run()


def _views(at: AppTest) -> list[dict]:
    """The JSON each 3D view draws (all frames of its trajectory)."""
    out = []
    for frame in at.get("iframe"):
        doc = frame.proto.srcdoc
        out.append(json.JSONDecoder().raw_decode(doc, doc.index('{"frames":'))[0])
    return out


def _tables(at: AppTest) -> list[dict[str, str]]:
    return numbers_tables(at)


def _figure(at: AppTest) -> dict:
    charts = at.get("plotly_chart")
    assert len(charts) == 1, "both runs' diagnostics are in ONE figure"
    return json.loads(charts[0].proto.spec)


def _compare(at: AppTest) -> AppTest:
    return at.button(key="cmp.go").click().run()


def test_samplers_side_by_side_under_one_slider(app_env):
    at = _page()
    assert not at.exception
    assert at.selectbox(key="cmp.model").value == "tiny_csp"
    assert not at.get("iframe"), "nothing is drawn before the first comparison"
    at.radio(key="cmp.diff").set_value("steps").run()
    at.number_input(key="cmp.left.steps").set_value(5)
    at.number_input(key="cmp.right.steps").set_value(12)
    at.selectbox(key="cmp.sampler").set_value("ddim")
    _compare(at)
    assert not at.exception and not at.error
    comparison = at.session_state["cmp.results"][-1]
    assert comparison.left.settings.steps == 5 and comparison.right.settings.steps == 12
    assert comparison.left.settings.seed == comparison.right.settings.seed, "everything else is shared"
    views = _views(at)
    assert len(views) == 2, "two 3D viewers"
    assert len(views[0]["frames"]) == 6 and len(views[1]["frames"]) == 13
    assert all(v["followSlider"].startswith("Step t of both reverse processes") for v in views)
    slider = at.select_slider(key=f"cmp.t.{comparison.id}")
    options = [int(o) for o in slider.options]
    assert options[0] == 50 and options[-1] == 0 and slider.value == 0
    assert set(views[0]["steps"]) | set(views[1]["steps"]) == set(options)

    figure = _figure(at)
    names = {trace.get("name") for trace in figure["data"]}
    assert {"DDIM, 5 steps", "DDIM, 12 steps"} <= names, "both runs overlaid"
    titles = {a["text"] for a in figure["layout"]["annotations"]}
    assert {"cell volume (Å³)", "shortest distance (Å)", "|ε̂| lattice noise predicted"} <= titles

    final_tables = _tables(at)
    assert len(final_tables) == 2
    middle = options[len(options) // 2]
    at.select_slider(key=f"cmp.t.{comparison.id}").set_value(middle).run()
    assert not at.exception
    assert at.query_params["t"] in (str(middle), [str(middle)]), "both views follow ?t="
    tables = _tables(at)
    for index, side in enumerate((comparison.left, comparison.right)):
        k = frame_at(side.steps, middle)
        assert tables[index]["step shown"].startswith(f"{side.steps[k]} (frame {k + 1} of")
        assert tables[index]["a, b, c (Å)"] != final_tables[index]["a, b, c (Å)"]
    markers = [trace for trace in _figure(at)["data"] if trace.get("mode") == "markers"]
    assert len(markers) == 8, "a marker per run in each of the four panels"
    assert {m["x"][0] for m in markers} == {comparison.left.steps[frame_at(comparison.left.steps, middle)],
                                          comparison.right.steps[frame_at(comparison.right.steps, middle)]}


def test_seeds_and_guidance(app_env):
    at = _page()
    at.radio(key="cmp.diff").set_value("seed").run()
    at.number_input(key="cmp.steps").set_value(6)
    at.number_input(key="cmp.left.seed").set_value(3)
    at.number_input(key="cmp.right.seed").set_value(4)
    _compare(at)
    assert not at.exception and not at.error
    comparison = at.session_state["cmp.results"][-1]
    assert (comparison.left.settings.seed, comparison.right.settings.seed) == (3, 4)
    left, right = _views(at)
    assert left["frames"][-1] != right["frames"][-1], "different seeds, different crystals"

    at.radio(key="cmp.diff").set_value("guidance").run()
    at.slider(key="cmp.guidance").set_value(1.5)
    _compare(at)
    assert not at.exception and not at.error
    comparison = at.session_state["cmp.results"][-1]
    assert comparison.left.settings.prop is None and comparison.left.settings.guidance == 0.0
    assert comparison.right.settings.prop is not None and comparison.right.settings.guidance == 1.5
    assert comparison.right.label.startswith("heat_ref = ") and comparison.left.label == "no guidance"
    assert len(at.session_state["cmp.results"]) == 2, "the earlier comparison stays in the session"
    assert len(at.get("iframe")) == 2


def test_bad_composition_keeps_the_earlier_comparison(app_env):
    at = _page()
    at.number_input(key="cmp.steps").set_value(4)
    _compare(at)
    assert not at.error
    views = [f.proto.srcdoc for f in at.get("iframe")]
    at.text_input(key="cmp.composition").set_value("SrXx3").run()
    assert any("unknown element 'Xx'" in e.value for e in at.error)
    _compare(at)
    assert not at.exception
    assert any("Nothing compared" in e.value for e in at.error)
    assert len(at.session_state["cmp.results"]) == 1
    assert [f.proto.srcdoc for f in at.get("iframe")] == views, "the earlier comparison is still shown"
    at.text_input(key="cmp.composition").set_value("SrTiO3").run()
    at.radio(key="cmp.diff").set_value("seed").run()
    at.number_input(key="cmp.right.seed").set_value(0).run()
    _compare(at)
    assert any("left and right are the same" in e.value for e in at.error)
    assert len(at.session_state["cmp.results"]) == 1


def test_ab_initio_model_has_no_guidance_choice(app_env):
    at = _page()
    at.selectbox(key="cmp.model").set_value("tiny_gen").run()
    assert not at.exception
    assert "guidance" not in at.radio(key="cmp.diff").options
    assert "start" not in at.radio(key="cmp.diff").options, "ab initio models have no composition to template"
    at.number_input(key="cmp.num_atoms").set_value(4)
    at.number_input(key="cmp.steps").set_value(5)
    _compare(at)
    assert not at.exception and not at.error
    assert at.session_state["cmp.results"][-1].task == "gen"
    assert _views(at)[0]["frames"][0]["M"] == [1, 1, 1, 1], "undecided types drawn grey at t = T"


def test_helpers():
    assert common_steps([50, 25, 0], [50, 40, 30, 0]) == [50, 40, 30, 25, 0]
    assert frame_at([50, 25, 0], 40) == 0 and frame_at([50, 25, 0], 30) == 1 and frame_at([50, 25, 0], 5) == 2
    assert frame_at([50, 30, 10, 0], 20) == 1, "a tie goes to the earlier (noisier) frame, as in the browser"
    base = GenerateSettings(model="m", prop=0.5, guidance=2.0)
    left, right = split_settings(base, "guidance")
    assert left.prop is None and left.guidance == 0.0 and right == base
    left, right = split_settings(base, "sampler", "ddpm", "pc")
    assert (left.sampler, right.sampler) == ("ddpm", "pc") and left.replace(sampler="pc") == right
    with pytest.raises(ValueError, match="property target"):
        split_settings(base.replace(prop=None), "guidance")
    with pytest.raises(ValueError, match="unknown difference"):
        split_settings(base, "model")


def test_both_new_pages_are_in_the_navigation(app_env):
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120).run()
    assert not at.exception
    assert any("two runs that differ in one thing" in c.value for c in at.caption), "home lists Compare"
    assert any("train a tiny model" in c.value for c in at.caption), "home lists Train"
    for page in ("pages/5_Compare.py", "pages/6_Train.py"):
        at.switch_page(page).run()
        assert not at.exception, page


def test_noise_against_a_known_crystal(app_env):
    at = _page()
    at.radio(key="cmp.diff").set_value("start").run()
    assert not at.exception
    assert any(c.value.startswith("Template: ") for c in at.caption)
    at.slider(key="cmp.right.start").set_value(20)
    at.selectbox(key="cmp.sampler").set_value("ddim")
    at.number_input(key="cmp.steps").set_value(10)
    _compare(at)
    assert not at.exception and not at.error
    comparison = at.session_state["cmp.results"][-1]
    assert comparison.left.settings.template_step is None and comparison.right.settings.template_step == 20
    assert (comparison.left.label, comparison.right.label) == ("from noise", "from a known crystal, t0 = 20")
    left, right = _views(at)
    assert left["steps"][0] == 50 and right["steps"][0] == 20, "the template run starts at t0"
    label = at.select_slider(key=f"cmp.t.{comparison.id}").label
    assert "starts at t0 = 20" in label and label.startswith(left["followSlider"]), "the views still find the slider"


def test_split_settings_for_the_start():
    base = GenerateSettings(model="m", sampler="ddim", steps=100)
    left, right = split_settings(base, "start", None, 300)
    assert left.template_step is None and right.template_step == 300 and left.replace(template_step=300) == right


def test_free_mode_any_settings_differ_and_play(app_env):
    """The lesson's comparison, DDPM with many steps against DDIM with few, plus another seed and a template
    start: free mode lets every setting differ; Play and the step buttons drive both views."""
    at = _page()
    at.radio(key="cmp.diff").set_value("free").run()
    at.selectbox(key="cmp.left.sampler").set_value("ddpm")
    at.number_input(key="cmp.left.steps").set_value(20)
    at.selectbox(key="cmp.right.sampler").set_value("ddim")
    at.number_input(key="cmp.right.steps").set_value(5)
    at.number_input(key="cmp.right.seed").set_value(3)
    at.checkbox(key="cmp.right.from_template").check().run()
    assert not at.exception and not at.error
    _compare(at)
    assert not at.exception and not at.error
    comparison = at.session_state["cmp.results"][-1]
    left, right = comparison.left.settings, comparison.right.settings
    assert (left.sampler, left.steps, left.template_step) == ("ddpm", 20, None)
    assert (right.sampler, right.steps, right.seed) == ("ddim", 5, 3) and right.template_step is not None
    assert "DDPM, 20 steps" in comparison.left.label and "from a known crystal" in comparison.right.label
    key = f"cmp.t.{comparison.id}"
    at.button(key="cmp.first").click().run()
    assert at.session_state[key] == comparison.steps[0]
    at.button(key="cmp.next").click().run()
    assert at.session_state[key] == comparison.steps[1]
    at.button(key="cmp.play").click().run()
    assert not at.exception and at.session_state["cmp.playing"]


def test_same_settings_on_both_sides_is_refused(app_env):
    at = _page()
    at.radio(key="cmp.diff").set_value("free").run()
    for side in ("left", "right"):
        at.selectbox(key=f"cmp.{side}.sampler").set_value("ddim")
        at.number_input(key=f"cmp.{side}.steps").set_value(5)
        at.number_input(key=f"cmp.{side}.seed").set_value(0)
    _compare(at.run())
    assert any("left and right are the same" in e.value for e in at.error)
    assert not at.session_state["cmp.results"], "nothing sampled"


def test_space_group_field_for_a_space_group_model(monkeypatch):
    monkeypatch.delenv("CRYSTAL_DIFFUSION_CHECKPOINTS", raising=False)
    at = _page()
    assert at.session_state["cmp.model"] == "mp_20"
    at.text_input(key="cmp.sg_text").set_value("Pm-3m").run()
    assert not at.exception and not at.error
    assert any("221" in c.value for c in at.caption), "the shared field names the group it asks for"
    assert at.slider(key="cmp.guidance"), "a guidance scale toward the group"


def test_model_family_diffusion_against_cdvae_under_one_slider(app_env_cdvae):
    """"Model family": the diffusion model's run on the left, a CDVAE decoding the same composition on the right,
    its Langevin steps spread over the diffusion run's 0..T; one slider moves both."""
    at = _page()
    assert "Model family: diffusion vs CDVAE" in at.radio(key="cmp.diff").options
    at.radio(key="cmp.diff").set_value("family").run()
    assert not at.exception
    assert at.selectbox(key="cmp.cdvae").value == "tiny_cdvae"
    at.number_input(key="cmp.langevin_steps").set_value(2)
    at.number_input(key="cmp.steps").set_value(10)
    _compare(at)
    assert not at.exception and not at.error
    comparison = at.session_state["cmp.results"][-1]
    left, right = comparison.sides
    assert left.settings.sampler != "langevin" and right.settings.sampler == "langevin"
    assert right.settings.given_composition and right.trajectory.num_frames == 5 * 2 + 1
    assert sorted(right.trajectory.element_numbers(right.trajectory.num_frames - 1).tolist()) == \
        sorted(left.trajectory.element_numbers(left.trajectory.num_frames - 1).tolist()), "the same atoms"
    assert right.steps[0] == 50 and right.steps[-1] == 0, "spread over the diffusion model's T"
    assert "CDVAE tiny_cdvae" in right.label and "diffusion tiny_csp" in left.label
    assert len(_views(at)) == 2
    assert any("normalized progress" in c.value for c in at.caption)


def test_the_family_choice_needs_a_cdvae(app_env):
    at = _page()
    assert "Model family: diffusion vs CDVAE" not in at.radio(key="cmp.diff").options
