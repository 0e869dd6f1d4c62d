"""Relax with CHGNet: the Generate page's "Relax with CHGNet" section and the Batch page's stability proxy.

The physics lives in ``diffusion.relax``; this module loads CHGNet once per server
(``st.cache_resource``), runs relaxations with a progress bar and a Stop button, keeps the
results in the session and draws them.

Session state (keys start with ``relax.``):
    relax.max_steps, relax.batch_steps   step caps (widgets)
    relax.results        {Generate result id: GeneratedRelax}; a failed run never removes one
    relax.error          the last error of the Generate section, shown until the next success
    relax.batch          (the BatchResult it belongs to, StabilityResult)
    relax.batch_error    the last error of the stability proxy
    relax.job, relax.batch_job   a relaxation in progress (``_Job``)

Stopping: clicking Stop (or any other widget) while a relaxation runs makes Streamlit start
a new run of the page at once and raise its stop exception in the old run at the old run's
next progress-bar update. The progress callback catches it and tells the optimizer to stop;
the partial result goes into the ``_Job`` object that was put in the session before the
relaxation began (the stopped run may no longer touch session state itself), and the
exception is re-raised. The new run waits briefly for that job and shows its result.
"""
from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st
from plotly.subplots import make_subplots

from diffusion.api import (DEFAULT_MAX_STEPS, HARD_MAX_STEPS, MATCHER_TOLERANCES, MAX_BATCH_RELAX, Potential,
                           PotentialUnavailable, RelaxError, RelaxResult, StabilityResult, energies_along,
                           load_potential, relax, relax_batch)

from .figures import PALETTE, style
from .models import app_device
from .time_left import BatchClock
from .viewer import ViewFrame, grid_html
from .widgets import chart, show_view, static_table

try:  # where Streamlit keeps its stop/rerun exceptions (internal; absent = a Stop just drops the partial run)
    from streamlit.runtime.scriptrunner_utils.exceptions import ScriptControlException
except ImportError:  # pragma: no cover
    ScriptControlException = ()

VIEW_HEIGHT = 330
HOW_IT_ENDED = {"converged": "converged", "step cap": "hit the step cap", "cancelled": "stopped"}
TRAJECTORY_TAIL = 0.25    # energies along the last quarter of the diffusion trajectory
TRAJECTORY_POINTS = 10    # ... at about this many frames
STOP_WAIT_SECONDS = 10.0  # how long a new run waits for a stopped relaxation to hand over its result
ss = st.session_state


@dataclass(frozen=True)
class GeneratedRelax:
    """A relaxation of a Generate result's final structure, plus CHGNet energies along its last diffusion steps."""

    result: RelaxResult
    diffusion_energies: tuple[tuple[int, float], ...] = ()   # (step t, eV/atom)


# ---------------------------------------------------------------- the potential and the stop button

@st.cache_resource(show_spinner="Loading CHGNet (once per server; about 10 s the first time)...")
def _potential(device: str) -> Potential:
    return load_potential(device)


def get_potential() -> Potential:
    """CHGNet, loaded once and shared by all sessions. Raises ``PotentialUnavailable`` without chgnet."""
    return _potential(str(app_device()))


class _Interrupt:
    """Turns Streamlit's stop/rerun, raised inside a progress update, into a graceful stop of the optimizer."""

    def __init__(self) -> None:
        self.pending: BaseException | None = None

    def update(self, draw) -> bool | None:
        if self.pending is not None:
            return False
        try:
            draw()
        except ScriptControlException as exc:  # the user pressed Stop (or another widget)
            self.pending = exc
            return False
        return None

    def reraise(self) -> None:
        if self.pending is not None:
            raise self.pending


@dataclass
class _Job:
    """A relaxation in progress, put in the session before it starts.

    Only plain attributes are written while it runs, so a run stopped by Streamlit can still
    hand its partial result to the run that replaced it.
    """

    target: object                  # what was relaxed: a Generate result id, or the BatchResult
    outcome: object = None          # GeneratedRelax | StabilityResult
    error: str | None = None
    done: threading.Event = field(default_factory=threading.Event)


def _collect(job_key: str, store) -> None:
    """Move a finished job's outcome into the session (``store(job)``); wait a little for one still stopping."""
    job = ss.get(job_key)
    if job is None:
        return
    if not job.done.wait(STOP_WAIT_SECONDS):
        return  # still running (stopped runs end at their next step): a later rerun shows it
    ss.pop(job_key, None)
    store(job)


def _unavailable_text(exc: Exception) -> str:
    return f"CHGNet is not available, so nothing was relaxed: {exc}"


# ---------------------------------------------------------------- Generate: one structure

def _diffusion_energies(trajectory, potential: Potential) -> tuple[tuple[int, float], ...]:
    """CHGNet energies at about ``TRAJECTORY_POINTS`` frames of the trajectory's last quarter (t -> 0)."""
    frames = trajectory.num_frames
    first = int(round((frames - 1) * (1 - TRAJECTORY_TAIL)))
    indices = list(range(first, frames))
    every = max(1, math.ceil(len(indices) / TRAJECTORY_POINTS))
    steps = [int(t) for t in trajectory.timesteps.tolist()]
    try:
        structures = [trajectory.structure(frame=k) for k in indices]
        pairs = energies_along(structures, potential, every=every)
    except Exception:  # e.g. frames with undecided atom types: the plot is optional
        return ()
    return tuple((steps[indices[i]], e) for i, e in pairs)


_JOB_KEYS = {"generated": ("relax.error", "relax.job", "relax.stop"),
             "batch": ("relax.batch_error", "relax.batch_job", "relax.batch_stop")}


def _begin(kind: str, target, stop_slot, stop_help: str):
    """Load CHGNet, register the job, draw Stop and a progress bar: (potential, job, bar, interrupt), or None
    (with the reason kept for the page) when CHGNet is unavailable."""
    error_key, job_key, stop_key = _JOB_KEYS[kind]
    try:
        potential = get_potential()
    except PotentialUnavailable as exc:
        ss[error_key] = _unavailable_text(exc)
        return None
    job = _Job(target)
    ss[job_key] = job
    stop_slot.button("Stop", icon=":material/stop_circle:", key=stop_key, width="stretch", help=stop_help)
    return potential, job, st.progress(0.0, text="Relaxing with CHGNet..."), _Interrupt()


def _end(interrupt: "_Interrupt", bar, stop_slot) -> None:
    interrupt.reraise()
    bar.empty()
    stop_slot.empty()


def _relax_generated(result, max_steps: int, stop_slot) -> None:
    """Relax the result's final structure with a progress bar and a Stop button; the outcome goes into a job."""
    started = _begin("generated", result.id, stop_slot, "Stop the optimizer and keep the structure reached so far.")
    if started is None:
        return
    potential, job, bar, interrupt = started

    def progress(step: int, cap: int) -> bool | None:
        return interrupt.update(lambda: bar.progress(min(1.0, step / cap),
                                                     text=f"Relaxing with CHGNet: step {step} of at most {cap}"))

    try:
        final = result.trajectory.structure(frame=result.trajectory.num_frames - 1)
        relaxed = relax(final, potential, max_steps=max_steps, progress=progress)
        energies = () if interrupt.pending else _diffusion_energies(result.trajectory, potential)
        job.outcome = GeneratedRelax(relaxed, energies)
    except (RelaxError, ValueError) as exc:
        job.error = f"Relaxation failed: {exc}"
    finally:
        job.done.set()
    _end(interrupt, bar, stop_slot)


def _store_generated(job: _Job) -> None:
    if job.error:  # a failed run never removes an earlier one
        ss["relax.error"] = job.error
        return
    if job.outcome is None:  # it crashed (Streamlit showed the exception then)
        return
    kept = ss.setdefault("relax.results", {})
    kept[job.target] = job.outcome
    live = {r.id for r in ss.get("gen.results", [])}
    for stale in [k for k in kept if k not in live]:  # results cleared or dropped from the session
        kept.pop(stale, None)
    ss.pop("relax.error", None)


def _sg(value: tuple[str, int] | None) -> str:
    return f"{value[0]} ({value[1]})" if value else "?"


def comparison_table(relaxed: RelaxResult) -> pd.DataFrame:
    """Generated vs relaxed: energy, forces, displacement, cell and symmetry."""
    before, after = relaxed.initial.lattice, relaxed.relaxed.lattice
    rows = [
        ("energy per atom (eV/atom)", f"{relaxed.energy_before:.4f}", f"{relaxed.energy_after:.4f}"),
        ("largest force (eV/Å)", f"{relaxed.max_force_before:.3f}", f"{relaxed.max_force_after:.3f}"),
        ("RMS displacement (Å)", "reference", f"{relaxed.rms_displacement:.3f}"),
        ("a, b, c (Å)", ", ".join(f"{v:.3f}" for v in before.abc), ", ".join(f"{v:.3f}" for v in after.abc)),
        ("volume (Å³)", f"{before.volume:.2f}", f"{after.volume:.2f}  ({100 * relaxed.volume_change:+.1f}%)"),
        ("space group (spglib, 0.1 Å)", _sg(relaxed.space_group_before),
         _sg(relaxed.space_group_after) + ("  (changed)" if relaxed.space_group_changed else "  (same)")),
    ]
    return pd.DataFrame(rows, columns=["quantity", "generated", "relaxed (CHGNet)"])


def energy_figure(entry: GeneratedRelax) -> go.Figure:
    """CHGNet energy per atom along the last diffusion steps (t -> 0), when computed, and along the relaxation."""
    energies = entry.result.energies
    relaxation = go.Scatter(x=list(range(len(energies))), y=list(energies), mode="lines", name="relaxation",
                            line=dict(color=PALETTE[1]))
    if not entry.diffusion_energies:  # a stopped relaxation skips them
        fig = go.Figure(relaxation)
        fig.update_xaxes(title_text="optimizer step")
        fig.update_yaxes(title_text="eV/atom")
        style(fig, height=300, title="CHGNet energy along the relaxation (FIRE steps)")
        fig.update_layout(showlegend=False)
        return fig
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.1,
                        subplot_titles=("Last diffusion steps (t → 0)", "Relaxation (FIRE steps)"))
    t, e = zip(*entry.diffusion_energies)
    fig.add_trace(go.Scatter(x=list(t), y=list(e), mode="lines+markers", name="diffusion frame",
                             line=dict(color=PALETTE[0])), row=1, col=1)
    fig.add_trace(relaxation, row=1, col=2)
    fig.update_xaxes(title_text="step t", autorange="reversed", row=1, col=1)
    fig.update_xaxes(title_text="optimizer step", row=1, col=2)
    fig.update_yaxes(title_text="eV/atom", row=1, col=1)
    style(fig, height=300)
    fig.update_layout(showlegend=False, margin=dict(l=10, r=10, t=40, b=10))
    return fig


def show_relaxed(entry: GeneratedRelax) -> None:
    relaxed = entry.result
    st.markdown(f"**Relaxed** {relaxed.relaxed.composition.reduced_formula}: {relaxed.steps} FIRE steps "
                f"({HOW_IT_ENDED[relaxed.stopped_by]}; cap {relaxed.max_steps}) in {relaxed.seconds:.1f} s. Energy per atom "
                f"{relaxed.energy_before:.3f} → {relaxed.energy_after:.3f} eV/atom (Δ {relaxed.energy_change:+.3f}), "
                f"atoms moved {relaxed.rms_displacement:.3f} Å (RMS), space group "
                f"{_sg(relaxed.space_group_before)} → {_sg(relaxed.space_group_after)}.")
    view_col, table_col = st.columns([1.1, 1], gap="medium")
    with view_col:
        frames = [ViewFrame.from_structure(relaxed.initial).origin_on_first_atom(),
                  ViewFrame.from_structure(relaxed.relaxed).origin_on_first_atom()]
        show_view(grid_html(frames, ["generated", "relaxed (CHGNet)"], columns=2, cell_height=VIEW_HEIGHT), VIEW_HEIGHT)
    with table_col:
        table = comparison_table(relaxed)
        static_table(table)
        st.caption("RMS displacement: each atom's move (nearest periodic image, common shift removed) in the "
                   "relaxed cell; the cell's own change is the volume row. Forces are per atom.")
    chart(energy_figure(entry), key="relax.energies")
    if relaxed.stopped_by != "converged":
        st.caption(f"Not converged ({HOW_IT_ENDED[relaxed.stopped_by]}): the numbers are for the structure reached so far.")


def relax_generated(result) -> None:
    """The Generate page's section: relax the final structure of the result on screen."""
    if result is None:
        return
    st.divider()
    st.subheader("Relax with a universal potential (CHGNet)")
    st.markdown("Is the generated crystal physically sensible? CHGNet, a graph network trained on Materials Project "
                "DFT relaxations, predicts energy, forces and stress. Relaxing moves the atoms and the cell downhill "
                "(FIRE optimizer) to the nearest minimum: a good sample barely moves and keeps its symmetry. "
                "CHGNet is a fast stand-in for DFT, not a replacement.")
    max_steps, go_col, stop_col = _step_cap_row("Optimizer step cap", "relax.max_steps",
                                                "The run stops at this many steps even if forces are not yet "
                                                "below 0.05 eV/Å.")
    _collect("relax.job", _store_generated)  # one stopped by the click that started this run
    if go_col.button("Relax with CHGNet", icon=":material/compress:", key="relax.go", width="stretch"):
        _relax_generated(result, max_steps, stop_col.empty())
        _collect("relax.job", _store_generated)
    if ss.get("relax.error"):
        st.error(ss["relax.error"], icon=":material/error:")
    entry = ss.get("relax.results", {}).get(result.id)
    if entry is not None:
        show_relaxed(entry)


# ---------------------------------------------------------------- Batch: the stability proxy

def _relax_batch(batch, max_steps: int, stop_slot) -> None:
    started = _begin("batch", batch, stop_slot, "Stop and keep the samples relaxed so far.")
    if started is None:
        return
    potential, job, bar, interrupt = started
    clock = BatchClock()

    def progress(i: int, total: int, step: int, cap: int) -> bool | None:
        done = (i + min(1.0, step / cap)) / max(total, 1)
        text = f"Relaxing sample {i + 1} of {total}: step {step} · {clock.estimate(i, total, step, cap)}"
        return interrupt.update(lambda: bar.progress(done, text=text))

    try:
        job.outcome = relax_batch(batch.structures, potential, max_samples=MAX_BATCH_RELAX, max_steps=max_steps,
                                  progress=progress)
    except ValueError as exc:
        job.error = f"Relaxation failed: {exc}"
    finally:
        job.done.set()
    _end(interrupt, bar, stop_slot)


def _store_batch(job: _Job) -> None:
    if job.error:
        ss["relax.batch_error"] = job.error
        return
    if job.outcome is None:
        return
    ss["relax.batch"] = (job.target, job.outcome)
    ss.pop("relax.batch_error", None)


def _fmt(value: float, pattern: str) -> str:
    return "n/a" if value is None or not math.isfinite(value) else pattern.format(value)


def stability_table(stability: StabilityResult) -> pd.DataFrame:
    rows = []
    for i, (r, error) in enumerate(zip(stability.results, stability.errors)):
        if r is None:
            rows.append({"sample": i + 1, "still matches": False, "note": error})
            continue
        rows.append({"sample": i + 1, "formula": r.relaxed.composition.reduced_formula,
                     "E before (eV/atom)": round(r.energy_before, 4), "E after (eV/atom)": round(r.energy_after, 4),
                     "largest force before (eV/Å)": round(r.max_force_before, 3),
                     "RMS displacement (Å)": round(r.rms_displacement, 3), "still matches": bool(stability.matched[i]),
                     "space group": f"{_sg(r.space_group_before)} → {_sg(r.space_group_after)}",
                     "steps": f"{r.steps} ({HOW_IT_ENDED[r.stopped_by]})", "note": ""})
    return pd.DataFrame(rows)


def show_stability(stability: StabilityResult) -> None:
    m1, m2, m3, m4 = st.columns(4)
    matched = int(np.sum(stability.matched))
    m1.metric("still match after relaxing", _fmt(stability.fraction_matched, "{:.0%}"),
              help=f"{matched} of {stability.relaxed} relaxed samples match their generated structure "
                   f"(StructureMatcher ltol {MATCHER_TOLERANCES['ltol']}, stol {MATCHER_TOLERANCES['stol']}, "
                   f"angle_tol {MATCHER_TOLERANCES['angle_tol']}).")
    m2.metric("mean RMSD of matches", _fmt(stability.mean_match_rms, "{:.3f}"),
              help="StructureMatcher's RMS, normalized by (volume / atoms)^(1/3), over the samples that still match.")
    m3.metric("mean RMS displacement", _fmt(stability.mean_displacement, "{:.3f} Å"),
              help="Each atom's move on relaxation (nearest image, common shift removed), averaged over samples.")
    m4.metric("mean energy drop", _fmt(stability.mean_energy_drop, "{:.3f} eV/atom"),
              help="Energy per atom before minus after relaxing: small means the sample was already near a minimum.")
    stopped = " Stopped early: the samples relaxed so far are scored." if stability.cancelled else ""
    st.caption(f"{stability.relaxed} of {stability.total} samples relaxed in {stability.seconds:.1f} s.{stopped} "
               + " ".join(stability.notes))
    st.dataframe(stability_table(stability), hide_index=True, width="stretch", key="relax.batch_table")


def _step_cap_row(label: str, key: str, help_text: str | None):
    """The optimizer's step cap, with room for Go and Stop beside it: (cap, go column, stop column)."""
    cap_col, go_col, stop_col, _ = st.columns([1.2, 1, 0.7, 1.6], vertical_alignment="bottom")
    ss.setdefault(key, DEFAULT_MAX_STEPS)
    cap = int(cap_col.number_input(f"{label} (1 to {HARD_MAX_STEPS})", min_value=1, max_value=HARD_MAX_STEPS,
                                   step=10, key=key, help=help_text))
    return cap, go_col, stop_col


def stability_section(batch) -> None:
    """The Batch page's section: relax up to ``MAX_BATCH_RELAX`` samples and report the stability proxy."""
    if batch is None:
        return
    st.subheader("Stability proxy: relax with CHGNet")
    count = min(batch.num_samples, MAX_BATCH_RELAX)
    st.markdown(f"Relax {'all ' if count == batch.num_samples else 'the first '}{count} samples with the CHGNet "
                "universal potential and count how many still match their generated structure. A sample that "
                "falls apart or changes symmetry was not at a minimum; MatterGen reports the same RMSD to the "
                "relaxed structure (with DFT).")
    max_steps, go_col, stop_col = _step_cap_row("Step cap per sample", "relax.batch_steps", None)
    if go_col.button("Relax all", icon=":material/compress:", key="relax.batch_go", width="stretch",
                     help=f"At most {MAX_BATCH_RELAX} samples, one after another."):
        _relax_batch(batch, max_steps, stop_col.empty())
    _collect("relax.batch_job", _store_batch)
    if ss.get("relax.batch_error"):
        st.error(ss["relax.batch_error"], icon=":material/error:")
    stored = ss.get("relax.batch")
    if stored is not None and stored[0] is batch:
        show_stability(stored[1])
