"""Generate: choose conditions and a sampler, sample, then scrub from x_T (noise) to x_0 (a crystal)."""
import streamlit as st

from explorer import generate, generate_controls, generate_state, relax_view
from explorer.equation_view import glossary
from explorer.layout import setup_page
from explorer.models import require_models

setup_page("Generate")
st.title("Generate a crystal")
st.markdown("The model starts from pure noise, a random cell with randomly placed atoms at step t = T, and "
            "removes a little noise at every step until a crystal remains at t = 0. Pick what to make, press "
            "**Generate**, then move the slider to watch it happen. (Or start from a similar known crystal, "
            "noised to a step t0 of your choice: *Start from* on the right. A CDVAE model decodes a random point "
            "of its latent space by annealed Langevin dynamics instead.)")

models = require_models(("diffusion", "cdvae"))

generate_state.init_state(models)
for message in st.session_state.pop("gen.link_errors", []):
    st.warning(f"Ignored a setting from the link: {message}.", icon=":material/link_off:")
generate_controls.examples_row(models)
entry, info, settings, problem = generate_controls.controls(models)
generate.generate_button(entry, settings, problem)
st.divider()
generate.results_section(models)
relax_view.relax_generated(generate.shown_result())
glossary()
generate.warm_up(models)
