"""Plotly figures for the pages (no Streamlit here).

Conventions: step t on the x axis runs from T on the left to 0 on the right wherever a
figure follows the reverse process, so it moves the same way as the Generate slider.
"""
from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b")
MARKER_COLOR = "#ff4b4b"
FONT = dict(size=14)


def marker_value(y: np.ndarray, k: int) -> float | None:
    """The value to mark at frame k: the final frame has no prediction, so the last finite one before it."""
    if math.isfinite(y[k]):
        return float(y[k])
    finite = np.flatnonzero(np.isfinite(y[: k + 1]))
    return float(y[finite[-1]]) if len(finite) else None


def style(fig: go.Figure, height: int = 320, title: str | None = None, legend_below: bool = False) -> go.Figure:
    """The app's look; a legend below the plot clears the x-axis title. Pages draw a figure with
    ``widgets.chart``, which writes the title above it as wrapping text."""
    legend = (dict(orientation="h", yanchor="top", y=-0.32, xanchor="left", x=0) if legend_below else
              dict(orientation="h", yanchor="bottom", y=1.0, xanchor="right", x=1))
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=40 if title else 10, b=10), font=FONT,
                      title=dict(text=title, x=0.01, font=dict(size=16)) if title else None,
                      legend=legend, template="plotly_white", hovermode="x unified")
    return fig


LOG_TICKS = [1e-4, 1e-3, 1e-2, 0.1, 1.0]
SIGMA_TICKS = [0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5]


# ---------------------------------------------------------------- noise schedules

SCHEDULE_PLOTS = ("beta", "abar", "coefficients", "log_snr", "sigma")
SCHEDULE_CAPTIONS = {
    "beta": "β_t is the variance of the noise added at step t. Linear and quadratic schedules add very "
            "little early and a lot late; cosine spreads it more evenly and ends close to 1 (the last steps "
            "wipe out what is left).",
    "abar": "ᾱ_t = ∏ α_s is the fraction of the clean lattice's signal variance still present at step t. "
            "Notice how quickly the linear schedule destroys the signal compared with cosine: most of its "
            "late steps are spent on almost pure noise.",
    "coefficients": "x_t = √ᾱ_t · x_0 + √(1 − ᾱ_t) · ε. Where the solid (signal) and dashed (noise) "
                    "curves cross, x_t is half data and half noise; a good schedule spends many steps around "
                    "that crossing, where the structure is decided.",
    "log_snr": "log SNR = log(ᾱ_t / (1 − ᾱ_t)) falls from large positive (clean) to large negative (noise). "
               "The cosine schedule makes it fall almost linearly in t, so every step removes a similar "
               "amount of information.",
    "sigma": "Fractional coordinates live on a torus and are not scaled toward zero: they get wrapped "
             "Gaussian noise of width σ_t, growing geometrically from 0.005 to 0.5. At σ ≈ 0.5 the wrapped "
             "distribution is practically uniform on [0, 1): the coordinates' pure noise. This schedule is "
             "the same whichever β schedule is chosen.",
}


def schedule_figure(kind: str, schedules: list, marker_t: int | None = None) -> go.Figure:
    """One plot of ``kind`` (see ``SCHEDULE_PLOTS``) overlaying several ``NoiseSchedule`` objects."""
    fig = go.Figure()
    titles = {"beta": "β_t: noise variance added at step t", "abar": "ᾱ_t: signal variance kept",
              "coefficients": "√ᾱ_t (signal, solid) and √(1\u00a0−\u00a0ᾱ_t) (noise, dashed)",   # one word when wrapped
              "log_snr": "log SNR_t", "sigma": "σ_t of the fractional coordinates (wrapped normal)"}
    for i, schedule in enumerate(schedules):
        color = PALETTE[i % len(PALETTE)]
        t = np.arange(schedule.num_steps + 1)
        name = schedule.name
        if kind == "beta":
            fig.add_trace(go.Scatter(x=t[1:], y=schedule.beta[1:].numpy(), name=name, line=dict(color=color)))
        elif kind == "abar":
            fig.add_trace(go.Scatter(x=t, y=schedule.abar.numpy(), name=name, line=dict(color=color)))
        elif kind == "coefficients":
            fig.add_trace(go.Scatter(x=t, y=np.sqrt(schedule.abar.numpy()), name=f"{name}: √ᾱ",
                                     line=dict(color=color)))
            fig.add_trace(go.Scatter(x=t, y=np.sqrt(1 - schedule.abar.numpy()), name=f"{name}: √(1−ᾱ)",
                                     line=dict(color=color, dash="dash")))
        elif kind == "log_snr":
            fig.add_trace(go.Scatter(x=t[1:], y=schedule.log_snr[1:].numpy(), name=name, line=dict(color=color)))
        elif kind == "sigma":
            fig.add_trace(go.Scatter(x=t, y=schedule.sigma.numpy(), name="σ_t (all schedules)",
                                     line=dict(color="#444444")))
            break
        else:
            raise ValueError(f"unknown schedule plot '{kind}'")
    if marker_t is not None:
        fig.add_vline(x=marker_t, line=dict(color=MARKER_COLOR, width=2, dash="dot"))
    fig.update_xaxes(title_text="step t")
    if kind == "beta" and schedules:
        fig.update_yaxes(type="log", title_text="β_t (log scale)", tickvals=LOG_TICKS, ticktext=[f"{v:g}" for v in LOG_TICKS])
    if kind == "sigma":
        fig.update_yaxes(type="log", title_text="σ_t (log scale)", tickvals=SIGMA_TICKS,
                         ticktext=[f"{v:g}" for v in SIGMA_TICKS])
    return style(fig, 360, titles[kind], legend_below=True)


# ---------------------------------------------------------------- forward process

def coordinate_histogram(values: np.ndarray, sigma: float, bins: int = 40) -> go.Figure:
    """Histogram of fractional coordinates of x_t over many noise draws, with the uniform level marked."""
    values = np.asarray(values, float).ravel()
    fig = go.Figure(go.Histogram(x=values, xbins=dict(start=0, end=1, size=1 / bins), histnorm="probability density",
                                 marker_color=PALETTE[0], name="F_t"))
    fig.add_hline(y=1.0, line=dict(color=MARKER_COLOR, dash="dash"), annotation_text="uniform (pure noise)",
                  annotation_position="top right")
    fig.update_xaxes(title_text="fractional coordinate", range=[0, 1])
    fig.update_yaxes(title_text="density")
    fig.update_layout(showlegend=False, bargap=0.02)
    return style(fig, 300, f"Fractional coordinates of x_t (σ_t = {sigma:.3f})")


# ---------------------------------------------------------------- reverse process diagnostics

DIAGNOSTICS = (
    ("lattice_noise_norm", "|ε̂| lattice noise predicted"),
    ("coord_score_norm", "coordinate score (RMS, normalized)"),
    ("min_distance", "shortest distance (Å)"),
    ("volume", "cell volume (Å³)"),
)


def diagnostics_figure(trajectory, crystal: int, t: int) -> go.Figure:
    """The trajectory's diagnostics against t (T on the left), with a marker at step t."""
    fig = make_subplots(rows=2, cols=2, subplot_titles=[title for _, title in DIAGNOSTICS],
                        horizontal_spacing=0.09, vertical_spacing=0.22)
    steps = trajectory.timesteps.numpy()
    k = trajectory.frame_of_step(t)
    for i, (name, title) in enumerate(DIAGNOSTICS):
        row, col = divmod(i, 2)
        y = getattr(trajectory, name)[:, crystal].double().numpy()
        fig.add_trace(go.Scatter(x=steps, y=y, mode="lines", line=dict(color=PALETTE[0], width=2), name=title,
                                 showlegend=False, hovertemplate="t=%{x}<br>%{y:.3g}<extra></extra>"),
                      row=row + 1, col=col + 1)
        value = marker_value(y, k)
        if value is not None:
            fig.add_trace(go.Scatter(x=[steps[k]], y=[value], mode="markers", showlegend=False,
                                     marker=dict(color=MARKER_COLOR, size=11, line=dict(color="white", width=1.5)),
                                     hovertemplate=f"t={int(steps[k])}<br>%{{y:.3g}}<extra>now</extra>"),
                          row=row + 1, col=col + 1)
        fig.add_vline(x=int(steps[k]), line=dict(color=MARKER_COLOR, width=1.5, dash="dot"), row=row + 1, col=col + 1)
        if name == "min_distance":
            fig.add_hline(y=0.5, line=dict(color="#888888", dash="dash", width=1), row=row + 1, col=col + 1)
    T = int(steps.max()) if len(steps) else 1
    fig.update_xaxes(range=[T * 1.02, -T * 0.02])
    fig.update_xaxes(title_text="step t", row=2)   # on the top row it would sit on the titles below
    fig = style(fig, 480)
    fig.update_layout(hovermode="closest", margin=dict(l=10, r=10, t=30, b=10))
    fig.update_annotations(font=dict(size=14))
    return fig


# ---------------------------------------------------------------- batch distributions

def distribution_figure(generated: np.ndarray, reference: np.ndarray | None, title: str, x_title: str,
                        discrete: bool = False) -> go.Figure:
    """Overlaid normalized histograms of a quantity: generated samples vs the training data."""
    fig = go.Figure()
    generated = np.asarray(generated, float)
    generated = generated[np.isfinite(generated)]
    if reference is not None and len(reference):
        reference = np.asarray(reference, float)
        reference = reference[np.isfinite(reference)]
    both = np.concatenate([generated, reference]) if reference is not None and len(reference) else generated
    if len(both) == 0:
        return style(fig, 300, title)
    if discrete:
        xbins = dict(start=float(both.min()) - 0.5, end=float(both.max()) + 0.5, size=1)
    else:
        low, high = np.percentile(both, [0.5, 99.5]) if len(both) > 10 else (both.min(), both.max())
        width = max((high - low) / 30, 1e-3)
        xbins = dict(start=float(low) - width, end=float(high) + width, size=float(width))
    if reference is not None and len(reference):
        fig.add_trace(go.Histogram(x=reference, xbins=xbins, histnorm="probability", name="training data",
                                   marker_color="#b0b0b0", opacity=0.75))
    fig.add_trace(go.Histogram(x=generated, xbins=xbins, histnorm="probability", name="generated",
                               marker_color=PALETTE[0], opacity=0.75))
    fig.update_layout(barmode="overlay", hovermode="closest")
    fig.update_xaxes(title_text=x_title)
    fig.update_yaxes(title_text="fraction")
    return style(fig, 320, title)
