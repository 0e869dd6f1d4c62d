"""Train: a tiny diffusion model trained live on a few crystals; its loss, its noise predictions, its samples."""
import streamlit as st

from explorer import live_training
from explorer.equation_view import glossary
from explorer.layout import setup_page

setup_page("Train")
st.title("Train a tiny model, live")
st.markdown("Training shows the network real crystals noised to a random step t and asks it for the noise; the "
            "loss is how wrong it was. Pick a handful of crystals and press **Train**: a small model (hidden size "
            "64, two message-passing layers, about 90k parameters) learns them on the CPU while you watch the loss "
            "fall, the predicted noise line up with the true noise, and, at any moment, what it samples.")

live_training.init_state()
picked = live_training.pick_crystals()
live_training.crystals_summary(picked)
config = live_training.settings_row()
live_training.train_button(picked, config)
st.divider()
live_training.live_panel()
live_training.sample_section()
glossary()
