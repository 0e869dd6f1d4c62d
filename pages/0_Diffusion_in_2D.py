"""Diffusion in 2D: the course's opening figure, live: points in a plane (and on a torus) noised and denoised."""
import streamlit as st

from explorer import toy2d_page
from explorer.layout import setup_page

setup_page("Diffusion in 2D")
st.title("Diffusion in two dimensions")
st.markdown("Before crystals, points in a plane. The **forward process** adds a little Gaussian noise at every "
            "step until any shape, a Swiss roll or two moons, has become a round cloud N(0, I). A small network "
            "learns to undo one step; run backwards from fresh noise, it **sculpts** samples of the shape out of "
            "the cloud. The last data set puts the points on a torus, the square [0, 1)² with opposite edges "
            "glued: that is where a crystal's fractional coordinates live, and the next pages do the same to "
            "atoms in a cell.")

toy2d_page.init_state()
toy2d_page.controls()
toy2d_page.forward_section()
st.divider()
toy2d_page.train_section()
toy2d_page.reverse_section()
st.divider()
toy2d_page.mixture_section()
toy2d_page.exports()
