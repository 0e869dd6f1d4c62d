"""The space-group field shared by the Generate and Batch pages: a text box, a "Suggest" button that
asks the model's training crystals for a group, and the hint that explains the suggestion.

Session state per page prefix ``p`` (``gen`` or ``batch``):
    p.<text key>   the field's text (a widget value; the suggestion writes it before the widgets run)
    p.sg_hint      (kind, message, composition, group text) of the last suggestion; shown only while
                   the composition and group it was made for are still on screen
"""
from __future__ import annotations

import streamlit as st

from .models import ModelEntry, group_choice, suggest_space_group
from .numbers import parse_space_group, space_group_label

ss = st.session_state

SUGGEST_HELP = ("The model's training crystals with the same number of atoms and element counts, ranked by chemical "
                "similarity (Pettifor's Mendeleev numbers), propose their space groups; the nearest ones vote, or "
                "(where the model's card says so, e.g. mp_20) the model picks the group whose crystal, with your "
                "elements, it denoises best. The model reproduces far more crystals when it is given the right group.")


def space_group_field(entry: ModelEntry, prefix: str, text_key: str, composition_key: str,
                      atomic_numbers: list[int] | None, placeholder: str) -> tuple[int | None, str | None]:
    """Draw the field (with the Suggest button when a valid composition is given); returns
    (space group or None for "any", problem message or None)."""
    st.text_input("Space group (optional)", key=text_key, placeholder=placeholder,
                  help="Ask for a symmetry: a number 1-230 or a Hermann-Mauguin symbol. Empty = any.")
    if atomic_numbers is not None:
        st.button("Suggest a group from similar training crystals", key=f"{prefix}.sg_suggest",
                  on_click=_on_suggest, args=(entry, atomic_numbers, prefix, text_key, composition_key),
                  help=SUGGEST_HELP)
    hint = ss.get(f"{prefix}.sg_hint")
    if hint and hint[2:] == (ss.get(composition_key), ss.get(text_key)):
        (st.info if hint[0] == "info" else st.warning)(hint[1], icon=":material/lightbulb:")
    space_group, message = parse_space_group(ss.get(text_key, ""))
    if message:
        st.error(f"Space group: {message}.", icon=":material/error:")
        return None, f"space group: {message}"
    if space_group is not None:
        st.caption(f"Asking for {space_group_label(space_group)}.")
    return space_group, None


def _on_suggest(entry: ModelEntry, atomic_numbers: list[int], prefix: str, text_key: str, composition_key: str) -> None:
    """Fill the field with the training crystals' vote (a callback: runs before the widgets are drawn)."""
    guess, message = suggest_space_group(entry, atomic_numbers)
    if guess is None:
        ss[f"{prefix}.sg_hint"] = ("warning", message, ss.get(composition_key), ss.get(text_key))
        return
    ss[text_key] = str(guess.space_group)
    near = "; ".join(str(n) for n in guess.neighbours[:3])
    n = len(guess.neighbours)
    source = (f"of the model's weight among the {n} groups of the chemically nearest training crystals with the same "
              f"atom counts (the nearest of each: {near})" if group_choice(entry) == "model" else
              f"of the vote of the {n} chemically nearest training crystals with the same atom counts (nearest: {near})")
    ss[f"{prefix}.sg_hint"] = ("info", f"Suggested {space_group_label(guess.space_group)}: {guess.confidence:.0%} "
                                       f"{source}. {vote_accuracy(entry.card)}", ss.get(composition_key), ss[text_key])


def vote_accuracy(card: dict) -> str:
    """How often the vote named the true group on the model's validation split, when the card says."""
    metrics = card.get("metrics")
    for result in (metrics.values() if isinstance(metrics, dict) else ()):
        measured = result.get("space_group_prediction") if isinstance(result, dict) else None
        if isinstance(measured, dict) and isinstance(measured.get("accuracy"), (int, float)) and measured.get("n"):
            return (f"A guess: it named the true group of {measured['accuracy']:.0%} of this model's "
                    f"{measured['n']} validation crystals.")
    return "A guess: check it against what you know of the compound."
