"""Session-state chores every page with results does in the same way."""
from __future__ import annotations

import streamlit as st

ss = st.session_state


def start_page_state(prefix: str, widgets: tuple[str, ...], models) -> bool:
    """Keep widget values while their widget is hidden, make the results list, and say whether this is
    the page's first run in the session (or its model has gone from the folder): then set defaults."""
    for key in widgets:  # Streamlit forgets a widget's value while the widget is not drawn
        if key in ss:
            ss[key] = ss[key]
    ss.setdefault(f"{prefix}.results", [])
    ss.setdefault(f"{prefix}.next_id", 1)
    ss.setdefault(f"{prefix}.playing", False)
    if ss.get(f"{prefix}.model") not in {m.name for m in models}:
        ss.pop(f"{prefix}.initialized", None)
    if ss.get(f"{prefix}.initialized"):
        return False
    ss[f"{prefix}.initialized"] = True
    return True
