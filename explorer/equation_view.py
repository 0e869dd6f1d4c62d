"""Streamlit display of ``explorer.equations``: equation panels in columns and the glossary.

The panels must fit their column at any zoom and never hide a number, so each formula is
re-laid out for the browser (``fit_rows``): one row per line of an ``aligned`` block and per
``\\qquad``-separated part, and the style sheet of ``layout.py`` lets KaTeX wrap a row after
= and + (display math otherwise never wraps) and shrinks the type a little in a narrow column.
"""
from __future__ import annotations

import hashlib
import re

import streamlit as st

from .equations import GLOSSARY, Panel

ROW_GAP = r" \\[3pt] "


def _split_top_level(text: str, separator: str) -> list[str]:
    """``text`` split at ``separator`` where it is not inside braces."""
    parts, depth, start, i = [], 0, 0, 0
    while i < len(text):
        if text.startswith("\\{", i) or text.startswith("\\}", i):
            i += 2
            continue
        char = text[i]
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
        elif depth == 0 and text.startswith(separator, i):
            if separator[-1].isalpha() and i + len(separator) < len(text) and text[i + len(separator)].isalpha():
                i += 1  # a longer command that starts the same (\qquadx)
                continue
            parts.append(text[start:i])
            i += len(separator)
            start = i
            continue
        i += 1
    parts.append(text[start:])
    return parts


def fit_rows(latex: str) -> str:
    """One formula as rows that a narrow column can show whole.

    The rows of an ``aligned`` block and the ``\\qquad``-separated parts of each row become
    rows of their own (the alignment ``&`` goes, and so does the comma before a ``\\qquad``);
    a part after a ``\\qquad`` comes after the row's continuation lines (those that start with
    "="), so a continuation never follows a side note. A comma-separated list may break after
    its commas (``\\allowbreak``).
    """
    text = latex.strip()
    match = re.fullmatch(r"\\begin\{aligned\}(.*)\\end\{aligned\}", text, flags=re.S)
    groups: list[tuple[list[str], list[str]]] = []   # (the row and its continuations, its side notes)
    for row in (_split_top_level(match.group(1), "\\\\") if match else [text]):
        left, _, right = row.partition("&")
        continues = bool(groups) and not left.strip() and right.lstrip().startswith("=")
        segments = _split_top_level(re.sub(r"(?<!\\)&", "", row), "\\qquad")
        parts = [re.sub(r",\s*$", "", p.strip()) for p in segments[:-1]] + [segments[-1].strip()]
        if continues:
            groups[-1][0].append(r"\quad " + parts[0])
            groups[-1][1].extend(parts[1:])
        else:
            groups.append(([parts[0]], parts[1:]))
    rows = [part for main, side in groups for part in main + side if part]
    rows = [re.sub(r",\\(quad|\s)", lambda m: f",\\{m.group(1)}\\allowbreak ", row) for row in rows]
    return ROW_GAP.join(rows)


def _key(panel: Panel, column: int) -> str:
    digest = hashlib.sha1("|".join((panel.title, *panel.latex)).encode()).hexdigest()[:10]
    return f"eqpanel-{column}-{digest}"


def show_panels(columns: list[list[Panel]]) -> None:
    """Each inner list of panels stacked in its own column: a bold title, the LaTeX lines, a caption."""
    for index, (column, panels) in enumerate(zip(st.columns(len(columns), gap="large"), columns)):
        with column:
            for panel in panels:
                with st.container(key=_key(panel, index)):  # the key's class carries the panels' style
                    st.markdown(f"**{panel.title}**")
                    for line in panel.latex:
                        st.latex(fit_rows(line))
                    st.caption(panel.note)


def glossary() -> None:
    """The short glossary of the course's terms, folded away."""
    with st.expander("Glossary: schedule, SNR, wrapped normal, score, guidance, predictor-corrector",
                     icon=":material/menu_book:"):
        st.markdown("\n".join(f"- **{term}.** {text}" for term, text in GLOSSARY))
