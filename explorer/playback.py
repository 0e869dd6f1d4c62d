"""Trajectory playback, one component for every page: Play/Pause, step buttons and the step slider.

The caller draws what belongs to step t (``draw(t)``) inside the same fragment, so scrubbing reruns only
the player. The step is mirrored in the URL (``?t=``) first thing, because the 3D views follow the URL.

Session state for a key prefix ``p`` and an item id ``i`` (each page passes its own prefix):
    p.t.<i>      the step shown for item i (the slider's value)
    p.playing    whether the player advances by itself
"""
from __future__ import annotations

import math
from typing import Callable

import streamlit as st

PLAY_TICK_SECONDS = 0.35
PLAY_TICKS = 30            # a whole trajectory plays in about this many frames
ss = st.session_state


def step_key(prefix: str, item_id: int) -> str:
    return f"{prefix}.t.{item_id}"


def reset(prefix: str, item_id: int, t: int = 0) -> None:
    """Show step t of a new item, paused (call before the player is drawn)."""
    ss[step_key(prefix, item_id)] = t
    ss[f"{prefix}.playing"] = False


def _jump(key: str, steps: list[int], to: str) -> None:
    """Move the slider (a callback: runs before the widgets are drawn). steps run from T (noise) to 0."""
    index = steps.index(ss[key]) if ss.get(key) in steps else len(steps) - 1
    index = {"first": 0, "previous": index - 1, "next": index + 1, "last": len(steps) - 1}[to]
    ss[key] = steps[min(max(index, 0), len(steps) - 1)]


def _toggle_play(prefix: str, key: str, steps: list[int]) -> None:
    playing = not ss.get(f"{prefix}.playing", False)
    ss[f"{prefix}.playing"] = playing
    if playing and ss.get(key) == steps[-1]:
        ss[key] = steps[0]   # play again from the start


STEP_BUTTONS = (("first", ":material/first_page:", "To the start: t = T, pure noise"),
                ("previous", ":material/chevron_left:", "One recorded step back, toward noise"),
                ("next", ":material/chevron_right:", "One recorded step on, toward the crystal"),
                ("last", ":material/last_page:", "To the end: t = 0, the crystal"))


def playback(prefix: str, item_id: int, steps: list[int], label: str, draw: Callable[[int], None]) -> None:
    """Play/Pause, start / previous / next / end buttons and a slider over ``steps`` (T -> 0); then draw(t).

    Args:
        prefix: the page's session-state prefix (``gen``, ``cmp``, ``train``).
        steps: the recorded steps, from the first (noise) to the last (0).
        label: the slider's label (3D views find their slider by its start).
    """
    key = step_key(prefix, item_id)
    if ss.get(key) not in steps:
        ss[key] = steps[-1]

    @st.fragment(run_every=PLAY_TICK_SECONDS if ss.get(f"{prefix}.playing") else None)
    def _player() -> None:
        finished = False
        if ss.get(f"{prefix}.playing"):
            index = min(steps.index(ss[key]) + max(1, math.ceil(len(steps) / PLAY_TICKS)), len(steps) - 1)
            ss[key] = steps[index]
            finished = index == len(steps) - 1
        columns = st.columns([1.3, 0.55, 0.55, 0.55, 0.55, 8], vertical_alignment="bottom", gap="small")
        playing = ss.get(f"{prefix}.playing", False)
        if columns[0].button("Pause" if playing else "Play", key=f"{prefix}.play", width="stretch",
                             icon=":material/pause:" if playing else ":material/play_arrow:"):
            _toggle_play(prefix, key, steps)
            st.rerun()   # the whole page: the fragment's timer is set when it is first drawn
        for column, (name, icon, tip) in zip(columns[1:5], STEP_BUTTONS):
            column.button("", icon=icon, key=f"{prefix}.{name}", help=tip, width="stretch",
                          on_click=_jump, args=(key, steps, name))
        with columns[5]:
            st.select_slider(label, options=steps, key=key)
        t = int(ss[key])
        if st.query_params.get("t") != str(t):
            st.query_params["t"] = str(t)  # first: the 3D views follow the URL
        draw(t)
        if finished:
            ss[f"{prefix}.playing"] = False
            st.rerun()

    _player()
