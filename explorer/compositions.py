"""A typed composition checked against a model's card, before any network is loaded (Generate, Compare,
Batch). The rules are the core's (``diffusion.api.check_composition``) plus the model's largest cell."""
from __future__ import annotations

from diffusion.api import MAX_ATOMS, FormulaError, check_elements, parse_formula

from .models import ModelInfo


def typed_atoms(text: str) -> list[int] | None:
    """The atoms of a formula that parses (whatever the model), else None."""
    try:
        return parse_formula(text, max_atoms=MAX_ATOMS)
    except FormulaError:
        return None


def check_formula(info: ModelInfo, text: str) -> list[int]:
    """Atomic numbers of a composition this model can make; ``FormulaError`` says why not."""
    numbers = check_elements(parse_formula(text, max_atoms=MAX_ATOMS), info.elements)
    if len(numbers) > info.max_atoms:
        raise FormulaError(f"{len(numbers)} atoms is more than this model was trained on "
                           f"(at most {info.max_atoms} per cell)")
    return numbers


def composition_field(info: ModelInfo, key: str, label: str, help_text: str) -> tuple[list[int] | None, str | None]:
    """The composition box (session key ``key``) with its caption or error; returns (atoms or None, problem)."""
    import streamlit as st

    st.text_input(label, key=key, max_chars=200, help=help_text)
    try:
        numbers = check_formula(info, st.session_state[key])
    except FormulaError as exc:
        st.error(f"Composition: {exc}.", icon=":material/error:")
        return None, f"composition: {exc}"
    st.caption(f"{len(numbers)} atoms. The model knows {len(info.elements)} elements.")
    return numbers, None
