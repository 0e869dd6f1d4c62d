"""The Generate page's run and result: the Generate button, the result on screen with its player,
downloads and the model warm-up. Controls are in ``generate_controls.py``, state in ``generate_state.py``."""
from __future__ import annotations

import streamlit as st

from diffusion.api import VALID_MIN_DISTANCE

from .downloads import downloads
from .generate_outcome import outcome
from .generate_state import PREFIX, sync_url
from .models import ModelEntry, get_model, model_entry
from .playback import reset, step_key
from .result import Result, run_generation
from .settings import GenerateSettings
from .trajectory_view import step_numbers, trajectory_player
from .widgets import result_picker, scroll_to, shown_item

VIEW_ANCHOR = "gen-view"   # where a one-click example scrolls to: the player and its 3D view

MAX_RESULTS = 12
ss = st.session_state


def run(entry: ModelEntry, settings: GenerateSettings) -> None:
    """Sample (cached) and keep the result; an error is kept for display and nothing is removed."""
    try:
        result = run_generation(entry, settings, ss["gen.next_id"])
    except Exception as exc:  # a failed run must never break the page or wipe earlier results
        ss["gen.error"] = f"Generation failed: {exc}"
        return
    ss["gen.next_id"] += 1
    ss["gen.results"] = (ss["gen.results"] + [result])[-MAX_RESULTS:]
    ss["gen.shown"] = result.id
    step = ss.pop("gen.link_step", None)
    reset(PREFIX, result.id, result.steps[result.trajectory.frame_of_step(step)] if step is not None else 0)
    ss.pop("gen.error", None)


def generate_button(entry: ModelEntry, settings: GenerateSettings | None, problem: str | None) -> None:
    pressed = st.button("Generate", type="primary", icon=":material/auto_awesome:", key="gen.go")
    pending = ss.pop("gen.pending", False)
    if pressed or pending:
        if settings is None or problem:
            ss["gen.error"] = f"Nothing generated: fix the {problem or 'settings'} first."
        else:
            run(entry, settings)
    if ss.get("gen.error"):
        st.error(ss["gen.error"], icon=":material/error:")
    note = ss.pop("gen.example_note", None)
    if note and not ss.get("gen.error"):
        st.caption(note)


def shown_result() -> Result | None:
    """The result on screen (None before the first run), e.g. for the relax section below the player."""
    return shown_item("gen.results", "gen.shown")


def warm_up(models: list[ModelEntry]) -> None:
    """Load the selected model while the user reads the page (last thing on the page), so the first
    press of Generate only samples. Loading is cached and shared by every session."""
    entry = model_entry(models, ss.get("gen.model", ""))
    if entry is not None:
        try:
            get_model(entry)
        except Exception:
            pass  # the Generate button reports a broken checkpoint next to itself


def result_line(result: Result) -> str:
    """One sentence on what came out."""
    final = result.trajectory.structure(frame=result.trajectory.num_frames - 1)
    numbers = step_numbers(PREFIX, result, result.trajectory.num_frames - 1)
    sg = f", space group {numbers.space_group[0]} ({numbers.space_group[1]})" if numbers.space_group else ""
    validity = "structurally valid" if numbers.valid else f"NOT valid (atoms closer than {VALID_MIN_DISTANCE} Å)"
    return (f"**Generated:** {final.composition.reduced_formula} ({len(final)} atoms){sg}, {validity}; "
            f"{result.trajectory.num_frames} recorded steps, "
            + ("taken from the cache (same settings as before)." if result.seconds < 0.1 else
               f"sampled in {result.seconds:.1f} s."))


def results_section(models: list[ModelEntry]) -> None:
    if shown_result() is None:
        st.info("Press **Generate** (or a one-click example) to sample a crystal. You will then scrub a slider "
                "from t = T, pure noise, to t = 0, the generated crystal, and watch it condense.",
                icon=":material/info:")
        return
    result_picker("gen.results", "gen.shown", "Result shown (earlier results stay here for this session)",
                  "Clear results", lambda r: f"{r.label}  ({r.seconds:.1f} s)")
    result = shown_result()
    st.markdown(result_line(result))
    outcome(PREFIX, model_entry(models, result.settings.model), result)
    st.markdown(f'<span id="{VIEW_ANCHOR}"></span>', unsafe_allow_html=True)
    trajectory_player(PREFIX, result)
    if ss.pop("gen.scroll_to_view", False):
        scroll_to(VIEW_ANCHOR)
    sync_url(result, int(ss[step_key(PREFIX, result.id)]))
    downloads(PREFIX, result)
