"""Plotly figures of the Train page: the live loss curve and true-vs-predicted noise (no Streamlit here)."""
from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go

from .figures import PALETTE

LOSS_SMOOTHING = 0.9   # exponential moving average of the noisy per-step loss
LOSS_TICKS = [0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50]


def smoothed(values: np.ndarray, weight: float = LOSS_SMOOTHING) -> np.ndarray:
    """Bias-corrected exponential moving average (as TensorBoard draws it): (n,) -> (n,)."""
    out, average = np.empty(len(values)), 0.0
    for i, value in enumerate(np.asarray(values, float)):
        average = weight * average + (1 - weight) * value
        out[i] = average / (1 - weight ** (i + 1))
    return out


def loss_figure(history: list, max_steps: int) -> go.Figure:
    """Training loss per optimizer step (raw and smoothed) with its lattice and coordinate terms.

    ``history``: ``diffusion.live.LossPoint`` objects; the x axis spans the whole run, so the
    curve grows from the left while training.
    """
    fig = go.Figure()
    steps = np.array([p.step for p in history], int)
    if len(steps):
        total = np.array([p.total for p in history])
        fig.add_trace(go.Scatter(x=steps, y=total, mode="lines", name="loss (each step)",
                                 line=dict(color=PALETTE[0], width=1), opacity=0.35))
        fig.add_trace(go.Scatter(x=steps, y=smoothed(total), mode="lines", name="loss (smoothed)",
                                 line=dict(color=PALETTE[0], width=3)))
        fig.add_trace(go.Scatter(x=steps, y=smoothed([p.lattice for p in history]), mode="lines",
                                 name="lattice ε term", line=dict(color=PALETTE[2], width=2, dash="dash")))
        fig.add_trace(go.Scatter(x=steps, y=smoothed([p.coords for p in history]), mode="lines",
                                 name="coordinate score term", line=dict(color=PALETTE[4], width=2, dash="dot")))
    fig.update_xaxes(title_text="optimizer step", range=[0, max(int(max_steps), 1)])
    # plotly's default log ticks label every minor tick ("2 1 9 8 7 ..."): 1-2-5 over up to two decades,
    # decades only over more (a projector's larger type would lay the labels on each other)
    values = [v for p in history for v in (p.total, p.lattice, p.coords) if v > 0]
    wide = bool(values) and max(values) > 100 * min(values)
    ticks = [v for v in LOSS_TICKS if not wide or math.log10(v).is_integer()]
    fig.update_yaxes(title_text="loss (log scale)", type="log", tickvals=ticks, ticktext=[f"{v:g}" for v in ticks])
    fig.update_layout(height=380, margin=dict(l=10, r=10, t=10, b=10), template="plotly_white", font=dict(size=14),
                      hovermode="x unified",
                      legend=dict(orientation="h", yanchor="bottom", y=1.0, xanchor="right", x=1))
    return fig


def noise_figure(prediction) -> go.Figure:
    """Predicted against true noise of one noised crystal (``diffusion.live.NoisePrediction``), with y = x."""
    lattice_true, lattice_pred = prediction.lattice_true.numpy(), prediction.lattice_pred.numpy()
    coords_true, coords_pred = prediction.coords_true.numpy().ravel(), prediction.coords_pred.numpy().ravel()
    values = np.concatenate([lattice_true, lattice_pred, coords_true, coords_pred])
    values = values[np.isfinite(values)]
    bound = float(np.abs(values).max()) * 1.1 if len(values) else 1.0
    bound = max(bound, 0.5)
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=[-bound, bound], y=[-bound, bound], mode="lines", name="perfect (y = x)",
                             line=dict(color="#888888", dash="dash", width=1.5), hoverinfo="skip"))
    fig.add_trace(go.Scatter(x=coords_true, y=coords_pred, mode="markers", name="coordinate score (3 per atom)",
                             marker=dict(color=PALETTE[4], size=8, opacity=0.8),
                             hovertemplate="true %{x:.2f}<br>predicted %{y:.2f}<extra>coordinates</extra>"))
    fig.add_trace(go.Scatter(x=lattice_true, y=lattice_pred, mode="markers", name="lattice ε (6 numbers)",
                             marker=dict(color=PALETTE[2], size=12, symbol="diamond", line=dict(color="white", width=1)),
                             hovertemplate="true %{x:.2f}<br>predicted %{y:.2f}<extra>lattice</extra>"))
    fig.update_xaxes(title_text="true noise", range=[-bound, bound], zeroline=False)
    fig.update_yaxes(title_text="model's prediction", range=[-bound, bound], zeroline=False, scaleanchor="x",
                     scaleratio=1)
    fig.update_layout(height=380, margin=dict(l=10, r=10, t=10, b=10), template="plotly_white", font=dict(size=14),
                      hovermode="closest",
                      legend=dict(orientation="h", yanchor="bottom", y=1.0, xanchor="left", x=0))
    return fig
