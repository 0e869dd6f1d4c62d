"""Crystal Diffusion Explorer: the home page (``streamlit run app.py``; other pages are in pages/)."""
import streamlit as st

from explorer import home
from explorer.layout import setup_page

setup_page("Home")
st.title("Crystal Diffusion Explorer")
home.introduction()
st.divider()
home.pages_overview()
st.divider()
home.models_section()
