"""Batch & metrics: many samples at once, how many are valid, how they compare with the training data."""
import streamlit as st

from explorer import batch, relax_view
from explorer.layout import setup_page
from explorer.models import require_models

setup_page("Batch & metrics")
st.title("Batch & metrics")
st.markdown("One crystal can be lucky. Sample many with the same conditions (each with its own seed) and measure: "
            "how many are physically valid, whether they find the known structure, and whether their densities "
            "look like the data the model learned from.")

models = require_models()

entry, info, settings, count, problem = batch.controls(models)
if st.button("Sample the batch", type="primary", icon=":material/grid_view:", key="batch.go"):
    if settings is None or problem:
        st.session_state["batch.error"] = f"Nothing sampled: fix the {problem or 'settings'} first."
    else:
        batch.run(entry, settings, count, info.task)
if st.session_state.get("batch.error"):
    st.error(st.session_state["batch.error"], icon=":material/error:")
st.divider()
result = st.session_state.get("batch.result")
if result is None:
    st.info("Press **Sample the batch**. With the defaults (16 samples, DDIM with 100 steps) this takes a few seconds on a CPU.",
            icon=":material/info:")
else:
    batch.show(result)
    st.divider()
    relax_view.stability_section(result)
