"""Forward process: noise a real crystal to step t and compare x_t with the clean crystal."""
import streamlit as st

from explorer.equation_view import glossary
from explorer.forward import forward_panel, pick_crystal
from explorer.layout import setup_page

setup_page("Forward process")
st.title("Forward process")
st.markdown("Training corrupts real crystals with a fixed recipe, no learning involved: the lattice is mixed with "
            "Gaussian noise, x_t = √ᾱ_t x₀ + √(1 − ᾱ_t) ε, and the fractional coordinates are shaken by wrapped "
            "Gaussian noise of width σ_t, F_t = (F₀ + σ_t ε) mod 1. Move t to see any intermediate step; the same "
            "seed keeps the noise fixed, so the crystal moves smoothly.")

crystal, key = pick_crystal()
if crystal is not None:
    forward_panel(crystal, key)
glossary()
