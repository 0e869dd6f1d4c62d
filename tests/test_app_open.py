"""The Open a trajectory page (issue #21) headless: the example file, a bad file that keeps the earlier ones,
the per-frame player, and the hand-over of "run our model on this composition" to Compare."""
from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parent.parent
PAGE = str(ROOT / "pages" / "7_Open_a_trajectory.py")


def _opened(at: AppTest) -> list:
    return at.session_state["open.files"] if "open.files" in at.session_state else []


def test_the_example_opens_plays_and_hands_over_to_compare(app_env):
    at = AppTest.from_file(PAGE, default_timeout=300).run()
    assert not at.exception
    assert any("Open a file above" in i.value for i in at.info)
    at.button(key="open.example").click().run()
    assert not at.exception and not at.error
    files = _opened(at)
    assert len(files) == 1 and files[0][2].format and len(files[0][2].samples) == 1
    trajectory = files[0][2].samples[0]
    assert trajectory.num_frames >= 2
    assert at.selectbox(key="open.sample").value == 0
    assert len(at.get("plotly_chart")) == 1, "volume, shortest distance and space group per frame"
    assert at.get("iframe"), "the 3D view"
    assert any(c.value.startswith("Drag to rotate") for c in at.caption)
    at.button(key="open.compare").click().run()
    assert not at.exception and not at.error
    incoming = at.session_state["cmp.incoming"]
    assert incoming["theirs"].num_frames == trajectory.num_frames
    assert int(incoming["theirs"].timesteps[0]) > 0 and int(incoming["theirs"].timesteps[-1]) == 0

    compare = AppTest.from_file(str(ROOT / "pages" / "5_Compare.py"), default_timeout=300)
    compare.session_state["cmp.incoming"] = incoming
    compare.run()
    assert not compare.exception
    shown = compare.session_state["cmp.results"][-1]
    assert shown.difference == "external" and shown.left.trajectory is incoming["theirs"]
    assert any("opened file's frames" in c.value for c in compare.caption)


def test_a_bad_file_says_why_and_keeps_what_was_open(app_env):
    def script():
        import streamlit as st

        from explorer import opened

        opened.init_state()
        if "step" not in st.session_state:
            st.session_state["step"] = 0
        if st.session_state["step"] == 0:
            opened.open_bytes(b"3\nno lattice here\nSi 0 0 0\nSi 1 1 1\nSi 2 2 2\n", "plain.xyz")
        elif st.session_state["step"] == 1:
            opened.open_bytes(b"\x80\x04not a torch file", "eval_gen.pt")
        st.session_state["step"] += 1
        st.write(st.session_state.get("open.error", ""))

    at = AppTest.from_function(script, default_timeout=120).run()
    assert not at.exception
    first = at.session_state["open.error"]
    assert "plain.xyz" in first and "Traceback" not in first
    at.session_state["open.files"] = [(7, "kept.extxyz", "kept")]
    at.run()
    assert not at.exception
    assert "eval_gen.pt" in at.session_state["open.error"]
    assert at.session_state["open.files"] == [(7, "kept.extxyz", "kept")], "an earlier file is never dropped"
