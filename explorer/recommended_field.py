"""The model's recommended composition-only setting (``diffusion.recommended``, chosen on its validation
split) on the Generate page: applied on a first visit, said in one sentence, one click to apply again.

Session state: writes the Generate widgets (gen.sampler, gen.steps, gen.guidance, gen.start,
gen.template_step, gen.sg_text, gen.symmetry) and ``gen.sg_hint`` when the setting votes a space group.
"""
from __future__ import annotations

import streamlit as st

from diffusion.api import constraint_from_template, recommended

from .models import ModelEntry, find_template, suggest_space_group
from .numbers import space_group_label

ss = st.session_state


def recommended_setting(entry: ModelEntry):
    """The card's recommended setting, or None."""
    return recommended(entry.card) if entry is not None else None


def apply_recommended(entry: ModelEntry, atomic_numbers: list[int] | None, num_steps: int) -> None:
    """Write the recommended setting into the Generate widgets (a callback, or on a first visit)."""
    setting = recommended_setting(entry)
    if setting is None:
        return
    ss["gen.sampler"] = setting.sampler
    ss["gen.steps"] = min(int(setting.steps or num_steps), num_steps)
    ss["gen.guidance"] = float(setting.guidance)
    ss["gen.start"] = setting.start
    ss["gen.symmetry"] = setting.symmetry == "wyckoff"
    if setting.template_step is not None:
        ss["gen.template_step"] = int(setting.template_step)
    ss["gen.sg_text"] = ""
    if setting.space_group == "predicted" and atomic_numbers:
        guess, _ = suggest_space_group(entry, atomic_numbers)
        if guess is not None:
            ss["gen.sg_text"] = str(guess.space_group)
            near = "; ".join(str(n) for n in guess.neighbours[:3])
            ss["gen.sg_hint"] = ("info", f"{space_group_label(guess.space_group)} was voted by the chemically "
                                         f"nearest training crystals (nearest: {near}): retrieved, not predicted "
                                         "by the network.", ss.get("gen.composition"), ss["gen.sg_text"])


def recommended_line(entry: ModelEntry, atomic_numbers: list[int] | None, num_steps: int) -> None:
    """One sentence on the recommended setting and a button that applies it."""
    setting = recommended_setting(entry)
    if setting is None:
        return
    text, button = st.columns([5, 1.3], vertical_alignment="center")
    text.caption(f"**Recommended for `{entry.name}`** (measured on its validation split, see its card): "
                 f"{setting.describe()}.")
    button.button("Use it", key="gen.use_recommended", icon=":material/recommend:", width="stretch",
                  on_click=apply_recommended, args=(entry, atomic_numbers, num_steps),
                  help="Sets the sampler, steps, guidance, start, (voted) space group and symmetry to the "
                       "recommendation.")


def retrieved_setting(entry: ModelEntry, setting, numbers: list[int], typed_group: int | None,
                      num_steps: int) -> tuple[dict, list[str]]:
    """A recommended ``SamplingSetting`` made concrete for one composition: the ``GenerateSettings`` fields it
    sets (sampler, steps, guidance, space_group, template_step, symmetry) and, in words, what it retrieved
    (the voted group, the Wyckoff sites, the template) or could not (then it samples without that part)."""
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
    changes = dict(sampler=setting.sampler, steps=min(int(setting.steps or num_steps), num_steps),
                   guidance=float(setting.guidance) if group is not None else 0.0, space_group=group,
                   template_step=template_step, symmetry=symmetry)
    return changes, notes
