"""The Latent space page (issue #20, item 3) headless, on a tiny CDVAE trained in seconds: the map has one point
per validation crystal and its two colourings, a walk from A to B decodes N crystals and its slider moves the 3D
view, the property path has steps + 1 points and goes the asked way, bad input gets a message and keeps what
was on screen, and a folder without CDVAE models says how to train one."""
from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parent.parent
PAGE = str(ROOT / "pages" / "8_Latent_space.py")
PEROV_CSV = ROOT / "data" / "perov_5" / "val.csv.gz"


@pytest.fixture(scope="module")
def cdvae_dir(tmp_path_factory) -> Path:
    """A folder with one tiny CDVAE checkpoint (property head on heat_ref), trained by the CLI."""
    from diffusion.cli import main

    folder = tmp_path_factory.mktemp("cdvae_checkpoints")
    assert main(["train", "--family", "cdvae", "--data", str(PEROV_CSV), "--out", str(folder / "tiny_cdvae.pt"),
                 "--property", "heat_ref", "--hidden", "16", "--layers", "1", "--encoder-layers", "1",
                 "--latent-dim", "4", "--num-levels", "5", "--max-steps", "3", "--batch-size", "8", "--val-every", "3",
                 "--quiet"]) == 0
    return folder


@pytest.fixture
def cdvae_env(cdvae_dir, monkeypatch):
    monkeypatch.setenv("CRYSTAL_DIFFUSION_CHECKPOINTS", str(cdvae_dir))
    monkeypatch.setenv("CRYSTAL_DIFFUSION_WARM_UP", "0")
    return cdvae_dir


def _page() -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=300).run()
    assert not at.exception, at.exception
    return at


def _values(trace: dict, axis: str = "x") -> np.ndarray:
    """A trace's coordinates, plain or as plotly's base64 typed array."""
    value = trace[axis]
    if isinstance(value, dict) and "bdata" in value:
        return np.frombuffer(base64.b64decode(value["bdata"]), dtype=np.dtype(value["dtype"]))
    return np.asarray(value, float)


def _map(at: AppTest) -> dict:
    return json.loads(at.get("plotly_chart")[0].proto.spec)


def _traces(at: AppTest) -> dict[str, int]:
    return {trace.get("name", ""): len(_values(trace)) for trace in _map(at)["data"]}


def _validation_count(folder: Path) -> int:
    from diffusion import api
    return len(api.validation_crystals(api.load_card(folder / "tiny_cdvae.pt")))


def _decode(at: AppTest, points: int = 5) -> AppTest:
    at.number_input(key="lat.langevin").set_value(1)
    at.number_input(key="lat.points").set_value(points)
    at.button(key="lat.decode").click().run()
    assert not at.exception, at.exception
    return at


def test_the_map_shows_every_validation_crystal_coloured_by_the_property_or_an_element(cdvae_env):
    from explorer import latent_runs

    at = _page()
    assert not at.error
    assert any("latent space" in m.value for m in at.markdown), "the one-sentence introduction"
    expected = min(latent_runs.MAX_MAP, _validation_count(cdvae_env))
    figure = _map(at)
    (trace,) = figure["data"]
    assert len(_values(trace)) == expected, "one point per validation crystal"
    assert len(_values(trace, "y")) == expected
    assert "heat_ref" in json.dumps(trace["marker"]["colorbar"]), "coloured by the model's property"
    assert "formula" not in trace["text"][0] and "<b>" in trace["text"][0] and "heat_ref =" in trace["text"][0]
    assert "% of the variance" in figure["layout"]["xaxis"]["title"]["text"]
    assert figure["layout"]["xaxis"]["title"]["text"].startswith("PC1 (")
    assert any("2D projection (PCA)" in c.value and "4-dimensional" in c.value for c in at.caption)

    at.radio(key="lat.colour").set_value("element").run()
    assert not at.exception
    element = at.selectbox(key="lat.element").value
    counts = _traces(at)
    assert len(counts) == 2, "crystals with the element, crystals without"
    assert sum(counts.values()) == expected, "every crystal is in one of the two groups"
    assert any(name.startswith(f"contains {element}") for name in counts)
    other = next(e for e in at.selectbox(key="lat.element").options if e.split(" ")[0] != element).split(" ")[0]
    at.selectbox(key="lat.element").set_value(other).run()
    assert not at.exception
    assert any(name.startswith(f"contains {other}") for name in _traces(at))


def test_the_map_keeps_at_most_max_map_crystals(cdvae_env, monkeypatch):
    from explorer import latent_runs

    latent_runs.latent_map.clear()
    monkeypatch.setattr(latent_runs, "MAX_MAP", 40)
    try:
        at = _page()
        assert sum(_traces(at).values()) == 40
        assert len(at.selectbox(key="lat.a").options) == 40
    finally:
        latent_runs.latent_map.clear()


def test_a_walk_decodes_every_point_and_the_slider_moves_the_view(cdvae_env):
    at = _decode(_page(), points=5)
    assert not at.error
    walk = at.session_state["lat.walk"]
    assert len(walk.structures) == 5 and len(walk.matches) == 5 and walk.points.shape == (5, 2)
    assert all(len(s) >= 1 for s in walk.structures)
    views = at.get("iframe")
    assert len(views) == 1, "the walk's 3D view"
    view = views[0].proto.srcdoc
    assert '"followSlider":"Point on the walk"' in view and '"follow":"point"' in view
    assert at.query_params["point"] in ("0", ["0"])
    counts = _traces(at)
    assert counts["walk from A to B"] == 5 and counts["point 0 (shown in 3D)"] == 1

    at.slider(key="lat.point").set_value(3).run()
    assert not at.exception
    assert at.query_params["point"] in ("3", ["3"]), "the 3D view follows ?point="
    assert at.get("iframe")[0].proto.srcdoc == view, "moving the slider does not reload the view"
    assert any(m.value.startswith("**Point 3:") for m in at.markdown)
    assert "point 3 (shown in 3D)" in _traces(at)
    current = next(t for t in _map(at)["data"] if t.get("name") == "point 3 (shown in 3D)")
    assert np.allclose([_values(current)[0], _values(current, "y")[0]], walk.points[3], atol=1e-5)

    at.number_input(key="lat.points").set_value(7)
    at.button(key="lat.decode").click().run()
    assert not at.exception
    assert len(at.session_state["lat.walk"].structures) == 7 and at.slider(key="lat.point").max == 6
    assert at.slider(key="lat.point").value == 0, "a new walk starts at A"


def test_the_property_path_goes_the_asked_way(cdvae_env):
    at = _page()
    at.number_input(key="lat.langevin").set_value(1)
    at.number_input(key="lat.steps").set_value(30)
    at.button(key="lat.optimise").click().run()
    assert not at.exception and not at.error
    down = at.session_state["lat.opt"]
    assert len(down.predicted) == 31 and down.points.shape == (31, 2)
    assert down.predicted[-1] < down.predicted[0], "lower"
    assert down.picks[0] == 0 and down.picks[-1] == 30 and len(down.structures) == len(down.picks) == 5
    counts = _traces(at)
    assert counts["property optimisation"] == 31 and counts["decoded along it"] == 5
    assert len(at.get("plotly_chart")) == 2, "the map and the predicted property per step"
    assert at.get("iframe"), "the crystals decoded along the path"
    assert any("predicted heat_ref" in c.value for c in at.caption)

    at.radio(key="lat.direction").set_value("higher").run()
    at.button(key="lat.optimise").click().run()
    assert not at.exception and not at.error
    up = at.session_state["lat.opt"]
    assert up.predicted[-1] > up.predicted[0], "higher"


def test_bad_input_gives_a_message_and_keeps_the_earlier_result(cdvae_env):
    at = _decode(_page(), points=5)
    kept = at.session_state["lat.walk"]
    at.selectbox(key="lat.b").set_value(at.selectbox(key="lat.a").value)
    at.button(key="lat.decode").click().run()
    assert not at.exception
    assert any("same crystal" in e.value for e in at.error)
    assert at.session_state["lat.walk"] is kept and at.get("iframe"), "the earlier walk stays on screen"

    at.selectbox(key="lat.b").set_value((at.selectbox(key="lat.a").value + 1) % 10).run()
    at.button(key="lat.decode").click().run()
    assert not at.exception and not at.error, "a good decode clears the message"


def test_without_a_cdvae_model_the_page_says_how_to_train_one(app_env):
    at = _page()
    assert not at.error
    (info,) = at.info
    assert "crystal-diffusion train --family cdvae" in info.value and "--property heat_ref" in info.value
    assert not at.get("plotly_chart")
