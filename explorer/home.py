"""The home page's sections: what diffusion for crystals is, the pages, the shipped models."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from diffusion.api import Crystal, ForwardSetup, forward_noise, headline_metrics, training_summary

from .examples import example_structure
from .layout import PAGES, page_link
from .models import available_models, device_text, models_folder, try_model_info
from .viewer import ViewFrame, ViewOptions, structure_html
from .widgets import show_view

NOISE_LEVELS = ((0, "t = 0: the crystal (x₀)"), (650, "t = 650: half way"), (1000, "t = T = 1000: pure noise (x_T)"))
PAGE_BLURBS = {
    "Diffusion in 2D": "start here: points in a plane noised step by step, a tiny denoiser trained in seconds, the "
                       "shape sculpted back out of noise.",
    "Noise schedules": "how fast each schedule destroys the signal: β_t, ᾱ_t, log-SNR, σ_t, side by side.",
    "Forward process": "noise a real crystal step by step and watch its coordinates spread to uniform.",
    "Generate": "run a trained model backwards from noise to a crystal, and scrub through every step in 3D.",
    "Batch & metrics": "sample many crystals at once, check their validity and compare them with the data.",
    "Compare": "two runs that differ in one thing (sampler, guidance, seed, steps) under one slider.",
    "Train": "train a tiny model on a few crystals live, watch its loss fall and sample from it.",
    "Open a trajectory": "scrub another model's trajectory file (MatterGen, CDVAE, DiffCSP, extended XYZ) frame by "
                         "frame, and put our model's run beside it.",
    "Latent space": "the CDVAE family: every crystal a point z, a map of them, a walk from one crystal to another "
                    "decoded step by step, and z pushed along a property's gradient.",
}


@st.cache_data(show_spinner=False)
def _noise_views(height: int) -> list[str]:
    crystal = Crystal.from_structure(example_structure("NaCl"))
    setup = ForwardSetup(schedule="cosine", num_steps=1000)
    views = []
    for t, _ in NOISE_LEVELS:
        noisy = forward_noise(crystal, t, setup, seed=3)
        frame = ViewFrame(noisy.lattice.numpy(), noisy.frac_coords.numpy(), noisy.atomic_numbers.numpy())
        views.append(structure_html(frame, options=ViewOptions(height=height, group="home", boundary=0.02 if t == 0 else 0.0,
                                                               show_legend=t == 0)))
    return views


def introduction() -> None:
    text, picture = st.columns([2, 3], gap="large")
    with text:
        st.markdown(
            "A **diffusion model** learns to undo noise. During training, real crystals are destroyed step by "
            "step: the cell is shaken, the atoms are pushed around until they sit at random places, and a "
            "network learns to predict, at every step t, the noise that was added.\n\n"
            "To **generate**, the model starts from pure noise at t = T, a random cell with randomly placed "
            "atoms, and removes a little of the predicted noise at every step. After T steps a crystal is left.\n\n"
            "A crystal is three things: the **atom types** A, their **fractional coordinates** F in the cell, "
            "and the **lattice** L (three vectors). Each has its own noise: the lattice is Gaussian-noised, "
            "the coordinates are noised *around the torus* (an atom leaving the cell comes back on the other "
            "side), and, when the model also picks the elements, types are masked one by one.")
        st.caption(f"The core runs on: **{device_text()}**")
    with picture:
        st.markdown("**Rock salt (NaCl) at three noise levels of the forward process**")
        columns = st.columns(3)
        for column, html, (_, caption) in zip(columns, _noise_views(230), NOISE_LEVELS):
            with column:
                show_view(html, 230)
                st.caption(caption)


def pages_overview() -> None:
    st.subheader("Pages")
    pages = PAGES[1:]
    per_row = 3  # rows of three: each blurb keeps a readable width
    columns = [column for start in range(0, len(pages), per_row) for column in st.columns(per_row)]
    for column, (path, label, icon) in zip(columns, pages):
        with column.container(border=True):
            if not page_link(path, f"**{label}**", icon):
                st.markdown(f"**{label}**")
            st.caption(PAGE_BLURBS[label])


def _card(entry) -> None:
    card = entry.card
    info, error = try_model_info(entry)
    task = {"csp": "crystal structure prediction (give a composition; the model makes the structure)",
            "gen": "ab initio generation (the model chooses elements and structure)"}.get(entry.task, entry.task)
    if entry.family == "cdvae":
        task = ("CDVAE, a crystal autoencoder: a latent z decodes to a crystal by annealed Langevin dynamics "
                "(see the Latent space page)")
    st.markdown(f"#### `{entry.name}`")
    st.markdown(f"**Task:** {task}")
    if card.get("description"):
        st.caption(card["description"])
    if card.get("about_data"):
        st.caption(card["about_data"])
    if error:
        st.error(error)
    data = card.get("data") or []
    files = ", ".join(f"`{Path(d.get('file', '?')).parent.name}/{Path(d.get('file', '?')).name}`" if isinstance(d, dict)
                      else f"`{d}`" for d in data) or "?"
    split = card.get("split") or {}
    conditions = card.get("conditions") or {}
    cond = [f"property `{conditions['property']}`"] if conditions.get("property") else []
    if conditions.get("space_group"):
        cond.append("space group")
    lines = [
        f"- **Trained on:** {files}",
        (f"- **Split:** {split.get('train', '?')} training / {split.get('validation', '?')} validation crystals, "
         f"at most {split.get('max_atoms', '?')} atoms per cell") if split else "- **Split:** ?",
        f"- **Conditions:** {', '.join(cond) or 'none'}",
        (f"- **Elements known:** {len(info.elements) if info else '?'}; **diffusion steps T:** {info.num_steps if info else '?'}"
         if entry.family != "cdvae" else
         f"- **Elements known:** {len(info.elements) if info else '?'}; **Langevin decoding:** "
         f"{(card.get('process') or {}).get('num_levels', '?')} noise levels x "
         f"{(card.get('process') or {}).get('steps_per_level', '?')} steps"),
        f"- **Parameters:** {card['parameters']:,}" if isinstance(card.get("parameters"), int) else "- **Parameters:** ?",
        f"- **Training:** {training_summary(card)}",
    ]
    st.markdown("\n".join(lines))
    if not headline_metrics(card):
        st.caption("No evaluation metrics in this card yet.")


def models_section() -> None:
    st.subheader("Models")
    models = available_models() + available_models("cdvae")
    if not models:
        st.warning(f"No trained models found in `{models_folder()}`. Train one with "
                   "`python -m diffusion train --data ... --out checkpoints/<name>.pt`.")
        return
    columns = st.columns(min(len(models), 3))
    for i, entry in enumerate(models):
        with columns[i % len(columns)].container(border=True):
            _card(entry)
    # the tables are wide (one row per evaluation run): full width, one tab per model, below the cards
    measured = [(entry, headline_metrics(entry.card)) for entry in models]
    measured = [(entry, rows) for entry, rows in measured if rows]
    if measured:
        st.markdown("#### Validation metrics (from the model cards)")
        for tab, (entry, rows) in zip(st.tabs([entry.name for entry, _ in measured]), measured):
            with tab:
                # every run visible without scrolling inside the table (the newest rows come last)
                st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch", height=38 + 35 * len(rows))
