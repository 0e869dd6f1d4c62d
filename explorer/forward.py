"""The Forward process page: pick a crystal, noise it to step t, see x_t over the clean crystal."""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import streamlit as st

from diffusion.api import (DATA_DIR, SCHEDULE_NAMES, Crystal, CrystalError, DatasetError, ForwardSetup,
                           available_dataset_files, forward_noise, load_csv, make_schedule)

from .equation_view import show_panels
from .equations import forward_panels
from .examples import EXAMPLE_CRYSTALS, example_structure
from .figures import coordinate_histogram
from .numbers import describe
from .viewer import ViewFrame, ViewOptions, trajectory_html
from .widgets import chart, numbers_table, show_view

MAX_UPLOAD_ATOMS = 200
HISTOGRAM_DRAWS = 128
SLIDER_LABEL = "Step t of the forward process: 0 (crystal) → T (noise)"
MAX_VIEW_FLOATS = 400_000   # coordinates embedded in one view: limits the slider's resolution for big cells
VIEW_HEIGHT = 460
ss = st.session_state


def dataset_files() -> dict[str, Path]:
    """The dataset files in the repository's data/ folder (label -> path)."""
    return available_dataset_files()


@st.cache_resource(show_spinner="Reading the dataset (parsed once, then cached on disk)...", max_entries=4)
def _dataset(path: str):
    return load_csv(path)


def _from_example() -> tuple[Crystal, str]:
    name = st.selectbox("Crystal", list(EXAMPLE_CRYSTALS), format_func=EXAMPLE_CRYSTALS.get, key="fwd.example")
    return Crystal.from_structure(example_structure(name)), f"example:{name}"


def _from_dataset() -> tuple[Crystal | None, str]:
    files = dataset_files()
    if not files:
        st.error(f"No dataset files found under `{DATA_DIR}`: the repository's data/ folder is missing.")
        return None, ""
    name = st.selectbox("Dataset", list(files), key="fwd.dataset")
    try:
        dataset = _dataset(str(files[name]))
    except DatasetError as exc:
        st.error(str(exc))
        return None, ""
    index = st.number_input(f"Entry (1 to {len(dataset)})", min_value=1, max_value=len(dataset), value=1, step=1,
                            key="fwd.index")
    crystal = dataset[int(index) - 1]
    st.caption(f"`{crystal.material_id}`: {crystal.formula}, {crystal.num_atoms} atoms")
    return crystal, f"data:{name}:{int(index)}"


def _from_upload() -> tuple[Crystal | None, str]:
    upload = st.file_uploader("CIF file", type=["cif"], key="fwd.upload",
                              help=f"An ordered crystal with at most {MAX_UPLOAD_ATOMS} atoms in its cell.")
    if upload is None:
        st.info("Upload a .cif file, or pick an example.", icon=":material/upload_file:")
        return None, ""
    data = upload.getvalue()
    try:
        crystal = Crystal.from_cif(data.decode("utf-8", errors="replace"), material_id=upload.name)
    except CrystalError as exc:
        st.error(f"{upload.name}: {exc}", icon=":material/error:")
        return None, ""
    if crystal.num_atoms > MAX_UPLOAD_ATOMS:
        st.error(f"{upload.name} has {crystal.num_atoms} atoms; this page shows at most {MAX_UPLOAD_ATOMS}.",
                 icon=":material/error:")
        return None, ""
    st.caption(f"{crystal.formula}, {crystal.num_atoms} atoms")
    return crystal, f"upload:{hashlib.sha1(data).hexdigest()}"


def pick_crystal() -> tuple[Crystal | None, str]:
    """Crystal source widgets; returns (crystal or None, a key identifying it)."""
    source = st.radio("Crystal from", ["Example", "Dataset entry", "Upload a CIF"], horizontal=True, key="fwd.source")
    if source == "Example":
        return _from_example()
    if source == "Dataset entry":
        return _from_dataset()
    return _from_upload()


@st.cache_data(max_entries=256, show_spinner=False)
def _histogram_values(key: str, _crystal: Crystal, schedule: str, T: int, t: int) -> np.ndarray:
    setup = ForwardSetup(schedule=schedule, num_steps=T)
    return np.concatenate([forward_noise(_crystal, t, setup, seed=s).frac_coords.numpy().ravel()
                           for s in range(HISTOGRAM_DRAWS)])


def slider_step(T: int, num_atoms: int) -> int:
    """Step of the t slider: 1 unless embedding every x_t of a big cell would make the view too heavy."""
    return max(1, -(-(T + 1) * num_atoms * 3 // MAX_VIEW_FLOATS))


@st.cache_data(max_entries=16, show_spinner="Noising the crystal at every step...")
def _view(key: str, _crystal: Crystal, schedule: str, T: int, seed: int, step: int, ghost: bool, supercell: int) -> str:
    """One 3D view holding x_t for every t of the slider; it shows the t in the page URL."""
    setup = ForwardSetup(schedule=schedule, num_steps=T)
    steps = list(range(0, T + 1, step))
    frames = []
    for t in steps:
        noisy = forward_noise(_crystal, t, setup, seed=seed)
        frames.append(ViewFrame(noisy.lattice.numpy(), noisy.frac_coords.numpy(), noisy.atomic_numbers.numpy()))
    clean = ViewFrame(_crystal.lattice.numpy(), _crystal.frac_coords.numpy(), _crystal.atomic_numbers.numpy())
    options = ViewOptions(height=VIEW_HEIGHT, supercell=(supercell,) * 3, ghost_label="clean crystal x₀", group="forward")
    return trajectory_html(frames, steps, [clean] if ghost else None, options, follow="t", slider_label=SLIDER_LABEL,
                           initial=0)


def forward_panel(crystal: Crystal, key: str) -> None:
    """Schedule and seed widgets, then (in a fragment) the slider, x_t in 3D, its numbers, the equations
    with step t's values, and the coordinate histogram."""
    left, middle, right = st.columns(3)
    schedule = left.selectbox("Lattice schedule", list(SCHEDULE_NAMES), index=list(SCHEDULE_NAMES).index("cosine"),
                              key="fwd.schedule")
    T = int(middle.number_input("Steps T", min_value=10, max_value=5000, value=1000, step=50, key="fwd.T"))
    seed = int(right.number_input("Noise seed", min_value=0, max_value=2**31 - 1, value=0, step=1, key="fwd.seed"))
    step = slider_step(T, crystal.num_atoms)
    if ss.get("fwd.t", 0) > T or ss.get("fwd.t", 0) % step:
        ss["fwd.t"] = min(T, ss.get("fwd.t", 0) // step * step)

    @st.fragment
    def _panel() -> None:
        t = st.slider(SLIDER_LABEL, 0, T, step=step, key="fwd.t")
        if st.query_params.get("t") != str(t):
            st.query_params["t"] = str(t)  # first: the 3D view follows the URL
        noisy = forward_noise(crystal, t, ForwardSetup(schedule=schedule, num_steps=T), seed=seed)
        sched = make_schedule(schedule, T)
        view_col, side = st.columns([3, 2], gap="medium")
        with side:
            sub = st.columns(2)
            ghost_on = sub[0].toggle("Clean crystal as a ghost", value=True, key="fwd.ghost")
            supercell = sub[1].selectbox("Cells shown", (1, 2, 3), key="fwd.supercell", format_func=lambda n: f"{n}×{n}×{n}")
            numbers = describe(noisy.to_structure())
            numbers_table(numbers, [("step t", f"{t} of {T}"), ("lattice signal kept √ᾱ_t", f"{float(sched.abar[t]) ** 0.5:.3f}"),
                                    ("coordinate noise σ_t", f"{float(sched.sigma[t]):.3f}")])
        with view_col:
            show_view(_view(key, crystal, schedule, T, seed, step, ghost_on, supercell), VIEW_HEIGHT)
        st.markdown(f"##### The equations at t = {t}")
        panels = forward_panels(sched, t)
        show_panels([[p for p in panels if p.field == "lattice"], [p for p in panels if p.field == "coords"]])
        values = _histogram_values(key, crystal, schedule, T, t)
        chart(coordinate_histogram(values, float(sched.sigma[t])), key="fwd.hist")
        st.caption(f"All fractional coordinates of x_t from {HISTOGRAM_DRAWS} independent noise draws. At t = 0 they "
                   "are a few sharp peaks (the Wyckoff positions); as σ_t grows they blur and wrap around, and near "
                   "t = T the histogram is flat: uniform on [0, 1), the prior the reverse process starts from.")
        if step > 1:
            st.caption(f"This crystal has {crystal.num_atoms} atoms, so the slider moves in steps of {step}.")

    _panel()
