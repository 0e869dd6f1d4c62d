"""Noise schedules: how fast each schedule destroys the signal, overlaid for comparison."""
import math

import pandas as pd
import streamlit as st

from diffusion.api import SCHEDULE_NAMES, make_schedule
from explorer.figures import SCHEDULE_CAPTIONS, SCHEDULE_PLOTS, schedule_figure
from explorer.layout import page_link, setup_page
from explorer.widgets import chart, static_table

setup_page("Noise schedules")
st.title("Noise schedules")
st.markdown("The forward process adds noise in T small steps. The **schedule** decides how much at each step: "
            "for the lattice a variance β_t (the DDPM process x_t = √ᾱ_t x₀ + √(1 − ᾱ_t) ε), for the fractional "
            "coordinates a width σ_t of wrapped Gaussian noise. Choose schedules to compare them.")

left, middle, right = st.columns([2, 1, 2], vertical_alignment="bottom")
chosen = left.multiselect("Schedules", list(SCHEDULE_NAMES), default=["linear", "cosine"], key="sched.names")
T = middle.number_input("Steps T", min_value=10, max_value=5000, value=1000, step=50, key="sched.T")
marker = right.slider("Mark step t", 0, int(T), min(int(T) // 2, int(T)), key="sched.t")

if not chosen:
    st.warning("Choose at least one schedule to plot.", icon=":material/info:")
    st.stop()

schedules = [make_schedule(name, int(T)) for name in chosen]
rows = []
for s in schedules:
    abar = float(s.abar[marker])
    values = {"β_t": float(s.beta[marker]), "ᾱ_t": abar, "√ᾱ_t (signal)": math.sqrt(abar),
              "√(1−ᾱ_t) (noise)": math.sqrt(max(0.0, 1 - abar)),
              "log SNR_t": float(s.log_snr[marker]) if marker > 0 else math.inf, "σ_t (coords)": float(s.sigma[marker])}
    rows.append({"schedule": s.name, **{k: f"{v:.4g}" for k, v in values.items()}})
st.markdown(f"**Values at t = {marker}**")
static_table(pd.DataFrame(rows))

columns = st.columns(2, gap="large")
for i, kind in enumerate(SCHEDULE_PLOTS):
    with columns[i % 2]:
        chart(schedule_figure(kind, schedules, marker), key=f"sched.fig.{kind}")
        st.caption(SCHEDULE_CAPTIONS[kind])
with columns[len(SCHEDULE_PLOTS) % 2]:
    st.markdown("#### See it on a crystal")
    st.markdown("The Forward process page applies these schedules to a real crystal, with a slider over t.")
    page_link("pages/2_Forward_process.py", "Open the forward process", ":material/blur_on:")
