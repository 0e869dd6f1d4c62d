"""The Diffusion in 2D page: points in a plane (or on a torus) noised step by step, a tiny denoiser trained in
seconds, the reverse samplers from one start, and a Gaussian mixture beside them (the core is
``diffusion.toy2d``).

Session state (keys start with ``toy.``):
    widget values   toy.dataset, toy.schedule, toy.seed, toy.t (forward slider), toy.rt (reverse slider),
                    toy.arrows, toy.steps (training steps)
    toy.trained     {(dataset, schedule, seed, steps): ToyTrainResult}, this session's trained models
    toy.error       why the last training did not finish
"""
from __future__ import annotations

import numpy as np
import streamlit as st

from diffusion.api import SCHEDULE_NAMES, toy2d

from .toy2d_figures import histogram_figure, loss_figure, mixture_figure, points_figure
from .widgets import chart

DATASET_LABELS = {"swiss_roll": "Swiss roll", "two_moons": "Two moons", "gaussian_mixture": "Gaussian mixture",
                  "periodic_box": "Atoms in a periodic box (torus)"}
N_POINTS = 1500
NUM_STEPS = toy2d.ToyTrainConfig().num_steps
PATHS = 6                  # particles whose whole path is drawn
DDIM_STEPS = 50
LIVE_CHART_EVERY = 6       # progress reports (of 50 steps each) between redraws of the live loss curve
URL_KEYS = {"toy.dataset": "data", "toy.schedule": "schedule", "toy.seed": "seed", "toy.t": "t"}
ss = st.session_state


def init_state() -> None:
    """Defaults (the schedule chosen on the Noise schedules page, if any), then whatever the URL says."""
    params = st.query_params
    if "toy.dataset" not in ss:
        ss["toy.dataset"] = params.get("data") if params.get("data") in DATASET_LABELS else "swiss_roll"
        chosen = (ss.get("sched.names") or ["linear"])[0]
        ss["toy.schedule"] = params.get("schedule") if params.get("schedule") in SCHEDULE_NAMES else chosen
        seed = params.get("seed", "0")
        ss["toy.seed"] = int(seed) if seed.isdigit() and int(seed) < 10_000 else 0
        t = params.get("t", "0")
        ss["toy.t"] = int(t) if t.isdigit() and int(t) <= NUM_STEPS else 0
    ss.setdefault("toy.trained", {})


def controls() -> None:
    left, middle, right = st.columns([1.4, 1, 0.8])
    left.selectbox("Data", list(DATASET_LABELS), key="toy.dataset", format_func=DATASET_LABELS.get,
                   help="The torus case is the bridge to crystals: fractional coordinates live on [0, 1)², are "
                        "noised with the wrapped normal and end uniform, as the atoms of a crystal do.")
    middle.selectbox("Noise schedule", list(SCHEDULE_NAMES), key="toy.schedule",
                     help="The crystal models' schedules (compare them on *Noise schedules*). The torus uses the "
                          "geometric σ_t of the crystal coordinates whatever the schedule.")
    right.number_input("Seed", min_value=0, max_value=9_999, step=1, key="toy.seed")
    for key, name in URL_KEYS.items():
        st.query_params[name] = str(ss[key])


@st.cache_data(max_entries=16, show_spinner=False)
def dataset(name: str, seed: int):
    return toy2d.make_dataset(name, N_POINTS, seed)


@st.cache_data(max_entries=8, show_spinner="Noising every step...")
def forward_frames(name: str, schedule: str, seed: int) -> np.ndarray:
    """(T+1, n, 2) every particle under the step-by-step forward process."""
    data = dataset(name, seed)
    process = toy2d.make_process(schedule, NUM_STEPS, data.periodic)
    return toy2d.forward_path(process, data.points, seed).numpy()


def forward_section() -> None:
    data = dataset(ss["toy.dataset"], int(ss["toy.seed"]))
    frames = forward_frames(ss["toy.dataset"], ss["toy.schedule"], int(ss["toy.seed"]))
    st.subheader("Forward: noise the points step by step")
    t = st.slider("Step t of the forward process", 0, NUM_STEPS, key="toy.t")
    left, right = st.columns([1.2, 1])
    chart(points_figure(data.points.numpy(), frames[t], data.periodic, f"x_t at t = {t}",
                        paths=frames[: t + 1, :PATHS].transpose(1, 0, 2)), key="toy.forward_plot", container=left)
    chart(histogram_figure(frames[t], data.periodic, t), key="toy.histogram", container=right)
    process = toy2d.make_process(ss["toy.schedule"], NUM_STEPS, data.periodic)
    numbers = toy2d.forward_numbers(process)
    if data.periodic:
        right.latex(rf"x_t = \left(x_0 + \sigma_t\,\varepsilon\right) \bmod 1,\quad \sigma_{{{t}}} = "
                    rf"{float(numbers.sigma[t]):.3f}")
        right.caption("On the torus the points never shrink toward a centre: the wrapped noise grows until they "
                      "are uniform, as a crystal's fractional coordinates are at t = T.")
    else:
        right.latex(rf"x_{{{t}}} = \underbrace{{{float(numbers.sqrt_abar[t]):.3f}}}_{{\sqrt{{\bar\alpha_t}}}}\,x_0"
                    rf" + \underbrace{{{float(numbers.sqrt_one_minus_abar[t]):.3f}}}_{{\sqrt{{1-\bar\alpha_t}}}}"
                    r"\,\varepsilon,\quad \varepsilon \sim \mathcal N(0, I)")
        right.caption("The data's signal shrinks by √ᾱ_t while Gaussian noise of variance 1 − ᾱ_t fills in: at "
                      "t = T the points are N(0, I), whatever shape they had.")


def _key() -> tuple:
    return ss["toy.dataset"], ss["toy.schedule"], int(ss["toy.seed"]), int(ss.get("toy.steps", 3000))


def train_section() -> None:
    st.subheader("Train a tiny denoiser")
    st.markdown("An MLP with a time embedding (about 40k parameters) learns to predict the noise ε from x_t and t, "
                "with the loss the crystal models use. It trains here, on the CPU, in seconds.")
    left, right = st.columns([1, 3], vertical_alignment="bottom")
    left.number_input("Optimizer steps", min_value=100, max_value=6000, value=3000, step=500, key="toy.steps")
    if right.button("Train", type="primary", key="toy.train", icon=":material/model_training:"):
        _train()
    if ss.get("toy.error"):
        st.error(ss["toy.error"], icon=":material/error:")
    result = ss["toy.trained"].get(_key())
    if result is not None:
        st.caption(f"Trained {result.steps} steps in {result.seconds:.1f} s; final loss (running mean) "
                   f"{np.mean(result.losses[-100:]):.3f}.")
        chart(loss_figure(result.losses), key="toy.loss")


def _train() -> None:
    data = dataset(ss["toy.dataset"], int(ss["toy.seed"]))
    config = toy2d.ToyTrainConfig(schedule=ss["toy.schedule"], seed=int(ss["toy.seed"]), max_steps=int(ss["toy.steps"]))
    bar = st.progress(0.0, text="Training...")
    live_chart = st.empty()
    live: list[float] = []

    def progress(done: int, loss: float) -> None:
        live.append(loss)
        bar.progress(done / config.max_steps, text=f"Training: step {done} of {config.max_steps}, loss {loss:.3f}")
        if len(live) % LIVE_CHART_EVERY == 0:   # the curve grows while it trains (redrawing costs ~20 ms)
            chart(loss_figure(live, every=config.progress_every), container=live_chart.container())

    try:
        result = toy2d.train_toy(config, data, progress)
    except Exception as exc:   # a failed run keeps the earlier models
        ss["toy.error"] = f"Training failed: {exc}"
        return
    finally:
        bar.empty()
        live_chart.empty()
    ss["toy.trained"][_key()] = result
    ss.pop("toy.error", None)


@st.cache_data(max_entries=16, show_spinner="Sampling with DDPM, DDIM and predictor-corrector...")
def reverse_paths(_result, key: tuple) -> dict[str, tuple[list[int], np.ndarray]]:
    """The three samplers from one start x_T (``key`` names the model for the cache)."""
    model = _result.model
    start = toy2d.start_noise(model.process, N_POINTS, seed=key[2])
    paths = {name: toy2d.sample_path(model, name, start, seed=key[2], steps=DDIM_STEPS if name == "ddim" else None)
             for name in toy2d.SAMPLERS}
    return {name: (list(path.steps), path.points.numpy()) for name, path in paths.items()}


def _nearest(steps: list[int], t: int) -> int:
    return min(range(len(steps)), key=lambda k: (abs(steps[k] - t), k))


def reverse_section() -> None:
    st.subheader("Reverse: from noise back to the data")
    result = ss["toy.trained"].get(_key())
    if result is None:
        st.info("Train the denoiser above; then the three samplers run from the same x_T and you scrub them here.",
                icon=":material/info:")
        return
    data = dataset(ss["toy.dataset"], int(ss["toy.seed"]))
    paths = reverse_paths(result, _key())
    t = st.slider("Step t of the reverse process (T = noise → 0 = samples)", 0, NUM_STEPS, value=0,
                  key="toy.rt")
    arrows = st.toggle("Show the learned drift (arrows) at step t", value=True, key="toy.arrows",
                       help="Where one DDPM step moves a point from each grid position: the score the network "
                            "learned, the bottom row of the course's figure.")
    columns = st.columns(3)
    bandwidth = toy2d.median_bandwidth(data.points, data.periodic)
    titles = {"ddpm": "DDPM (all T steps)", "ddim": f"DDIM ({DDIM_STEPS} steps, no noise)",
              "pc": "Predictor-corrector (T steps)"}
    for column, name in zip(columns, toy2d.SAMPLERS):
        steps, points = paths[name]
        k = _nearest(steps, t)
        field = None
        if arrows and name == "ddpm" and steps[k] >= 1:
            grid = toy2d.grid_points(0.03, 0.97, 18) if data.periodic else toy2d.grid_points(-3, 3, 18)
            drift = toy2d.drift_field(result.model, steps[k], grid)
            field = (drift.points.numpy(), drift.drift.numpy())
        chart(points_figure(data.points.numpy(), points[k], data.periodic, f"{titles[name]} at t = {steps[k]}",
                            paths=points[: k + 1, :PATHS].transpose(1, 0, 2), arrows=field, height=360),
              key=f"toy.reverse.{name}", container=column)
        distance = toy2d.mmd(data.points, torch_points(points[-1]), bandwidth, data.periodic)
        column.caption(f"MMD of the final samples to the data: {distance:.3f} (0 = indistinguishable).")


def torch_points(array: np.ndarray):
    import torch

    return torch.from_numpy(np.ascontiguousarray(array)).float()


def mixture_section() -> None:
    st.subheader("Explicit vs implicit")
    result = ss["toy.trained"].get(_key())
    data = dataset(ss["toy.dataset"], int(ss["toy.seed"]))
    fit = toy2d.fit_gmm(data.points, components=8, seed=int(ss["toy.seed"]))
    st.markdown("A **Gaussian mixture** is an explicit model: it writes down the density p(x) (8 Gaussians here), so "
                "it can say how likely each point is, but its shapes are ellipses. The diffusion model is implicit: "
                "it never writes p(x) down, it learns how to move noise toward the data.")
    axis = np.linspace(0.0, 1.0, 80) if data.periodic else np.linspace(-3.2, 3.2, 80)
    grid = toy2d.grid_points(float(axis[0]), float(axis[-1]), len(axis))
    density = toy2d.gmm_density(fit, grid).numpy().reshape(len(axis), len(axis))
    mixture_samples = toy2d.gmm_sample(fit, N_POINTS, seed=int(ss["toy.seed"]))
    diffusion_samples = reverse_paths(result, _key())["ddpm"][1][-1] if result is not None else np.zeros((0, 2))
    st.plotly_chart(mixture_figure(data.points.numpy(), axis, density, mixture_samples.numpy(), diffusion_samples,
                                   data.periodic), width="stretch", key="toy.mixture", config={"displayModeBar": False})
    bandwidth = toy2d.median_bandwidth(data.points, data.periodic)
    rows = [("Gaussian mixture", f"{fit.avg_log_likelihood:.3f}",
             f"{toy2d.mmd(data.points, mixture_samples.float(), bandwidth, data.periodic):.3f}")]
    if result is not None:
        rows.append(("Diffusion (DDPM)", "not available (implicit)",
                     f"{toy2d.mmd(data.points, torch_points(diffusion_samples), bandwidth, data.periodic):.3f}"))
    st.table({"model": [r[0] for r in rows], "average log-likelihood of the data (nats)": [r[1] for r in rows],
              "MMD of samples to the data": [r[2] for r in rows]})


def exports() -> None:
    """GIFs of the forward run and of the DDPM reverse run, for slides."""
    data = dataset(ss["toy.dataset"], int(ss["toy.seed"]))
    frames = forward_frames(ss["toy.dataset"], ss["toy.schedule"], int(ss["toy.seed"]))
    left, right = st.columns(2)
    name = ss["toy.dataset"]
    left.download_button("Forward run (GIF)", lambda: toy2d.points_gif(frames, list(range(len(frames))),
                                                                        data.points.numpy(), data.periodic, "forward"),
                         file_name=f"{name}_forward.gif", mime="image/gif", key="toy.gif_forward",
                         icon=":material/animated_images:")
    result = ss["toy.trained"].get(_key())
    if result is not None:
        steps, points = reverse_paths(result, _key())["ddpm"]
        right.download_button("Reverse run, DDPM (GIF)", lambda: toy2d.points_gif(points, steps, data.points.numpy(),
                                                                                   data.periodic, "reverse"),
                              file_name=f"{name}_reverse.gif", mime="image/gif", key="toy.gif_reverse",
                              icon=":material/animated_images:")
