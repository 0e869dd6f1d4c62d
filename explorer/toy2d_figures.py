"""Plotly figures of the 2D page (no Streamlit here): points at step t, the histogram of one coordinate
against the prior, the learned drift as arrows, the loss, the mixture's density."""
from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .figures import MARKER_COLOR, PALETTE, style

DATA_COLOR = "#bbbbbb"
PATH_COLOR = "#ff7f0e"
# SVG, not WebGL: every WebGL chart holds up to three browser contexts and the page draws five charts, past
# Chrome's limit of 16 (the oldest chart then goes blank); the grey data are thinned to keep SVG fast
DATA_SHOWN = 700


def _thinned(data: np.ndarray) -> np.ndarray:
    """(n, 2) -> at most DATA_SHOWN rows, evenly strided (the backdrop only; metrics use all points)."""
    return data[:: max(1, -(-len(data) // DATA_SHOWN))]


def _axes(fig: go.Figure, periodic: bool, span: float, row: int | None = None, col: int | None = None) -> None:
    bounds = (0.0, 1.0) if periodic else (-span, span)
    where = dict(row=row, col=col) if row else {}
    fig.update_xaxes(range=bounds, zeroline=False, showgrid=not periodic, **where)
    fig.update_yaxes(range=bounds, zeroline=False, showgrid=not periodic, scaleanchor="x" if not row else None,
                     **where)


def points_figure(data: np.ndarray, points: np.ndarray, periodic: bool, title: str,
                  paths: np.ndarray | None = None, arrows: tuple[np.ndarray, np.ndarray] | None = None,
                  span: float = 3.2, height: int = 380) -> go.Figure:
    """data (n, 2) in grey, points (m, 2) in colour; paths (P, K', 2): a few particles' whole paths so far;
    arrows: (grid (G, 2), move (G, 2)) drawn as short segments (the learned drift at this step)."""
    fig = go.Figure()
    data = _thinned(data)
    fig.add_trace(go.Scatter(x=data[:, 0], y=data[:, 1], mode="markers", name="data",
                               marker=dict(color=DATA_COLOR, size=3), hoverinfo="skip"))
    if arrows is not None:
        grid, move = arrows
        length = np.linalg.norm(move, axis=1).max() or 1.0
        scale = 0.25 * (1.0 if periodic else span) / 6 / length   # longest arrow about a grid cell
        xs, ys = [], []
        for (x, y), (dx, dy) in zip(grid, move * scale):
            xs += [x, x + dx, None]
            ys += [y, y + dy, None]
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", name="learned drift", hoverinfo="skip",
                                 line=dict(color=PALETTE[2], width=1.2)))
    fig.add_trace(go.Scatter(x=points[:, 0], y=points[:, 1], mode="markers", name="x_t",
                               marker=dict(color=PALETTE[0], size=4, opacity=0.7),
                               hovertemplate="(%{x:.2f}, %{y:.2f})<extra></extra>"))
    if paths is not None:
        for i, path in enumerate(paths):
            fig.add_trace(go.Scatter(x=path[:, 0], y=path[:, 1], mode="lines", showlegend=i == 0,
                                     name="a few particles' paths", hoverinfo="skip",
                                     line=dict(color=PATH_COLOR, width=1.5)))
            fig.add_trace(go.Scatter(x=path[-1:, 0], y=path[-1:, 1], mode="markers", showlegend=False,
                                     hoverinfo="skip", marker=dict(color=MARKER_COLOR, size=8)))
    style(fig, height, title)
    _axes(fig, periodic, span)
    fig.update_layout(legend=dict(orientation="h", yanchor="top", y=-0.14, xanchor="left", x=0))
    return fig


def histogram_figure(points: np.ndarray, periodic: bool, t: int, height: int = 300) -> go.Figure:
    """The first coordinate of x_t against the prior it tends to: N(0, 1), or uniform on [0, 1) on the torus."""
    fig = go.Figure()
    fig.add_trace(go.Histogram(x=points[:, 0], histnorm="probability density", name="x_t, first coordinate",
                               marker=dict(color=PALETTE[0]), opacity=0.75, nbinsx=60))
    if periodic:
        fig.add_trace(go.Scatter(x=[0, 1], y=[1, 1], mode="lines", name="uniform on [0, 1)",
                                 line=dict(color=MARKER_COLOR, dash="dash")))
    else:
        grid = np.linspace(-4, 4, 200)
        fig.add_trace(go.Scatter(x=grid, y=np.exp(-grid ** 2 / 2) / math.sqrt(2 * math.pi), mode="lines",
                                 name="N(0, 1)", line=dict(color=MARKER_COLOR, dash="dash")))
    style(fig, height, f"One coordinate at t = {t} against the prior", legend_below=True)
    fig.update_xaxes(range=(0, 1) if periodic else (-4, 4))
    return fig


def loss_figure(losses: list[float], height: int = 260, every: int = 1) -> go.Figure:
    """The training loss (one value per ``every`` optimizer steps), with a running mean (the raw loss jumps with t)."""
    y = np.asarray(losses, float)
    fig = go.Figure()
    if len(y):
        window = max(1, len(y) // 30)
        smooth = np.convolve(y, np.ones(window) / window, mode="valid")
        steps = every * np.arange(1, len(y) + 1)
        fig.add_trace(go.Scatter(x=steps, y=y, mode="lines", name="loss", line=dict(color=DATA_COLOR, width=1)))
        fig.add_trace(go.Scatter(x=steps[window - 1:], y=smooth, mode="lines", name="running mean",
                                 line=dict(color=PALETTE[0], width=2)))
    style(fig, height, "Training loss: |ε − ε̂(x_t, t)|²")
    fig.update_xaxes(title_text="optimizer step")
    positive = y[y > 0]
    if len(positive) and positive.max() > 10 * positive.min():   # within one decade a log axis crowds its labels
        fig.update_yaxes(type="log")
    return fig


def mixture_figure(data: np.ndarray, grid_axis: np.ndarray, density: np.ndarray, mixture_samples: np.ndarray,
                   diffusion_samples: np.ndarray, periodic: bool, span: float = 3.2, height: int = 400) -> go.Figure:
    """Explicit vs implicit: the mixture's density contours with its samples, beside the diffusion samples."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=("Gaussian mixture: density and samples",
                                                        "Diffusion model: samples"), horizontal_spacing=0.08)
    fig.add_trace(go.Contour(x=grid_axis, y=grid_axis, z=density, showscale=False, ncontours=14,
                             colorscale="Blues", contours=dict(coloring="lines"), hoverinfo="skip"), row=1, col=1)
    backdrop = _thinned(data)
    for col, samples, color in ((1, mixture_samples, PALETTE[3]), (2, diffusion_samples, PALETTE[0])):
        fig.add_trace(go.Scatter(x=backdrop[:, 0], y=backdrop[:, 1], mode="markers", showlegend=False, hoverinfo="skip",
                                 marker=dict(color=DATA_COLOR, size=3)), row=1, col=col)
        fig.add_trace(go.Scatter(x=samples[:, 0], y=samples[:, 1], mode="markers", showlegend=False,
                                   marker=dict(color=color, size=4, opacity=0.7), hoverinfo="skip"), row=1, col=col)
        _axes(fig, periodic, span, 1, col)
    style(fig, height)
    fig.update_layout(margin=dict(t=40))   # room for the two subplot titles above the plots
    return fig
