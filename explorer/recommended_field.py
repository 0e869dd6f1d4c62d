"""The model's recommended composition-only setting (``diffusion.recommended``, chosen on its validation
split) on the Generate page: applied on a first visit, said in one sentence, one click to apply again.

Session state: writes the Generate widgets (gen.sampler, gen.steps, gen.guidance, gen.start,
gen.template_step, gen.sg_text, gen.symmetry) and ``gen.sg_hint`` when the setting votes a space group.
"""
from __future__ import annotations

import streamlit as st

from diffusion.api import NO_PROTOTYPE_MATCH, NO_TEMPLATE, recommended, retrieve

from .models import ModelEntry, chosen_group_predictor, suggest_space_group, template_library
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
        guess, _ = suggest_space_group(entry, atomic_numbers)   # the setting's own chooser (models.group_choice)
        if guess is not None:
            ss["gen.sg_text"] = str(guess.space_group)
            ss["gen.sg_hint"] = ("info", group_origin(setting, guess) + ".", ss.get("gen.composition"),
                                 ss["gen.sg_text"])


def group_origin(setting, guess) -> str:
    """Where a recommended setting's group came from, in words: retrieval, not prediction from scratch."""
    near = "; ".join(str(n) for n in guess.neighbours[:3])
    if setting.group_choice == "model":
        return (f"{space_group_label(guess.space_group)} chosen by the model ({guess.confidence:.0%} of its weight) "
                f"among the groups of the chemically nearest training crystals ({near}), the one whose crystal with "
                "your elements it denoises best: the candidates are retrieved, not predicted by the network")
    return (f"{space_group_label(guess.space_group)} voted by the chemically nearest training crystals ({near}): "
            "retrieved, not predicted by the network")


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
    """A recommended ``SamplingSetting`` made concrete for one composition (``diffusion.placement.retrieve``,
    as the CLI does it): the ``GenerateSettings`` fields it sets (sampler, steps, guidance, space_group,
    template_step, symmetry) and, in words, what it retrieved (the voted group, the Wyckoff sites, the
    template) or could not (then it samples without that part)."""
    predictor, no_vote = chosen_group_predictor(entry, setting.group_choice)
    library, no_library = template_library(entry)
    got = retrieve(numbers, setting, predictor, library, typed_group)
    notes = []
    if got.vote is not None:
        notes.append(group_origin(setting, got.vote))
    elif typed_group is None and setting.space_group == "predicted":
        why = no_vote or f"{NO_PROTOTYPE_MATCH}, so there is nothing to vote"
        notes.append(f"{why.split(';')[0]}: no group is asked")
    no_template = no_library or f"{NO_TEMPLATE} to start from"
    if setting.symmetry == "wyckoff" and got.space_group is not None:
        if got.cell is not None:
            notes.append(f"Wyckoff sites from {got.template.describe()}: {got.cell.describe()}")
        else:
            reason = next((n for n in got.notes if n.startswith("no Wyckoff cell")), no_template)
            notes.append(f"cannot keep the symmetry ({reason}): sampled without it")
    template_step = setting.template_step
    if template_step is not None:
        if got.template is None:
            template_step = None
            notes.append(f"{no_template}: every sample starts from noise")
        else:
            notes.append(f"template: {got.template.describe()}")
    changes = dict(sampler=setting.sampler, steps=min(int(setting.steps or num_steps), num_steps),
                   guidance=float(setting.guidance) if got.space_group is not None else 0.0,
                   space_group=got.space_group, template_step=template_step, symmetry=got.cell is not None)
    return changes, notes
