"""Compare: two sampling runs that differ in one setting, side by side under one slider."""
import streamlit as st

from explorer import compare
from explorer.equation_view import glossary
from explorer.layout import setup_page
from explorer.models import require_models

setup_page("Compare")
st.title("Compare two runs")
st.markdown("Change one thing and keep everything else: the sampler, guidance off or on, the seed, the number "
            "of steps, or where the run starts (noise, or a similar known crystal noised to t0). Both runs end in a "
            "crystal; one slider moves both through the reverse process, so you see where they part ways.")

models = require_models()

compare.init_state(models)
entry, info, pair, problem = compare.controls(models)
compare.compare_button(entry, info, pair, problem)
st.divider()
compare.results_section()
glossary()
