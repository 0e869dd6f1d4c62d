"""Latent space: a CDVAE's validation crystals as points of its latent space on a 2D map, a walk between two of
them decoded point by point, and property optimisation by gradient steps on z."""
import streamlit as st

from explorer import latent_page
from explorer.layout import setup_page

setup_page("Latent space")
st.title("Latent space")
st.markdown("A CDVAE encodes each crystal into a point z of its **latent space** and decodes any z back into a "
            "crystal; nearby points decode to similar crystals, so the space can be mapped, walked and searched.")

latent_page.page()
