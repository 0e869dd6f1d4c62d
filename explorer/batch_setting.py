"""The Batch page's "Recommended setting" switch: the card's composition-only setting (``diffusion.recommended``)
with what it retrieves for this composition (voted group, template, Wyckoff sites) said in words.

Session state: ``batch.use_recommended`` (the switch).
"""
from __future__ import annotations

import streamlit as st

from diffusion.api import constraint_from_template, recommended

from .models import ModelEntry, find_template, suggest_space_group
from .numbers import space_group_label

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
    notes = []
    group = typed_group
    if group is None and setting.space_group == "predicted":
        guess, why = suggest_space_group(entry, numbers)
        if guess is not None:
            group = guess.space_group
            near = "; ".join(str(n) for n in guess.neighbours[:3])
            notes.append(f"{space_group_label(group)} voted by the nearest training crystals ({near}): retrieved, "
                         "not predicted by the network")
        else:
            notes.append(f"{why.split(';')[0]}: no group is asked")
    template_step = setting.template_step
    symmetry = False
    if setting.symmetry == "wyckoff" and group is not None:
        template, _ = find_template(entry, numbers, group)
        try:
            cell = constraint_from_template(template, group)
            symmetry = True
            notes.append(f"Wyckoff sites from {template.describe()}: {cell.describe()}")
        except ValueError as exc:
            notes.append(f"cannot keep the symmetry ({exc}): sampled without it")
    if template_step is not None:
        template, why = find_template(entry, numbers, group)
        if template is None:
            template_step = None
            notes.append(f"{why}: every sample starts from noise")
        else:
            notes.append(f"template: {template.describe()}")
    for note in notes:
        st.caption(note[0].upper() + note[1:] + ".")
    return dict(sampler=setting.sampler, steps=min(int(setting.steps or num_steps), num_steps),
                guidance=float(setting.guidance) if group is not None else 0.0, space_group=group,
                template_step=template_step, symmetry=symmetry)
