"""The Batch page's "Recommended setting" switch: the card's composition-only setting (``diffusion.recommended``)
with what it retrieves for this composition (voted group, template, Wyckoff sites) said in words.

Session state: ``batch.use_recommended`` (the switch).
"""
from __future__ import annotations

import streamlit as st

from diffusion.api import recommended

from .models import ModelEntry
from .recommended_field import retrieved_setting

ss = st.session_state


def recommended_switch(entry: ModelEntry, numbers: list[int] | None, typed_group: int | None,
                       num_steps: int) -> dict | None:
    """Draw the switch and, when it is on, say what the setting retrieves; returns the ``GenerateSettings``
    fields it sets (sampler, steps, guidance, space_group, template_step, symmetry), None when off or the card
    has no recommendation."""
    setting = recommended(entry.card)
    if setting is None or numbers is None:
        return None
    if not st.toggle("Recommended setting", value=True, key="batch.use_recommended",
                     help="The composition-only setting measured best on this model's validation split (see its "
                          "card). Switch off to choose the sampler and steps yourself."):
        return None
    st.caption(f"**Recommended for `{entry.name}`:** {setting.describe()}.")
    changes, notes = retrieved_setting(entry, setting, numbers, typed_group, num_steps)
    for note in notes:
        st.caption(note[0].upper() + note[1:] + ".")
    return changes
