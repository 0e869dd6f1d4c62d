"""What came out, said so a student understands it (issue #17, item 5): did the sample land in the asked
space group, is its cell far from the size the training crystals have for this chemistry, and the one
click that tries again (the next seed, or a start from a similar known crystal)."""
from __future__ import annotations

import streamlit as st

from .models import ModelEntry, reference_volume
from .numbers import space_group_label
from .result import Result
from .trajectory_view import step_numbers

VOLUME_TOLERANCE = 0.25   # |V / V_training - 1| beyond this is called "far"; see docs/app.md#generate
ss = st.session_state


def _retry(seed: int | None = None, template: bool = False) -> None:
    """Set the controls for another run and ask for it (a callback: runs before the widgets are drawn)."""
    if seed is not None:
        ss["gen.seed"] = seed
    if template:
        ss["gen.start"] = "template"
    ss["gen.pending"] = True


def outcome(prefix: str, entry: ModelEntry | None, result: Result) -> None:
    """Warnings for a missed space group or an unusual cell, each with the clicks that try again."""
    if result.task != "csp":
        return
    settings = result.settings
    final = result.trajectory.num_frames - 1
    numbers = step_numbers(prefix, result, final)
    problems = []
    asked = settings.space_group
    if asked:
        found = numbers.space_group[1] if numbers.space_group else None
        if found == asked:
            st.success(f"The sample has the asked symmetry, {space_group_label(asked)}.", icon=":material/check:")
        else:
            got = space_group_label(found) if found else "no group spglib could find"
            problems.append(f"You asked for {space_group_label(asked)}, but the sample came out as {got}: the model "
                            "was pushed toward that symmetry and did not reach it this time.")
    structure = result.trajectory.structure(frame=final)
    reference = reference_volume(entry, [site.specie.Z for site in structure]) if entry is not None else None
    if reference is not None:
        ratio = structure.volume / len(structure) / reference.volume_per_atom
        if abs(ratio - 1) > VOLUME_TOLERANCE:
            what = ("this formula" if reference.basis == "formula" else "these elements")
            problems.append(f"The cell is {abs(ratio - 1):.0%} {'larger' if ratio > 1 else 'smaller'} per atom than "
                            f"the training crystals of {what} ({reference.count} of them): the atoms are "
                            f"{'too loosely' if ratio > 1 else 'too tightly'} packed for a real crystal.")
    if not problems:
        return
    st.warning(" ".join(problems), icon=":material/help:")
    left, right, _ = st.columns([1, 1.6, 2])
    left.button("Try the next seed", key=f"{prefix}.retry_seed", icon=":material/casino:", on_click=_retry,
                kwargs={"seed": settings.seed + 1}, width="stretch")
    if settings.template_step is None:
        right.button("Start from a similar known crystal", key=f"{prefix}.retry_template",
                     icon=":material/auto_fix:", on_click=_retry, kwargs={"template": True}, width="stretch",
                     help="The reverse process starts from the chemically nearest training crystal with the same "
                          "atom counts, noised to t0, instead of from pure noise.")
