"""Streamlit display of ``explorer.equations``: equation panels in columns and the glossary."""
from __future__ import annotations

import streamlit as st

from .equations import GLOSSARY, Panel


def show_panels(columns: list[list[Panel]]) -> None:
    """Each inner list of panels stacked in its own column: a bold title, the LaTeX lines, a caption."""
    for column, panels in zip(st.columns(len(columns), gap="large"), columns):
        with column:
            for panel in panels:
                st.markdown(f"**{panel.title}**")
                for line in panel.latex:
                    st.latex(line)
                st.caption(panel.note)


def glossary() -> None:
    """The short glossary of the course's terms, folded away."""
    with st.expander("Glossary: schedule, SNR, wrapped normal, score, guidance, predictor-corrector",
                     icon=":material/menu_book:"):
        st.markdown("\n".join(f"- **{term}.** {text}" for term, text in GLOSSARY))
