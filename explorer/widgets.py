"""Small Streamlit widgets shared by pages: the 3D view, the numbers table, missing-3Dmol hint."""
from __future__ import annotations

import re

import pandas as pd
import streamlit as st

from .layout import kept_query_params, projector_mode, view_height
from .numbers import StructureNumbers
from .viewer import STATIC_JS

LEGEND_HEIGHT = 46   # the bar under the canvas (legend, copies, full screen); if it wraps, the canvas shrinks


def show_view(html: str, height: int) -> None:
    """Embed a 3D view's HTML (3Dmol.js comes from the app's own ``static/`` folder); taller in projector mode."""
    if not STATIC_JS.is_file():
        st.warning("3Dmol.js is not installed, so 3D views stay blank: run `make static/3Dmol-min.js` "
                   "(part of `make run`) and reload.", icon=":material/view_in_ar:")
    st.iframe(html, height=view_height(height) + LEGEND_HEIGHT)


def scroll_to(anchor_id: str) -> None:
    """Scroll the page so the element with this id is at the top (once, when the script reaches here)."""
    st.iframe(f"""<script>
      let tries = 0;
      const go = () => {{
        const target = window.parent.document.getElementById({anchor_id!r});
        if (target) target.scrollIntoView({{behavior: "smooth", block: "start"}});
        else if (tries++ < 30) setTimeout(go, 100);
      }};
      go();
    </script>""", height="content")


def numbers_table(numbers: StructureNumbers, extra: list[tuple[str, str]] | None = None) -> None:
    """The numbers of a structure as a two-column table."""
    rows = (extra or []) + numbers.rows()
    static_table(pd.DataFrame(rows, columns=["quantity", "value"]))


_MARKDOWN = re.compile(r"([\\`*_\[\]<>|~$])")   # what Markdown (and Streamlit's $math$) would act on


def _escaped(text) -> str:
    """``text`` as Markdown that shows exactly that text."""
    return _MARKDOWN.sub(r"\\\1", str(text))


def static_table(frame: pd.DataFrame) -> None:
    """A small table of words and numbers that wraps its text instead of cutting it (``st.dataframe`` draws
    on a canvas and cuts a cell wider than its column; a narrow column or 150 % zoom would hide values).
    ``st.table`` reads Markdown in its cells, so every cell is escaped to show exactly its text."""
    shown = frame.map(_escaped).rename(columns=_escaped)
    st.table(shown, hide_index=True, border="horizontal")


def chart(figure, key: str | None = None, container=None) -> None:
    """A Plotly figure at the column's width, its title written above it as page text: Plotly never wraps a
    title and cuts what runs past the chart's edge (a third of the page at 150 % zoom holds 18 characters)."""
    target = container if container is not None else st
    title = figure.layout.title.text
    if title:
        figure.update_layout(title=None, margin=dict(t=10))
        target = target.container()
        target.markdown(f"**{_escaped(title)}**")
    target.plotly_chart(figure, width="stretch", key=key, config={"displayModeBar": False})


def table_size(rows: int) -> dict[str, int]:
    """``st.dataframe`` row height and height that show every row (projector type needs taller rows)."""
    row = 44 if projector_mode() else 35
    return {"row_height": row, "height": row * (rows + 1) + 3}


def shown_item(results_key: str, shown_key: str):
    """The result picked in the session's "result shown" selector (default: the newest), or None."""
    results = st.session_state.get(results_key, [])
    if not results:
        return None
    by_id = {r.id: r for r in results}
    if st.session_state.get(shown_key) not in by_id:
        st.session_state[shown_key] = results[-1].id
    return by_id[st.session_state[shown_key]]


def result_picker(results_key: str, shown_key: str, label: str, clear_label: str, format_label) -> None:
    """The "result shown" selector (newest first) and a button that clears the session's results."""
    results = st.session_state[results_key]
    pick, clear = st.columns([5, 1], vertical_alignment="bottom")
    with pick:
        labels = {r.id: format_label(r) for r in results}
        st.selectbox(label, [r.id for r in reversed(results)], key=shown_key,
                     format_func=lambda i: labels.get(i, str(i)))
    with clear:
        if st.button(clear_label, key=f"{results_key.split('.')[0]}.clear", width="stretch"):
            st.session_state[results_key] = []
            st.session_state.pop(shown_key, None)
            st.query_params.from_dict(kept_query_params())
            st.rerun()
