"""The Open a trajectory page: another model's trajectory file (MatterGen, CDVAE, DiffCSP, any extxyz / ASE
trajectory, a zip of CIFs, this app's own export) under the same slider, 3D view and numbers as Generate, and
"run our model on this composition" into Compare (the readers are ``diffusion.trajectory_files``).

Session state (keys start with ``open.``):
    open.files     opened files of this session, newest last: (id, file name, OpenedTrajectories); a file that
                   fails to open never removes one
    open.shown     id of the file on screen;  open.sample  the sample index shown (a widget)
    open.error     why the last file did not open
    open.t.<key>, open.playing   the player's step and play state (``playback.py``)
"""
from __future__ import annotations

import time
from dataclasses import replace

import numpy as np
import plotly.graph_objects as go
import streamlit as st
from plotly.subplots import make_subplots

from diffusion.api import (MAX_FRAMES, MAX_STRIP_PANELS, MAX_TRAJECTORY_FILE_BYTES, SYMPREC, TrajectoryFileError,
                           evenly_spaced_steps, read_trajectory_bytes, recommended, render_gif, render_strip)

from .compositions import check_formula
from .downloads import trajectory_key
from .figures import MARKER_COLOR, PALETTE, style
from .models import default_model, get_model, model_info, sample_trajectory
from .recommended_field import retrieved_setting
from .settings import GenerateSettings
from .numbers import describe
from .playback import playback
from .trajectory_view import view_frames
from .viewer import ViewOptions, trajectory_html
from .widgets import numbers_table, show_view

MAX_OPENED = 4
VIEW_HEIGHT = 470
SLIDER_PREFIX = "Frame of the opened trajectory"   # the 3D view finds its slider by this start of the label
FILE_TYPES = ["zip", "extxyz", "xyz", "traj", "pt", "cif"]
ss = st.session_state


def init_state() -> None:
    ss.setdefault("open.files", [])
    ss.setdefault("open.next_id", 1)


def open_bytes(data: bytes, name: str) -> None:
    """Read a file into the session (kept with the earlier ones); a bad file leaves a message, nothing else."""
    try:
        opened = read_trajectory_bytes(data, name)
    except TrajectoryFileError as exc:
        ss["open.error"] = f"Could not open {name}: {exc}"
        return
    except Exception as exc:  # a reader bug must not break the page or drop earlier files
        ss["open.error"] = f"Could not open {name}: unexpected {type(exc).__name__}: {exc}"
        return
    file_id = ss["open.next_id"]
    ss["open.next_id"] += 1
    ss["open.files"] = (ss["open.files"] + [(file_id, name, opened)])[-MAX_OPENED:]
    kept = {f[0] for f in ss["open.files"]}
    ss["open.labels"] = {i: labels for i, labels in ss.get("open.labels", {}).items() if i in kept}
    ss["open.shown"] = file_id
    ss["open.sample"] = 0
    ss.pop("open.error", None)


def upload_section() -> None:
    """The uploader; a new upload is read once (Streamlit keeps the widget's file across reruns)."""
    limit = MAX_TRAJECTORY_FILE_BYTES // 2**20
    upload = st.file_uploader(
        f"A trajectory file (at most {limit} MB)", type=FILE_TYPES, key="open.upload",
        help="MatterGen's generated_trajectories.zip or generated_crystals.extxyz; CDVAE's eval_recon.pt / "
             "eval_gen.pt / eval_opt.pt (with --save_traj they hold every step); DiffCSP's eval_diff.pt / eval_gen.pt; "
             "any multi-frame extended XYZ or ASE .traj with a cell; a zip of CIFs (frames in name order); this "
             "app's own trajectory download. What each holds: docs/formats.md.")
    if upload is not None and ss.get("open.read_upload") != upload.file_id:
        ss["open.read_upload"] = upload.file_id
        if upload.size > MAX_TRAJECTORY_FILE_BYTES:
            ss["open.error"] = f"{upload.name} is {upload.size / 2**20:.1f} MB; the limit is {limit} MB."
        else:
            open_bytes(upload.getvalue(), upload.name)


def shown_file():
    files = ss.get("open.files", [])
    return next((f for f in files if f[0] == ss.get("open.shown")), files[-1] if files else None)


def _sample_labels(file_id: int, opened) -> list[str]:
    """The sample picker's labels, built once per opened file (each needs the last frame as a structure)."""
    labels = ss.setdefault("open.labels", {})
    if file_id not in labels:
        labels[file_id] = [_sample_label(opened, i) for i in range(len(opened.samples))]
    return labels[file_id]


def _sample_label(opened, index: int) -> str:
    trajectory = opened.samples[index]
    final = trajectory.structure(frame=trajectory.num_frames - 1)
    frames = f"{trajectory.num_frames} frame{'s' if trajectory.num_frames != 1 else ''}"
    return f"sample {index}: {final.composition.reduced_formula}, {len(final)} atoms, {frames}"


def picker() -> tuple[int, object, int] | None:
    """Which opened file and which of its samples; (file id, OpenedTrajectories, sample index) or None."""
    files = ss.get("open.files", [])
    if not files:
        st.info("Open a file above to scrub through its frames, or press *Try an example* for this app's own "
                "trajectory of SrTiO₃.", icon=":material/info:")
        return None
    ids = [f[0] for f in files]
    if ss.get("open.shown") not in ids:
        ss["open.shown"] = ids[-1]
    left, right = st.columns([1, 1.4])
    left.selectbox("File", ids, key="open.shown", format_func=lambda i: next(f"{n} ({o.format})" for j, n, o in files
                                                                                if j == i))
    file_id, name, opened = shown_file()
    count = len(opened.samples)
    if ss.get("open.sample", 0) >= count:
        ss["open.sample"] = 0
    right.selectbox(f"Sample ({count} in the file)", list(range(count)), key="open.sample",
                    format_func=_sample_labels(file_id, opened).__getitem__)
    for note in opened.notes:
        st.caption(note)
    return file_id, opened, int(ss["open.sample"])


def _steps(trajectory) -> list[int]:
    return [int(t) for t in trajectory.timesteps.tolist()]


@st.cache_data(max_entries=64, show_spinner=False)
def _frame_groups(_trajectory, key: str) -> list[int]:
    """spglib's space group (0 when it finds none) of every frame; ``key`` is the trajectory's content hash (the
    cache is shared by every session, so a session's own file numbers would not do)."""
    from diffusion.api import space_group_number

    groups = []
    for k in range(_trajectory.num_frames):
        try:
            groups.append(int(space_group_number(_trajectory.structure(frame=k)) or 0))
        except Exception:
            groups.append(0)
    return groups


def frames_figure(trajectory, groups: list[int], k: int) -> go.Figure:
    """Volume, shortest distance and space group against the frame, with a marker at frame k."""
    frames = np.arange(trajectory.num_frames)
    rows = (("volume (Å³)", trajectory.volume[:, 0].double().numpy()),
            ("shortest distance (Å)", trajectory.min_distance[:, 0].double().numpy()),
            (f"space group (spglib, {SYMPREC} Å)", np.asarray(groups, float)))
    fig = make_subplots(rows=1, cols=3, subplot_titles=[title for title, _ in rows], horizontal_spacing=0.08)
    for col, (title, y) in enumerate(rows, start=1):
        fig.add_trace(go.Scatter(x=frames, y=y, mode="lines+markers" if len(frames) < 60 else "lines",
                                 line=dict(color=PALETTE[0], width=2), showlegend=False,
                                 hovertemplate="frame %{x}<br>%{y:.4g}<extra></extra>"), row=1, col=col)
        fig.add_trace(go.Scatter(x=[k], y=[y[k]], mode="markers", showlegend=False,
                                 marker=dict(color=MARKER_COLOR, size=11, line=dict(color="white", width=1.5))),
                      row=1, col=col)
    fig.add_hline(y=0.5, line=dict(color="#888888", dash="dash", width=1), row=1, col=2)
    fig.update_xaxes(title_text="frame")
    return style(fig, 300)


def _view(file_id: int, index: int, trajectory) -> str:
    cache = ss.setdefault("open.view_cache", {})
    key = (file_id, index)
    if key not in cache:
        options = ViewOptions(height=VIEW_HEIGHT, group="open", boundary=0.05)
        cache[key] = trajectory_html(view_frames(trajectory, "csp"), _steps(trajectory), None, options, follow="t",
                                     slider_label=SLIDER_PREFIX)
        while len(cache) > 8:
            cache.pop(next(iter(cache)))
    return cache[key]


def show_frame(file_id: int, opened, index: int, t: int) -> None:
    trajectory = opened.samples[index]
    k = trajectory.frame_of_step(t)
    view_col, numbers_col = st.columns([3, 2], gap="medium")
    with view_col:
        show_view(_view(file_id, index, trajectory), VIEW_HEIGHT)
        st.caption("Drag to rotate, scroll to zoom; the view follows the slider. The frames are drawn as the file "
                   "stores them (first frame left, last right); the app adds nothing the file does not hold.")
    with numbers_col:
        structure = trajectory.structure(frame=k)
        numbers_table(describe(structure, shortest=float(trajectory.min_distance[k, 0])),
                      [("frame", f"{k + 1} of {trajectory.num_frames}"), ("formula", structure.composition.formula)])
    groups = _frame_groups(trajectory, trajectory_key(trajectory))
    st.plotly_chart(frames_figure(trajectory, groups, k), width="stretch", key="open.frames",
                    config={"displayModeBar": False})


def player(file_id: int, opened, index: int) -> None:
    trajectory = opened.samples[index]
    label = f"{SLIDER_PREFIX}: first → last ({trajectory.num_frames} frames)"
    playback("open", file_id * 10_000 + index, _steps(trajectory), label,
             lambda t: show_frame(file_id, opened, index, t))


def exports(file_id: int, opened, index: int, name: str) -> None:
    """The shown sample as a GIF or PNG strip, and its last frame as a CIF."""
    from pymatgen.io.cif import CifWriter

    trajectory = opened.samples[index]
    stem = f"{name.rsplit('.', 1)[0]}_sample{index}"
    a, b, c = st.columns(3)
    a.download_button("Last frame (CIF)", str(CifWriter(trajectory.structure(frame=trajectory.num_frames - 1))),
                      file_name=f"{stem}.cif", mime="chemical/x-cif", key="open.cif", icon=":material/download:")
    frames = min(20, trajectory.num_frames, MAX_FRAMES)
    b.download_button("Animation (GIF)", lambda: _picture(trajectory, "gif", frames), file_name=f"{stem}.gif",
                      mime="image/gif", key="open.gif", icon=":material/animated_images:")
    panels = min(6, trajectory.num_frames, MAX_STRIP_PANELS)
    c.download_button("Strip (PNG)", lambda: _picture(trajectory, "png", panels), file_name=f"{stem}.png",
                      mime="image/png", key="open.png", icon=":material/image:")


def _picture(trajectory, kind: str, count: int) -> bytes:
    steps = evenly_spaced_steps(trajectory, count)
    return (render_gif if kind == "gif" else render_strip)(trajectory, steps)


def example_bytes(entry) -> tuple[bytes, str]:
    """This app's own export of a short SrTiO3 trajectory (the model ``entry``, DDIM 20 steps), as a file."""
    from diffusion.api import generate

    model = get_model(entry)
    kwargs = dict(composition="SrTiO3") if model.process.task == "csp" else dict(num_atoms=5)
    trajectory = generate(model, sampler="ddim", steps=min(20, model.num_steps), seed=0, **kwargs)
    return trajectory.to_extxyz(0).encode(), f"SrTiO3_{entry.name}_ddim20_seed0.extxyz"


def example_button(models) -> None:
    if st.button("Try an example", key="open.example", icon=":material/science:",
                 help="Samples SrTiO3 with this app's default model and opens its trajectory download, as a file "
                      "from another program would be opened."):
        try:
            data, name = example_bytes(default_model(models))
        except Exception as exc:
            ss["open.error"] = f"The example could not be made: {exc}"
            return
        open_bytes(data, name)


# ---------------------------------------------------------------- our model on the same composition, in Compare

def compare_with_ours(opened, index: int, name: str, models) -> None:
    """Sample the shown sample's composition with our default structure-prediction model at its recommended
    setting, and open both in Compare (the file's frames spread over the model's 0..T axis)."""
    trajectory = opened.samples[index]
    final = trajectory.structure(frame=trajectory.num_frames - 1)
    composition = "".join(f"{el.symbol}{int(n)}" for el, n in final.composition.items())
    entry = next((m for m in [default_model(models)] + list(models) if m.task == "csp"), None)
    if entry is None:
        ss["open.error"] = "No structure-prediction model is offered to compare with."
        return
    try:
        info = model_info(entry)
        numbers = check_formula(info, composition)
        settings = GenerateSettings(model=entry.name, composition=composition, seed=0)
        setting = recommended(entry.card)
        if setting is not None:
            changes, _ = retrieved_setting(entry, setting, numbers, None, info.num_steps)
            settings = replace(settings, **changes)
        else:
            settings = replace(settings, sampler="ddim", steps=min(100, info.num_steps))
        started = time.perf_counter()
        ours = sample_trajectory(entry.path, entry.version, settings)
        seconds = time.perf_counter() - started
        model = get_model(entry)
    except Exception as exc:
        ss["open.error"] = f"Our model cannot make {composition}: {exc}"
        return
    # Compare builds the comparison from this hand-off on its next run (pages keep to their own modules)
    ss["cmp.incoming"] = dict(label=f"{name}, sample {index}", theirs=trajectory.spread_over(model.num_steps),
                              settings=settings, ours=ours, seconds=seconds, task=model.process.task,
                              abar=model.abar.detach().cpu().double().numpy(),
                              sigma=model.sigma.detach().cpu().double().numpy())
    ss["open.go_compare"] = True


def compare_button(file_id: int, opened, index: int, name: str, models) -> None:
    st.button("Run our model on this composition, side by side", key="open.compare", icon=":material/compare:",
              on_click=compare_with_ours, args=(opened, index, name, models),
              help="Samples the last frame's composition with the default model at its recommended setting and "
                   "shows both trajectories in Compare under one slider.")
