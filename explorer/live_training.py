"""The Train page: a tiny model trained live on a handful of crystals, its loss, its noise predictions, samples.

The training itself is ``diffusion.live.LiveTrainer`` (a background thread, one torch
thread, CPU). This module picks the crystals, starts and stops the run, draws the loss
while it grows (a fragment that reruns itself every ``REFRESH_SECONDS`` while training),
and samples the current weights with ``diffusion.generate``, shown with the trajectory player
that Generate uses (``trajectory_view.py``, keys ``train.t.<id>``, ``train.playing``).

Limits: one running training per session ("Train again" replaces a finished or stopped
one); at most ``MAX_CONCURRENT`` running trainings on the server; the run stops by itself
after its steps, its wall-time limit, or shortly after its browser session has gone.

Session state (all keys start with ``train.``):
    widget values   train.dataset, train.entries, train.examples, train.upload, train.steps, train.T,
                    train.lr, train.seed, train.noise_crystal, train.noise_t, train.sampler,
                    train.sample_steps, train.sample_seed, train.target
    train.trainer   the session's LiveTrainer (kept after it ends, until Train again replaces it)
    train.labels    the labels of the crystals it trains on
    train.notice    why the last press of Train started nothing
    train.sample    the last "Sample now" result (an ``explorer.result.Result`` with a negative id)
"""
from __future__ import annotations

import math
import threading
import time
import weakref
from typing import Callable

import pandas as pd
import streamlit as st

from diffusion.api import (MAX_LIVE_ATOMS, MAX_LIVE_CRYSTALS, MAX_LIVE_SECONDS, MAX_LIVE_STEPS, Crystal, CrystalError,
                           DatasetError, LiveConfig, LiveTrainer, available_dataset_files, composition_text, generate,
                           load_csv, match_rms, noise_prediction)

from .examples import EXAMPLE_CRYSTALS, example_structure
from .layout import controls_section
from .playback import reset
from .result import Result, result_of
from .trajectory_view import trajectory_player
from .live_figures import loss_figure, noise_figure
from .settings import SAMPLER_LABELS, GenerateSettings

REFRESH_SECONDS = 1.0
MAX_CONCURRENT = 2            # running trainings on the whole server (every session shares its CPUs)
SESSION_GRACE_SECONDS = 15.0  # a dropped connection may come back: stop only after this long without one
DATASET_CHOICES = 500         # entries offered from a dataset file (the first ones)
# Two ideal cubic Perov-5 perovskites (LaAuO3 and CaCdO3, the file's #10 and #53); with the defaults
# below Sample now rebuilds its crystal in most presses (docs/teaching.md#train-in-class has the measurements).
DEFAULT_ENTRIES = (9, 52)
T_CHOICES = (100, 200, 500, 1000)
LR_CHOICES = (5e-4, 1e-3, 2e-3, 5e-3)
ss = st.session_state

_TRAINERS: "weakref.WeakSet[LiveTrainer]" = weakref.WeakSet()
_TRAINERS_LOCK = threading.Lock()


# ---------------------------------------------------------------- state

DEFAULTS = {"train.examples": [], "train.steps": 5000, "train.T": 200, "train.lr": 2e-3, "train.seed": 0,
            "train.sampler": "ddpm", "train.sample_seed": 0}
WIDGETS = ("train.dataset", "train.entries", "train.examples", "train.steps", "train.T", "train.lr", "train.seed",
           "train.noise_crystal", "train.noise_t", "train.sampler", "train.sample_steps", "train.sample_seed",
           "train.target")   # not train.upload: a file uploader's value cannot be set


def init_state() -> None:
    """Defaults on the first visit; widget values survive a visit to another page."""
    for key in WIDGETS:
        if key in ss:
            ss[key] = ss[key]
    for key, value in DEFAULTS.items():
        ss.setdefault(key, value)


# ---------------------------------------------------------------- picking crystals

@st.cache_resource(show_spinner="Reading the dataset (parsed once, then cached on disk)...", max_entries=4)
def _dataset(path: str):
    return load_csv(path)


@st.cache_data(show_spinner=False, max_entries=4)
def _entry_labels(path: str) -> list[str]:
    dataset = _dataset(path)
    return [f"{i + 1}: {composition_text(c)} ({c.num_atoms} atoms)" for i, c in
            enumerate(dataset.crystals[:DATASET_CHOICES])]


def _upload_crystals() -> list[tuple[str, Crystal]]:
    uploads = st.file_uploader("Your own CIF files", type=["cif"], accept_multiple_files=True, key="train.upload",
                               help=f"Ordered crystals with at most {MAX_LIVE_ATOMS} atoms in the cell.")
    out = []
    for upload in uploads or []:
        try:
            crystal = Crystal.from_cif(upload.getvalue().decode("utf-8", errors="replace"), material_id=upload.name)
        except CrystalError as exc:
            st.error(f"{upload.name}: {exc}", icon=":material/error:")
            continue
        out.append((f"upload: {upload.name}", crystal))
    return out


def pick_crystals() -> list[tuple[str, Crystal]]:
    """The crystal widgets (a dataset's entries, built-in examples, uploads); returns (label, crystal) pairs."""
    box = controls_section("Crystals to train on", has_result="train.trainer" in ss)
    data_col, example_col, upload_col = box.columns([1.4, 1, 1], gap="large")
    picked: list[tuple[str, Crystal]] = []
    with data_col:
        files = available_dataset_files()
        if files:
            name = st.selectbox("Dataset file", list(files), key="train.dataset")
            try:
                dataset = _dataset(str(files[name]))
                labels = _entry_labels(str(files[name]))
            except DatasetError as exc:
                st.error(str(exc), icon=":material/error:")
                dataset, labels = None, []
            if dataset is not None:
                if "train.entries" not in ss or any(i >= len(labels) for i in ss["train.entries"]):
                    ss["train.entries"] = [i for i in DEFAULT_ENTRIES if i < len(labels)]
                st.multiselect(f"Entries of {name} (the first {len(labels)} are offered)", list(range(len(labels))),
                               key="train.entries", format_func=lambda i: labels[i],
                               help="Crystals from the benchmark file, numbered as in the file.")
                picked += [(f"{name} #{i + 1}", dataset.crystals[i]) for i in ss["train.entries"]]
        else:
            st.caption("No dataset files in the repository's data/ folder: use the examples or upload CIFs.")
    with example_col:
        st.multiselect("Built-in examples", list(EXAMPLE_CRYSTALS), key="train.examples", format_func=EXAMPLE_CRYSTALS.get,
                       help="Textbook crystals (conventional cells).")
        picked += [(f"example: {name}", Crystal.from_structure(example_structure(name))) for name in ss["train.examples"]]
    with upload_col:
        picked += _upload_crystals()
    return picked


def _crystal_table(picked: list[tuple[str, Crystal]]) -> None:
    rows = [(label, composition_text(c), c.num_atoms, f"{c.volume / c.num_atoms:.1f}") for label, c in picked]
    st.dataframe(pd.DataFrame(rows, columns=["crystal", "cell", "atoms", "volume per atom (Å³)"]), hide_index=True,
                 width="stretch", height=min(38 + 35 * len(rows), 250))


def settings_row() -> LiveConfig:
    box = controls_section("Training settings", has_result="train.trainer" in ss)
    steps_col, t_col, lr_col, seed_col = box.columns(4)
    steps = steps_col.number_input(f"Optimizer steps (at most {MAX_LIVE_STEPS})", min_value=10, max_value=MAX_LIVE_STEPS,
                                   step=500, key="train.steps",
                                   help="Each step shows the model every picked crystal several times (up to 16 copies), "
                                        "each copy noised to its own random t; the learning rate falls to 0 by the last step.")
    T = t_col.selectbox("Diffusion steps T", T_CHOICES, key="train.T",
                        help="Fewer steps: each one is a bigger jump, and a tiny model learns them faster.")
    lr = lr_col.select_slider("Learning rate (Adam)", LR_CHOICES, key="train.lr", format_func=lambda v: f"{v:g}")
    seed = seed_col.number_input("Seed (initial weights, noise)", min_value=0, max_value=2**31 - 1, step=1,
                                 key="train.seed")
    return LiveConfig(steps=int(steps), num_steps=int(T), lr=float(lr), seed=int(seed), max_seconds=MAX_LIVE_SECONDS)


# ---------------------------------------------------------------- starting and stopping

def _session_alive() -> Callable[[], bool]:
    """``keep_going`` for the trainer: False once this browser session has been gone for a while."""
    from streamlit.runtime import Runtime
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx()
    session_id = ctx.session_id if ctx is not None else None
    gone_since = [None]

    def alive() -> bool:
        if session_id is None or not Runtime.exists():
            return True  # no server around (e.g. AppTest): the step and time limits still apply
        if Runtime.instance().is_active_session(session_id):
            gone_since[0] = None
            return True
        gone_since[0] = gone_since[0] or time.monotonic()
        return time.monotonic() - gone_since[0] < SESSION_GRACE_SECONDS

    return alive


def start(picked: list[tuple[str, Crystal]], config: LiveConfig) -> None:
    """Start this session's training, or say why not (kept in ``train.notice``)."""
    ss.pop("train.notice", None)
    previous: LiveTrainer | None = ss.get("train.trainer")
    if previous is not None and previous.running:
        ss["train.notice"] = ("A training is running in this session: press Stop (or wait for it to finish), "
                              "then Train again.")
        return
    try:
        config.validate([c for _, c in picked])
    except ValueError as exc:
        ss["train.notice"] = f"Nothing started: {exc}."
        return
    with _TRAINERS_LOCK:
        if sum(1 for trainer in list(_TRAINERS) if trainer.running) >= MAX_CONCURRENT:
            ss["train.notice"] = (f"The server is already running {MAX_CONCURRENT} trainings for other visitors; "
                                  "try again in a minute.")
            return
        trainer = LiveTrainer([c for _, c in picked], config, keep_going=_session_alive())
        _TRAINERS.add(trainer)
    trainer.start()
    for key in ("train.sample", "train.sample_error", "train.sample_target", "train.sample_step", "train.noise_crystal",
                "train.target"):
        ss.pop(key, None)  # they belong to the previous model
    ss["train.trainer"] = trainer
    ss["train.labels"] = [label for label, _ in picked]
    ss["train.noise_t"] = config.num_steps // 2
    ss["train.sample_steps"] = config.num_steps


def train_button(picked: list[tuple[str, Crystal]], config: LiveConfig) -> None:
    again = "train.trainer" in ss
    if st.button("Train again" if again else "Train", type="primary", icon=":material/model_training:", key="train.go",
                 help="A new model from fresh weights, with the crystals and settings above; it replaces the "
                      "one below." if again else None):
        start(picked, config)
    notice = ss.get("train.notice")
    if notice:
        (st.warning if notice.startswith("A training is running") else st.error)(notice, icon=":material/error:")


# ---------------------------------------------------------------- the live panel

def _status_line(trainer: LiveTrainer, history: list) -> str:
    config = trainer.config
    if not history:
        return "Starting..."
    last = history[-1]
    rate = last.step / last.seconds if last.seconds > 0 else math.nan
    state = {"running": "training", "finished": "finished", "stopped": "stopped by you",
             "time limit": f"stopped at the {config.max_seconds:.0f} s limit",
             "session ended": "stopped: the browser session ended"}.get(trainer.status, trainer.status)
    return (f"**{state.capitalize()}**: step {last.step} of {config.steps} · loss {last.total:.3f} · "
            f"{last.seconds:.1f} s · {rate:.0f} steps/s")


def _noise_panel(trainer: LiveTrainer) -> None:
    labels = ss.get("train.labels", [])
    T = trainer.config.num_steps
    ss.setdefault("train.noise_t", T // 2)
    pick, slide = st.columns([1, 1.3])
    index = pick.selectbox("Crystal", list(range(len(trainer.crystals))), key="train.noise_crystal",
                           format_func=lambda i: labels[i] if i < len(labels) else str(i))
    t = slide.slider("Noise it to step t", 1, T, key="train.noise_t")
    prediction = noise_prediction(trainer.snapshot(), trainer.crystals[int(index)], int(t), seed=0)
    st.plotly_chart(noise_figure(prediction), width="stretch", key="train.noise_plot", config={"displayModeBar": False})
    st.caption(f"The crystal noised to t = {t} (one fixed noise draw) and the model's guess of that noise, with the "
               f"weights of step {trainer.step}. Mean squared error: lattice {prediction.lattice_mse:.3f}, "
               f"coordinates {prediction.coords_mse:.3f} (an untrained model scores about 1; points on the dashed "
               "line are perfect). Small t is hard for the coordinates: the noise is tiny and the score is large.")


def live_panel() -> None:
    """Status, Stop, the loss curve and the noise-prediction panel; reruns itself every second while training."""
    trainer: LiveTrainer | None = ss.get("train.trainer")
    if trainer is None:
        st.info("Pick a few crystals and press **Train**. The loss curve grows here while the model learns; "
                "a few hundred steps take seconds to a minute on a CPU.", icon=":material/info:")
        return
    was_running = trainer.running

    @st.fragment(run_every=REFRESH_SECONDS if was_running else None)
    def _live() -> None:
        history = trainer.history
        status_col, stop_col = st.columns([6, 1], vertical_alignment="center")
        with status_col:
            if trainer.running:
                st.progress(min(1.0, (history[-1].step if history else 0) / trainer.config.steps),
                            text=_status_line(trainer, history))
            else:  # no progress bar once it has ended (a page with one reads as "still working")
                st.markdown(_status_line(trainer, history))
        with stop_col:
            if st.button("Stop", icon=":material/stop:", key="train.stop", disabled=not trainer.running, width="stretch"):
                trainer.stop(wait=5)
                st.rerun()
        if trainer.status.startswith("failed"):
            st.error(f"Training {trainer.status}", icon=":material/error:")
        loss_col, noise_col = st.columns([1.15, 1], gap="large")
        with loss_col:
            st.markdown("##### Training loss")
            st.plotly_chart(loss_figure(history, trainer.config.steps), width="stretch", key="train.loss_plot",
                            config={"displayModeBar": False})
            st.caption("The loss of CrystalDiffusion.loss (the same objective as the full training): lattice noise "
                       "MSE plus normalized coordinate-score MSE, each step at random noise levels, so it is noisy; "
                       "the bold line is smoothed.")
        with noise_col:
            st.markdown("##### What the model predicts")
            _noise_panel(trainer)
        if was_running and not trainer.running:
            st.rerun()  # finished: redraw the whole page once (and stop refreshing)

    _live()


# ---------------------------------------------------------------- sampling the current weights

def _sample(trainer: LiveTrainer, target: int, sampler: str, steps: int, seed: int) -> None:
    model = trainer.snapshot()
    crystal = trainer.crystals[target]
    bar = st.progress(0.0, text="Sampling...")

    def progress(done: int, total: int) -> None:
        if done == total or done % max(1, total // 50) == 0:
            bar.progress(done / total, text=f"Sampling: step {done} of {total}")

    started = time.perf_counter()
    try:
        trajectory = generate(model, composition=composition_text(crystal), sampler=sampler, steps=steps, seed=seed,
                              progress=progress)
    except Exception as exc:
        ss["train.sample_error"] = f"Sampling failed: {exc}"
        return
    finally:
        bar.empty()
    ss.pop("train.sample_error", None)
    previous = ss.get("train.sample")
    settings = GenerateSettings(model=f"live model, step {trainer.step}", composition=composition_text(crystal),
                                sampler=sampler, steps=steps, seed=seed)
    result = result_of(model, (previous.id - 1) if previous is not None else -1, settings, trajectory,
                       time.perf_counter() - started)
    ss["train.sample"] = result
    ss["train.sample_target"] = int(target)
    ss["train.sample_step"] = trainer.step
    reset("train", result.id)


def sample_section() -> None:
    """Sample now: the current weights, one of the training compositions, shown with the Generate page's player."""
    trainer: LiveTrainer | None = ss.get("train.trainer")
    if trainer is None:
        return
    st.subheader("Sample now")
    st.markdown("Run the reverse process with the weights the model has **right now** (training goes on). Give it "
                "the composition of one of its training crystals and see whether it rebuilds that crystal.")
    labels = ss.get("train.labels", [])
    T = trainer.config.num_steps
    ss.setdefault("train.sample_steps", T)
    target_col, sampler_col, steps_col, seed_col, button_col = st.columns([1.6, 1.4, 1, 1, 1], vertical_alignment="bottom")
    target = target_col.selectbox("Composition of", list(range(len(trainer.crystals))), key="train.target",
                                  format_func=lambda i: f"{labels[i] if i < len(labels) else i}: "
                                                        f"{composition_text(trainer.crystals[i])}")
    sampler = sampler_col.selectbox("Sampler", list(SAMPLER_LABELS), key="train.sampler", format_func=SAMPLER_LABELS.get)
    steps = steps_col.number_input(f"Steps (1 to T = {T})", min_value=1, max_value=T, step=10,
                                   key="train.sample_steps")
    seed = seed_col.number_input("Seed", min_value=0, max_value=2**31 - 1, step=1, key="train.sample_seed")
    if button_col.button("Sample now", icon=":material/auto_awesome:", key="train.sample_go", width="stretch"):
        if trainer.step == 0:
            ss["train.sample_error"] = "The model has not taken a training step yet: wait a moment."
        else:
            _sample(trainer, int(target), sampler, int(steps), int(seed))
    if ss.get("train.sample_error"):
        st.error(ss["train.sample_error"], icon=":material/error:")
    result: Result | None = ss.get("train.sample")
    if result is None:
        return
    final = result.trajectory.structure(frame=result.trajectory.num_frames - 1)
    truth = trainer.crystals[ss.get("train.sample_target", 0)].to_structure()
    rms = match_rms(final, truth)
    verdict = (f"it **matches** the training crystal (normalized RMS displacement {rms:.3f})" if rms is not None else
               "it does **not** match the training crystal (StructureMatcher finds no fit)")
    st.markdown(f"**Sampled** {final.composition.reduced_formula} with the weights of step "
                f"{ss.get('train.sample_step', '?')}, {result.settings.sampler.upper()} with {result.settings.steps} "
                f"steps in {result.seconds:.1f} s: {verdict}.")
    trajectory_player("train", result)


def crystals_summary(picked: list[tuple[str, Crystal]]) -> None:
    if not picked:
        st.caption("No crystal picked yet.")
        return
    elements = sorted({int(z) for _, c in picked for z in c.atomic_numbers.tolist()})
    st.caption(f"{len(picked)} crystal{'s' if len(picked) != 1 else ''} (at most {MAX_LIVE_CRYSTALS}), "
               f"{len(elements)} elements, up to {max(c.num_atoms for _, c in picked)} atoms per cell "
               f"(at most {MAX_LIVE_ATOMS}).")
    with st.expander("The crystals", expanded=False):
        _crystal_table(picked)
