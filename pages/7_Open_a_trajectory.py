"""Open a trajectory: another model's generation trajectory (MatterGen, CDVAE, DiffCSP, extxyz, ASE) in this
app's slider, 3D view and numbers, and side by side with our model in Compare."""
import streamlit as st

from explorer import opened
from explorer.layout import setup_page, switch_to
from explorer.models import require_models

setup_page("Open a trajectory")
st.title("Open a trajectory")
st.markdown("Generative models for crystals write their denoising trajectories to files, but few programs show "
            "them. Open one here, from MatterGen, CDVAE, DiffCSP or anything that writes extended XYZ or ASE "
            "trajectories, and scrub it frame by frame as on *Generate*: the 3D view, the cell's numbers and, "
            "for every frame, its volume, shortest distance and space group. Then run our model on the same "
            "composition and watch both side by side.")

models = require_models()
opened.init_state()
upload_col, example_col = st.columns([4, 1], vertical_alignment="bottom")
with upload_col:
    opened.upload_section()
with example_col:
    opened.example_button(models)
if st.session_state.get("open.error"):
    st.error(st.session_state["open.error"], icon=":material/error:")
st.divider()
choice = opened.picker()
if choice is not None:
    file_id, opened_file, index = choice
    name = opened.shown_file()[1]
    opened.compare_button(file_id, opened_file, index, name, models)
    if st.session_state.pop("open.go_compare", False):
        switch_to("pages/5_Compare.py", "Open Compare", ":material/compare:")
    opened.player(file_id, opened_file, index)
    opened.exports(file_id, opened_file, index, name)
