"""Issue #24 ("ready for the projector"), without a browser: the periodic-image rule of the 3D view,
equations re-laid out to fit a column, projector mode and the thread count in the sidebar, the batch
relaxation's time estimate and the Batch page's starting composition."""
from __future__ import annotations

import json
import re
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from streamlit.testing.v1 import AppTest

from diffusion import Crystal, ForwardSetup, forward_noise, make_schedule
from explorer.equation_view import fit_rows
from explorer.equations import forward_panels, reverse_panels
from explorer.examples import example_structure
from explorer.viewer import (ViewFrame, ViewOptions, image_positions, image_translations, reference_index,
                             trajectory_html)

ROOT = Path(__file__).resolve().parent.parent


# ---------------------------------------------------------------- periodic images

def _forward_frames(steps: list[int]) -> tuple[Crystal, list]:
    crystal = Crystal.from_structure(example_structure("SrTiO3"))
    setup = ForwardSetup(schedule="cosine", num_steps=1000)
    return crystal, [forward_noise(crystal, t, setup, seed=0) for t in steps]


@pytest.mark.parametrize("supercell", [(1, 1, 1), (2, 2, 2)])
def test_the_image_rule_draws_the_same_atoms_at_t0_and_t1(supercell):
    """A perovskite at t = 0 shows 8 corner Sr and 6 face O; at t = 1 it must show the same copies,
    each moved only as far as its atom moved (not 1 Sr and 3 O)."""
    crystal, (clean, noisy) = _forward_frames([0, 1])
    reference = clean.frac_coords.numpy()
    translations = image_translations(reference, supercell, boundary=0.02)
    at0, index0 = image_positions(reference, clean.lattice.numpy(), reference, translations, supercell)
    at1, index1 = image_positions(noisy.frac_coords.numpy(), noisy.lattice.numpy(), reference, translations, supercell)
    assert index0.tolist() == index1.tolist(), "the same atoms, the same number of copies each"
    if supercell == (1, 1, 1):
        assert np.bincount(index0).tolist() == [8, 1, 2, 2, 2], "Sr on 8 corners, Ti once, O on both faces"
    assert np.abs(at1 - at0).max() < 0.1, "every copy stays where it was (angstrom)"


def test_a_noisy_atom_keeps_its_copies_and_comes_back_inside():
    """Far into the noise an atom keeps the copies of its clean position, moved together, and an
    atom that left the cell is drawn where it re-entered (the wrapped normal)."""
    crystal, frames = _forward_frames([0, 500, 1000])
    reference = frames[0].frac_coords.numpy()
    translations = image_translations(reference, (1, 1, 1), boundary=0.02)
    counts = [np.bincount(image_positions(f.frac_coords.numpy(), f.lattice.numpy(), reference, translations)[1]).tolist()
              for f in frames]
    assert counts[0] == counts[1] == counts[2]
    single = image_translations(np.array([[0.5, 0.5, 0.5]]), (1, 1, 1), boundary=0.02)
    cart, _ = image_positions(np.array([[1.2, -0.3, 0.5]]), np.eye(3), np.array([[0.5, 0.5, 0.5]]), single)
    assert np.allclose(cart, [[0.2, 0.7, 0.5]]), "an inner atom is wrapped into the cell"


def test_trajectory_view_decides_the_copies_once_on_the_clean_frame():
    crystal, frames = _forward_frames([0, 1, 2])
    view = [ViewFrame(f.lattice.numpy(), f.frac_coords.numpy(), f.atomic_numbers.numpy()) for f in frames]
    html = trajectory_html(view, [0, 1, 2], options=ViewOptions(boundary=0.02))
    data = json.JSONDecoder().raw_decode(html, html.index('{"frames":'))[0]
    assert [f["I"] for f in data["frames"]] == [0, 0, 0], "every frame uses the one image set"
    assert len(data["imageSets"]) == 1 and data["imageSets"][0]["T"][0] == [[0, 1], [0, 1], [0, 1]], "Sr on corners"
    assert reference_index([1000, 500, 0]) == 2 and reference_index([0, 1, 2]) == 0 and reference_index([5, 3]) == 1
    assert "copies on the faces" in html and "requestFullscreen" in html and 'class="legend"' in html


# ---------------------------------------------------------------- equations that fit

NUMBER = re.compile(r"\d+\.\d+|\d+\\times 10\^\{-?\d+\}")


def _all_latex():
    schedule = make_schedule("cosine", 1000)
    panels = forward_panels(schedule, 0) + forward_panels(schedule, 100)
    for sampler in ("ddpm", "pc", "ddim"):
        panels += reverse_panels(schedule, 100, 990, sampler, "gen", 1.5) + reverse_panels(schedule, None, 0, sampler)
    return [line for panel in panels for line in panel.latex]


def test_fit_rows_keeps_every_number_and_breaks_the_long_lines():
    for latex in _all_latex():
        rows = fit_rows(latex)
        assert "aligned" not in rows and "&" not in rows and r"\qquad" not in rows
        assert sorted(NUMBER.findall(rows)) == sorted(NUMBER.findall(latex)), latex
        assert rows.count("{") == rows.count("}")


def test_fit_rows_keeps_a_continuation_with_its_equation():
    latex = (r"\begin{aligned}x_{s} &= a + b,\qquad \alpha = 0.5\\&= c + d,\qquad \hat x_0 = e\\"
             r"&\sigma_1 = 0.1,\ \sigma_0 = 0\end{aligned}")
    rows = fit_rows(latex).split(r" \\[3pt] ")
    assert rows == [r"x_{s} = a + b", r"\quad = c + d", r"\alpha = 0.5", r"\hat x_0 = e",
                    r"\sigma_1 = 0.1,\ \allowbreak \sigma_0 = 0"]


def test_equation_panels_render_as_rows_in_their_styled_containers(app_env):
    at = AppTest.from_file(str(ROOT / "pages" / "2_Forward_process.py"), default_timeout=120).run()
    at.slider(key="fwd.t").set_value(100).run()
    assert not at.exception
    text = "\n".join(e.value for e in at.latex)
    assert r"\mathrm{SNR}" in text and "aligned" not in text, "the SNR row is its own row"
    styles = " ".join(h.proto.body for h in at.get("html"))
    assert "st-key-eqpanel" in styles and "white-space: normal" in styles


# ---------------------------------------------------------------- projector mode and threads

def test_projector_mode_from_the_url_is_kept_for_the_session(app_env):
    at = AppTest.from_file(str(ROOT / "pages" / "1_Noise_schedules.py"), default_timeout=60)
    at.query_params["projector"] = "1"
    at.run()
    assert not at.exception
    assert at.session_state["layout.projector"] is True
    assert "font-size: 20px" in " ".join(h.proto.body for h in at.get("html")), "larger type"
    toggle = next(t for t in at.toggle if t.label == "Projector mode")
    assert toggle.value is True
    toggle.set_value(False).run()
    assert at.session_state["layout.projector"] is False
    assert "font-size: 20px" not in " ".join(h.proto.body for h in at.get("html"))


def test_layout_helpers_follow_projector_mode(app_env):
    script = """
import streamlit as st
from explorer.layout import controls_section, kept_query_params, setup_page, view_height
setup_page("t")
st.write(f"height {view_height(100)}, kept {kept_query_params()}")
with controls_section("Settings", has_result=True):
    st.write("inside")
"""
    at = AppTest.from_string(script, default_timeout=60)
    at.query_params["projector"] = "1"
    at.run()
    assert not at.exception
    assert any(m.value == "height 130, kept {'projector': '1'}" for m in at.markdown)
    assert at.expander and at.expander[0].label == "Settings", "controls folded in projector mode"
    plain = AppTest.from_string(script, default_timeout=60).run()
    assert any(m.value == "height 100, kept {}" for m in plain.markdown) and not plain.expander


def test_a_training_thread_does_not_change_the_threads_of_later_sessions(app_env):
    """torch.set_num_threads(1) in a trainer thread is process-wide: every page run puts the count back,
    so the sidebar shows the real count for every session."""
    from explorer.layout import APP_THREADS

    leak = threading.Thread(target=torch.set_num_threads, args=(1,))
    leak.start()
    leak.join()
    try:
        at = AppTest.from_file(str(ROOT / "pages" / "1_Noise_schedules.py"), default_timeout=60).run()
        assert not at.exception
        assert any(f"CPU ({APP_THREADS} threads)" in c.value for c in at.caption), [c.value for c in at.caption]
    finally:
        torch.set_num_threads(APP_THREADS)


# ---------------------------------------------------------------- relax all: time left; batch: a match rate

def test_relax_all_estimates_the_time_left():
    from explorer.time_left import remaining_text

    assert "estimated once the first sample is done" in remaining_text(4.0, 0.0, 0, 16, 10, 200)
    assert remaining_text(4.0, 0.0, 0, 1, 10, 200) == "4 s so far"
    assert remaining_text(40.0, 30.0, 3, 16, 5, 200) == "40 s so far, about 2 min 00 s left"  # 10 s each, 13 left
    assert remaining_text(400.0, 399.0, 15, 16, 1, 200).endswith("about 26 s left")


def test_batch_starts_on_a_composition_with_a_known_structure():
    """The Batch page's first model and composition have a training crystal to match against."""
    from explorer.batch import DEFAULT_COMPOSITIONS, known_structures

    files = tuple(str(ROOT / "data" / "mp_20" / name) for name in ("val.csv.gz", "train_part.csv.gz"))
    if not all(Path(f).is_file() for f in files):
        pytest.skip("the mp_20 data files are not in this checkout")
    from diffusion import parse_formula
    composition = DEFAULT_COMPOSITIONS["mp_20"]
    assert known_structures(files, composition, len(parse_formula(composition)))
