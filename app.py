"""Crystal Diffusion Explorer: placeholder home page until the app issue lands."""
import streamlit as st

st.set_page_config(page_title="Crystal Diffusion Explorer", layout="wide")
st.title("Crystal Diffusion Explorer")
st.write("Diffusion models for periodic crystals. The core lives in `diffusion/`.")
