"""Generate: choose conditions and a sampler, sample, then scrub from x_T (noise) to x_0 (a crystal)."""
import streamlit as st

from explorer import generate, relax_view
from explorer.equation_view import glossary
from explorer.layout import setup_page
from explorer.models import available_models, models_folder

setup_page("Generate")
st.title("Generate a crystal")
st.markdown("The model starts from pure noise, a random cell with randomly placed atoms at step t = T, and "
            "removes a little noise at every step until a crystal remains at t = 0. Pick what to make, press "
            "**Generate**, then move the slider to watch it happen. (Or start from a similar known crystal, "
            "noised to a step t0 of your choice: *Start from* on the right.)")

models = available_models()
if not models:
    st.error(f"No trained models found in `{models_folder()}`. Train one with `python -m diffusion train ...` "
             "or point CRYSTAL_DIFFUSION_CHECKPOINTS at a folder of checkpoints.")
    st.stop()

generate.init_state(models)
for message in st.session_state.pop("gen.link_errors", []):
    st.warning(f"Ignored a setting from the link: {message}.", icon=":material/link_off:")
generate.examples_row(models)
entry, info, settings, problem = generate.controls(models)
generate.generate_button(entry, settings, problem)
st.divider()
generate.results_section()
relax_view.relax_generated(generate.shown_result())
glossary()
generate.warm_up(models)
