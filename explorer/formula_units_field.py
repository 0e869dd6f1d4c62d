"""The "cell size" helper under a composition box: how many formula units the training crystals
usually have for this formula (``diffusion.formula_units``), applied with one click.

Session state per page prefix ``p``: ``p.fu_hint`` = (message, composition it was made for).
"""
from __future__ import annotations

import streamlit as st

from diffusion.api import formula_text

from .models import ModelEntry, suggest_formula_units

ss = st.session_state


def formula_units_button(entry: ModelEntry, prefix: str, composition_key: str, atomic_numbers: list[int],
                         max_atoms: int) -> None:
    """A button that rewrites the composition as the proposed cell, and the hint that says why."""
    st.button("Cell size from training crystals", key=f"{prefix}.fu_suggest", on_click=_on_suggest,
              args=(entry, prefix, composition_key, atomic_numbers, max_atoms),
              help="Type the formula (TiO2, Si, SrTiO3): the button sets the atoms per cell to the number of "
                   "formula units most common for it among the model's training crystals.")
    hint = ss.get(f"{prefix}.fu_hint")
    if hint and hint[1] == ss.get(composition_key):
        st.info(hint[0], icon=":material/lightbulb:")


def _on_suggest(entry: ModelEntry, prefix: str, composition_key: str, atomic_numbers: list[int], max_atoms: int) -> None:
    """Write the proposed cell into the composition box (a callback: runs before the widgets are drawn)."""
    proposal, message = suggest_formula_units(entry, atomic_numbers, max_atoms)
    if proposal is None:
        ss[f"{prefix}.fu_hint"] = (message, ss.get(composition_key))
        return
    ss[composition_key] = formula_text(proposal.formula, proposal.units)
    ss[f"{prefix}.fu_hint"] = (f"Cell {proposal.describe()}. Change the counts to try another cell.",
                               ss[composition_key])
