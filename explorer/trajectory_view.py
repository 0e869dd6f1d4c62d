"""What a page shows of one result at step t: the 3D view, its numbers, the update's equations and the
diagnostics. Generate and Train call ``trajectory_player`` with their own session-state prefix.

Session state for a prefix ``p``: p.supercell, p.ghost (view options), p.view_cache, p.numbers_cache
(built once per result and option), and what ``playback`` keeps (p.t.<id>, p.playing).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from .equation_view import show_panels
from .equations import langevin_panels, reverse_panels
from .figures import diagnostics_figure
from .numbers import describe
from .playback import playback
from .result import Result
from .viewer import ViewFrame, ViewOptions, trajectory_html
from .widgets import numbers_table, show_view

VIEW_HEIGHT = 470
SLIDER_PREFIX = "Step t of the reverse process"   # the 3D view finds its slider by this start of the label
MAX_CACHED_VIEWS = 8
MAX_CACHED_NUMBERS = 4000
ss = st.session_state


def step_numbers(prefix: str, result: Result, k: int, predicted: bool = False):
    """The numbers of frame k (or of the model's x0 prediction at frame k), cached per session."""
    cache = ss.setdefault(f"{prefix}.numbers_cache", {})
    key = (result.id, k, predicted)
    if key not in cache:
        structure = result.trajectory.structure(frame=k, predicted=predicted)
        shortest = None if predicted else float(result.trajectory.min_distance[k, 0])
        cache[key] = describe(structure, shortest=shortest)
        if len(cache) > MAX_CACHED_NUMBERS:
            cache.clear()
    return cache[key]


def view_frames(trajectory, task: str, predicted: bool = False) -> list[ViewFrame]:
    """Every recorded frame (or the model's x_0 prediction at every frame) as drawable data.

    All frames are shifted by one common translation that puts the final crystal's first atom on the
    cell's corner (a common shift of all atoms changes nothing physically), so a generated perovskite is
    drawn the way textbooks draw it.
    """
    n = int(trajectory.num_atoms[0])
    lattice = (trajectory.pred_lattice if predicted else trajectory.lattice)[:, 0].double().numpy()
    frac = (trajectory.pred_frac_coords if predicted else trajectory.frac_coords)[:, :n].double().numpy()
    frac = frac - trajectory.frac_coords[-1, 0].double().numpy()
    return [ViewFrame(lattice[k], frac[k], trajectory.element_numbers(k, 0),
                      trajectory.masked(k, 0) if task == "gen" else None)
            for k in range(trajectory.num_frames)]


def slider_label(result: Result) -> str:
    if result.task == "cdvae":
        return f"{SLIDER_PREFIX}: Langevin steps left, {result.steps[0]} (noise) → 0 (crystal)"
    t0 = result.settings.template_step
    if t0 is None or result.task != "csp":
        return f"{SLIDER_PREFIX}: T (noise) → 0 (crystal)"
    return f"{SLIDER_PREFIX}: t0 = {t0} (the known crystal, noised) → 0 (crystal)"


def _view(prefix: str, result: Result, supercell: int, ghost: bool) -> str:
    """The trajectory's 3D view (all frames; it follows ``?t=`` in the URL), built once per option set."""
    cache = ss.setdefault(f"{prefix}.view_cache", {})
    key = (result.id, supercell, ghost)
    if key not in cache:
        options = ViewOptions(height=VIEW_HEIGHT, supercell=(supercell,) * 3, ghost_label="model's x̂₀ (predicted)",
                              group=prefix, boundary=0.05)  # generated atoms sit near, not on, the faces
        cache[key] = trajectory_html(view_frames(result.trajectory, result.task), result.steps,
                                     view_frames(result.trajectory, result.task, True) if ghost else None,
                                     options, follow="t",
                                     slider_label=SLIDER_PREFIX)
        while len(cache) > MAX_CACHED_VIEWS:
            cache.pop(next(iter(cache)))
    return cache[key]


def _top_types(probs: np.ndarray, count: int = 3) -> str:
    from pymatgen.core.periodic_table import Element

    probs = probs.copy()
    probs[0] = 0.0
    order = np.argsort(probs)[::-1][:count]
    return " · ".join(f"{Element.from_Z(int(z)).symbol} {100 * probs[z]:.0f}%" for z in order if probs[z] > 0)


def _undecided_table(result: Result, k: int) -> None:
    trajectory = result.trajectory
    masked = trajectory.masked(k, 0)
    total = len(masked)
    st.markdown(f"**Atom types:** {total - int(masked.sum())} of {total} decided at this step.")
    if trajectory.type_probs is None or not masked.any():
        return
    probs = trajectory.type_probs[k, : total].double().numpy()
    rows = [(f"atom {i + 1}", _top_types(probs[i])) for i in np.flatnonzero(masked)]
    st.dataframe(pd.DataFrame(rows, columns=["undecided atom", "model's p(type | x_t), top 3"]), hide_index=True,
                 width="stretch", height=min(38 + 35 * len(rows), 260))


def _langevin_step(result: Result, k: int):
    """The ``LangevinStep`` of frame k of a CDVAE result (None for trajectories without them)."""
    steps = result.trajectory.coefficients
    return steps[k] if 0 <= k < len(steps) else None


def equations(result: Result, t: int) -> None:
    """The sampler's update at slider step t, with the model's schedule values filled in."""
    if result.task == "cdvae":
        k = result.trajectory.frame_of_step(t)
        step = _langevin_step(result, k)
        if step is not None:
            st.markdown("##### The Langevin update that made this frame" if step.level else "##### The start")
            panels = langevin_panels(step, float(result.trajectory.coord_score_norm[k, 0]) if step.level else None)
            show_panels([[p for p in panels if p.field == "coords"], [p for p in panels if p.field == "types"]])
        return
    if result.schedule is None:
        return
    settings = result.settings
    try:
        panels = reverse_panels(result.schedule, settings.steps, t, settings.sampler, result.task,
                                settings.guidance if settings.conditioned else 0.0, result.step_lr,
                                trajectory=result.trajectory, start_step=settings.template_step)
    except ValueError:
        return  # a step off the sampler's grid (not produced by this page)
    st.markdown(f"##### The update at t = {t}" if t else "##### The last update (it produced t = 0)")
    show_panels([[p for p in panels if p.field in ("lattice", "guidance")],
                 [p for p in panels if p.field in ("coords", "types")]])


def show_step(prefix: str, result: Result, t: int) -> None:
    """The 3D view at step t, its numbers, the update equations and the diagnostics."""
    k = result.trajectory.frame_of_step(t)
    steps = result.steps
    view_col, numbers_col = st.columns([3, 2], gap="medium")
    with numbers_col:
        sub = st.columns(2)
        supercell = sub[0].selectbox("Cells shown", (1, 2, 3), key=f"{prefix}.supercell",
                                     format_func=lambda n: f"{n}×{n}×{n}")
        ghost_on = sub[1].toggle("Ghost: model's x̂₀", key=f"{prefix}.ghost",
                                 help="The model's prediction of the final crystal, made at each step, drawn faint.")
        if result.task == "cdvae":
            step = _langevin_step(result, k)
            extra = [("Langevin steps left", f"{t} of {steps[0]}")] + (
                [("noise level l", f"{step.level} of {step.num_levels}"), ("coordinate noise σ_l", f"{step.sigma:.4f}"),
                 ("step size γ", f"{step.gamma:.3g}")] if step is not None and step.level else [])
        else:
            extra = [("step t", f"{t} of {steps[0]}"), ("lattice signal kept √ᾱ_t", f"{result.abar[t] ** 0.5:.3f}"),
                     ("coordinate noise σ_t", f"{result.sigma[t]:.3f}")]
        numbers_table(step_numbers(prefix, result, k), extra)
        if result.task == "gen":
            _undecided_table(result, k)
    with view_col:
        show_view(_view(prefix, result, supercell, ghost_on), VIEW_HEIGHT)
        st.caption("Drag to rotate, scroll to zoom; the view follows the slider. All steps are drawn with the "
                   "final crystal's first atom on the cell corner (shifting every atom together changes nothing)."
                   + (" Dark grey atoms: type not decided yet (the table lists the model's current guesses)."
                      if result.task == "gen" else "")
                   + (" A CDVAE keeps the cell its latent z predicted; only the atoms move, level by level."
                      if result.task == "cdvae" else "")
                   + (f" Symmetry kept at every step: the atoms of each Wyckoff orbit move together, and every frame "
                      f"is in space group {result.settings.space_group}." if result.settings.symmetry else ""))
    equations(result, t)
    st.plotly_chart(diagnostics_figure(result.trajectory, 0, t), width="stretch", key=f"{prefix}.diagnostics",
                    config={"displayModeBar": False})


def trajectory_player(prefix: str, result: Result) -> None:
    """Playback controls over the result's steps, and ``show_step`` at the step they select."""
    playback(prefix, result.id, result.steps, slider_label(result), lambda t: show_step(prefix, result, t))
