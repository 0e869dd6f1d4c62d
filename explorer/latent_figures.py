"""Plotly figures of the Latent space page (no Streamlit here): the 2D map of the latents with the walk
and the property path drawn on it, and the predicted property along the gradient steps."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go

from .figures import MARKER_COLOR, PALETTE, style

MAP_HEIGHT = 520
OTHER_COLOR = "#b8bcc6"
WALK_COLOR = "#111111"
PATH_COLOR = PALETTE[4]


@dataclass(frozen=True)
class Colouring:
    """How the map's points are coloured: by a number (``values``, its ``name``) or by whether a crystal holds an
    element (``mask``, the element's symbol as ``name``)."""

    name: str
    values: np.ndarray | None = None
    mask: np.ndarray | None = None


def axis_title(axis: int, share: float) -> str:
    return f"PC{axis} ({100 * share:.0f}\u00a0% of the variance)"


def _hover(formulas: list[str], ids: list[str], values: np.ndarray | None, name: str | None) -> list[str]:
    out = []
    for k, (formula, material) in enumerate(zip(formulas, ids)):
        text = f"<b>{formula}</b><br>id {material or '?'}"
        if values is not None and np.isfinite(values[k]):
            text += f"<br>{name} = {values[k]:.3g}"
        out.append(text)
    return out


def map_figure(points: np.ndarray, formulas: list[str], ids: list[str], explained: tuple[float, float],
               colouring: Colouring, prop: tuple[str, np.ndarray] | None = None,
               walk: np.ndarray | None = None, current: int | None = None,
               path: np.ndarray | None = None, picks: list[int] | None = None) -> go.Figure:
    """The validation crystals at their latents' 2D coordinates (M, 2); ``walk`` (n, 2) the interpolation from
    A to B with ``current`` highlighted; ``path`` (S+1, 2) the property optimisation with its decoded ``picks``.
    ``prop`` (name, values (M,)) goes into the hover text whatever the colouring."""
    fig = go.Figure()
    hover = _hover(formulas, ids, None if prop is None else prop[1], None if prop is None else prop[0])
    if colouring.mask is None:
        values = np.asarray(colouring.values, float)
        fig.add_trace(go.Scatter(
            x=points[:, 0], y=points[:, 1], mode="markers", name="validation crystals", showlegend=False,
            text=hover, hovertemplate="%{text}<extra></extra>",
            marker=dict(size=8, color=values, colorscale="Viridis", opacity=0.85, line=dict(width=0.5, color="white"),
                        colorbar=dict(title=dict(text=colouring.name, side="right"), thickness=14))))
    else:
        mask = np.asarray(colouring.mask, bool)
        for inside, label, color in ((False, f"no {colouring.name}", OTHER_COLOR),
                                     (True, f"contains {colouring.name}", PALETTE[0])):
            chosen = np.flatnonzero(mask == inside)
            fig.add_trace(go.Scatter(
                x=points[chosen, 0], y=points[chosen, 1], mode="markers", name=f"{label} ({len(chosen)})",
                text=[hover[k] for k in chosen], hovertemplate="%{text}<extra></extra>",
                marker=dict(size=8, color=color, opacity=0.85, line=dict(width=0.5, color="white"))))
    if walk is not None:
        fig.add_trace(go.Scatter(
            x=walk[:, 0], y=walk[:, 1], mode="lines+markers", name="walk from A to B",
            customdata=np.arange(len(walk)), hovertemplate="walk, point %{customdata}<extra></extra>",
            line=dict(color=WALK_COLOR, width=2, dash="dot"), marker=dict(size=9, color=WALK_COLOR, symbol="diamond")))
        # A and B written above their ends, clear of the star (the text sits above an invisible large marker)
        fig.add_trace(go.Scatter(
            x=walk[[0, -1], 0], y=walk[[0, -1], 1], mode="markers+text", text=["A", "B"], textposition="top center",
            textfont=dict(size=17, color=WALK_COLOR), marker=dict(size=26, opacity=0), name="A and B", showlegend=False,
            hoverinfo="skip"))
        if current is not None and 0 <= current < len(walk):
            fig.add_trace(go.Scatter(
                x=[walk[current, 0]], y=[walk[current, 1]], mode="markers", name=f"point {current} (shown in 3D)",
                hovertemplate=f"point {current}<extra></extra>",
                marker=dict(size=20, color=MARKER_COLOR, symbol="star", line=dict(color="white", width=1.5))))
    if path is not None:
        fig.add_trace(go.Scatter(
            x=path[:, 0], y=path[:, 1], mode="lines", name="property optimisation", hoverinfo="skip",
            line=dict(color=PATH_COLOR, width=3)))
        chosen = list(picks or [])
        fig.add_trace(go.Scatter(
            x=path[chosen, 0], y=path[chosen, 1], mode="markers", name="decoded along it", customdata=chosen,
            hovertemplate="optimisation, step %{customdata}<extra></extra>",
            marker=dict(size=12, color=PATH_COLOR, symbol="circle", line=dict(color="white", width=1.5))))
    fig.update_xaxes(title_text=axis_title(1, explained[0]), zeroline=False)
    fig.update_yaxes(title_text=axis_title(2, explained[1]), zeroline=False)
    style(fig, MAP_HEIGHT, legend_below=True)
    fig.update_layout(hovermode="closest", margin=dict(l=10, r=10, t=10, b=10))
    return fig


def property_figure(predicted: np.ndarray, picks: list[int], name: str) -> go.Figure:
    """The property head's prediction at every gradient step (S+1,), the decoded steps marked."""
    steps = np.arange(len(predicted))
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=steps, y=predicted, mode="lines", name=f"predicted {name}",
                             line=dict(color=PATH_COLOR, width=2.5),
                             hovertemplate="step %{x}<br>" + name + " %{y:.4g}<extra></extra>"))
    fig.add_trace(go.Scatter(x=[steps[k] for k in picks], y=[predicted[k] for k in picks], mode="markers",
                             name="decoded below", hovertemplate="step %{x}<br>" + name + " %{y:.4g}<extra></extra>",
                             marker=dict(size=11, color=PATH_COLOR, line=dict(color="white", width=1.5))))
    fig.update_xaxes(title_text="gradient step on z")
    fig.update_yaxes(title_text=f"predicted {name}")
    style(fig, 320)
    fig.update_layout(hovermode="closest")
    return fig
