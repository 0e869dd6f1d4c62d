"""AppTest of the Generate page with the tiny checkpoints (T = 50) from conftest."""
from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

from conftest import numbers_tables

from diffusion.space_group_prediction import NO_PROTOTYPE_MATCH

ROOT = Path(__file__).resolve().parent.parent
PAGE = str(ROOT / "pages" / "3_Generate.py")


def _page(**query) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=120)
    for key, value in query.items():
        at.query_params[key] = value
    return at.run()


def _srcdoc(at: AppTest) -> str:
    frames = at.get("iframe")
    assert frames, "no 3D view on the page"
    return frames[0].proto.srcdoc


def _view_data(at: AppTest) -> dict:
    """The JSON the 3D view draws (all frames of the trajectory)."""
    import json

    doc = _srcdoc(at)
    return json.JSONDecoder().raw_decode(doc, doc.index('{"frames":'))[0]


def _numbers(at: AppTest) -> dict[str, str]:
    return numbers_tables(at)[0]


def _generate(at: AppTest, steps: int = 8) -> AppTest:
    at.number_input(key="gen.steps").set_value(steps)
    return at.button(key="gen.go").click().run()


def test_generate_then_scrub_changes_view_numbers_and_url(app_env):
    at = _page()
    assert not at.exception
    assert at.selectbox(key="gen.model").value == "tiny_csp"
    assert not at.get("iframe"), "nothing is drawn before the first run"
    _generate(at)
    assert not at.exception and not at.error
    assert len(at.session_state["gen.results"]) == 1
    slider = at.select_slider(key="gen.t.1")
    options = [int(o) for o in slider.options]
    assert options[0] == 50 and options[-1] == 0 and slider.value == 0
    final_view, final_numbers = _srcdoc(at), _numbers(at)
    assert "/app/static/3Dmol-min.js" in final_view and "cdn" not in final_view.lower()
    data = _view_data(at)
    assert data["steps"] == options and len(data["frames"]) == len(options), "the view holds every frame"
    assert data["follow"] == "t" and data["followSlider"].startswith("Step t of the reverse process")
    middle = options[len(options) // 2]
    at.select_slider(key="gen.t.1").set_value(middle).run()
    assert not at.exception
    assert _srcdoc(at) == final_view, "scrubbing does not reload the 3D view; it follows ?t="
    assert at.query_params["t"] in (str(middle), [str(middle)])
    assert _numbers(at)["step t"] == f"{middle} of 50"
    assert _numbers(at)["a, b, c (Å)"] != final_numbers["a, b, c (Å)"]
    assert f'"x":[{middle}]' in at.get("plotly_chart")[0].proto.spec.replace(" ", ""), "diagnostics marker at t"
    assert at.query_params["formula"] in ("SrTiO3", ["SrTiO3"])


def test_bad_formula_shows_error_and_keeps_results(app_env):
    at = _generate(_page())
    view = _srcdoc(at)
    at.text_input(key="gen.composition").set_value("SrXx3").run()
    assert any("unknown element 'Xx'" in e.value for e in at.error)
    at.button(key="gen.go").click().run()
    assert not at.exception
    assert any("Nothing generated" in e.value for e in at.error)
    assert len(at.session_state["gen.results"]) == 1
    assert _srcdoc(at) == view, "the earlier result is still shown"
    at.text_input(key="gen.composition").set_value("Sr2Ti2O6").run()
    assert any("at most 5" in e.value for e in at.error), "too many atoms for this model"
    at.text_input(key="gen.composition").set_value("Ti(O").run()
    assert any("unbalanced" in e.value for e in at.error)


def test_query_params_restore_settings_and_step(app_env):
    at = _page(model="tiny_csp", formula="SrTiO3", sampler="ddim", steps="8", seed="3", t="29")
    assert not at.exception and not at.warning
    assert at.text_input(key="gen.composition").value == "SrTiO3"
    assert at.number_input(key="gen.steps").value == 8
    assert at.number_input(key="gen.seed").value == 3
    results = at.session_state["gen.results"]
    assert len(results) == 1, "a shared link reproduces its trajectory right away"
    assert at.select_slider(key=f"gen.t.{results[0].id}").value == 29
    assert _numbers(at)["step t"] == "29 of 50"


def test_bfloat16_precision_from_the_widget_runs_and_is_kept_in_the_link(app_env):
    at = _page()
    at.selectbox(key="gen.precision").set_value("bfloat16").run()
    _generate(at)
    assert not at.exception and not at.error
    result = at.session_state["gen.results"][0]
    assert result.settings.precision == "bfloat16" and at.query_params["precision"] in ("bfloat16", ["bfloat16"])
    again = _page(**{k: at.query_params[k] for k in at.query_params})
    assert not again.exception and again.selectbox(key="gen.precision").value == "bfloat16"


def test_bad_query_params_warn_and_do_not_break(app_env):
    at = _page(model="nope", steps="abc", sg="999", sampler="magic", template="0")
    assert not at.exception
    warnings = " ".join(w.value for w in at.warning)
    assert "no model 'nope'" in warnings and "'steps=abc'" in warnings and "sampler" in warnings
    assert "'template=0' must be between 1 and" in warnings
    assert not at.session_state["gen.results"], "nothing generated from a broken link"
    assert at.selectbox(key="gen.model").value == "tiny_csp"


def test_ab_initio_model_shows_undecided_types(app_env):
    at = _page()
    at.selectbox(key="gen.model").set_value("tiny_gen").run()
    assert not at.exception
    at.number_input(key="gen.num_atoms").set_value(4)
    _generate(at, steps=6)
    assert not at.exception and not at.error
    result = at.session_state["gen.results"][-1]
    assert result.task == "gen"
    data = _view_data(at)
    assert data["frames"][0]["M"] == [1, 1, 1, 1], "at t = T every type is undecided (drawn grey)"
    assert "M" not in data["frames"][-1], "at t = 0 every type is decided"
    at.select_slider(key=f"gen.t.{result.id}").set_value(50).run()
    assert any("undecided atom" in list(df.value.columns) for df in at.dataframe)
    assert any("0 of 4 decided" in m.value for m in at.markdown)
    at.select_slider(key=f"gen.t.{result.id}").set_value(0).run()
    assert any("4 of 4 decided" in m.value for m in at.markdown)


def test_play_advances_and_pause_stops(app_env):
    at = _generate(_page())
    at.button(key="gen.play").click().run()
    assert at.session_state["gen.playing"] is True
    assert at.select_slider(key="gen.t.1").value == 43, "play restarts from T and advances one frame"
    at.button(key="gen.play").click().run()
    assert at.session_state["gen.playing"] is False


def test_example_buttons_and_ghost(app_env):
    at = _page()
    buttons = {b.key: b for b in at.button}
    assert buttons["gen.example.nacl"].disabled, "no offered model knows Cl"
    at.number_input(key="gen.steps").set_value(8).run()
    at.button(key="gen.example.srtio3").click().run()
    assert not at.exception and not at.error
    result = at.session_state["gen.results"][-1]
    # the example brings its own sampler: predictor-corrector, 100 steps (the tiny model's T is 50)
    assert result.settings.composition == "SrTiO3" and (result.settings.sampler, result.settings.steps) == ("pc", 50)
    assert at.session_state["gen.sampler"] == "pc"
    assert any("predictor-corrector, 50 steps" in c.value for c in at.caption), "the note names the sampler"
    at.select_slider(key=f"gen.t.{result.id}").set_value(29).run()
    assert _view_data(at)["ghosts"] is None
    at.toggle(key="gen.ghost").set_value(True).run()
    ghosts = _view_data(at)["ghosts"]
    assert ghosts and len(ghosts) == len(_view_data(at)["frames"]), "the predicted x0 of every step, drawn faint"
    at.selectbox(key="gen.supercell").set_value(2).run()
    assert _view_data(at)["supercell"] == [2, 2, 2]


def test_start_from_a_template_runs_below_t0_and_survives_the_link(app_env):
    at = _page()
    at.radio(key="gen.start").set_value("template").run()
    assert not at.exception
    assert any(c.value.startswith("Template: ") for c in at.caption), "the page names the template it will use"
    at.slider(key="gen.template_step").set_value(20).run()
    _generate(at, steps=10)
    assert not at.exception and not at.error
    options = [int(o) for o in at.select_slider(key="gen.t.1").options]
    assert options[0] == 20 and options[-1] == 0, "the trajectory starts at t0, not at T"
    assert "t0 = 20" in at.select_slider(key="gen.t.1").label
    assert _view_data(at)["followSlider"] and at.select_slider(key="gen.t.1").label.startswith(_view_data(at)["followSlider"])
    assert at.query_params["template"] in ("20", ["20"])
    assert "template from t0 20" in at.session_state["gen.results"][0].settings.summary("csp")
    # the link reproduces the run; a composition without a cousin is refused without losing the result
    again = _page(**{k: at.query_params[k] for k in at.query_params})
    assert not again.exception and again.radio(key="gen.start").value == "template"
    assert [int(o) for o in again.select_slider(key=f"gen.t.{again.session_state['gen.results'][0].id}").options][0] == 20
    at.text_input(key="gen.composition").set_value("SrTiO2").run()
    assert any(f"{NO_PROTOTYPE_MATCH}, so there is no template" in w.value for w in at.warning), "the CLI's words"
    at.button(key="gen.go").click().run()
    assert not at.exception and any("Nothing generated" in e.value for e in at.error)
    assert len(at.session_state["gen.results"]) == 1


def test_a_cdvae_model_decodes_by_langevin_under_the_same_slider(app_env_cdvae):
    """Generate with a CDVAE: its Langevin steps under the slider, the 3D view and numbers, the Langevin equation
    with the live step size and level, a link that reproduces it; switching back to a diffusion model works."""
    at = _page()
    assert "tiny_cdvae (CDVAE)" in at.selectbox(key="gen.model").options
    at.selectbox(key="gen.model").set_value("tiny_cdvae").run()
    assert not at.exception
    assert at.number_input(key="gen.steps").value == 10 and at.number_input(key="gen.num_atoms").value == 0
    at.number_input(key="gen.steps").set_value(2)
    at.button(key="gen.go").click().run()
    assert not at.exception and not at.error
    result = at.session_state["gen.results"][-1]
    assert result.task == "cdvae" and result.trajectory.num_frames == 5 * 2 + 1
    options = [int(o) for o in at.select_slider(key=f"gen.t.{result.id}").options]
    assert options == list(range(10, -1, -1))
    text = " ".join(m.value for m in at.markdown)
    assert "Langevin update" in text
    latex = " ".join(e.value for e in at.get("latex") or [] if hasattr(e, "value"))
    assert r"\gamma_l = \eta\,\sigma_l^2" in latex and "l = 1" in latex, "the last update is at the narrowest level"
    at.select_slider(key=f"gen.t.{result.id}").set_value(10).run()
    assert not at.exception and "The start" in " ".join(m.value for m in at.markdown)
    assert _numbers(at)["Langevin steps left"] == "10 of 10"
    query = {k: at.query_params[k] for k in at.query_params}
    assert query["sampler"] in ("langevin", ["langevin"]) and query["model"] in ("tiny_cdvae", ["tiny_cdvae"])
    # the link reopens the same crystal
    again = _page(**{k: (v[0] if isinstance(v, list) else v) for k, v in query.items()})
    assert not again.exception and not again.warning
    assert torch_equal(again.session_state["gen.results"][-1].trajectory.frac_coords, result.trajectory.frac_coords)
    at.selectbox(key="gen.model").set_value("tiny_csp").run()
    assert not at.exception
    assert at.number_input(key="gen.steps").value > 2, "a diffusion sampler's steps, not Langevin steps per level"


def torch_equal(a, b) -> bool:
    import torch
    return bool(torch.equal(a, b))


def test_generate_goes_through_the_servers_shared_sampler(app_env):
    # every session's diffusion run joins one SharedSampler, so a class pressing Generate together shares
    # network calls (tests/test_shared_sampling.py checks what sharing gives each caller)
    from explorer.models import shared_sampler

    before = shared_sampler().stats.requests
    at = _page()
    at.number_input(key="gen.seed").set_value(5)
    _generate(at)
    assert not at.exception and not at.error
    assert shared_sampler().stats.requests == before + 1
    assert at.session_state["gen.results"][-1].trajectory.seed == 5
