"""Two runs of one model under one slider, as plain data: their settings, trajectories and labels, the
slider's steps, and the figure that overlays their diagnostics (no widgets here; the page is compare.py).

Both runs come from the same model, so they share T and each side shows its recorded frame nearest t
(``Trajectory.frame_of_step``). A run with fewer steps sits on an evenly strided grid, so that is the
proportional mapping: frame k ~ (T - t) / T * (K - 1).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from diffusion.api import VALID_MIN_DISTANCE

from .figures import DIAGNOSTICS, MARKER_COLOR, PALETTE, marker_value
from .settings import GenerateSettings

DIFFERENCES = {
    "sampler": "Sampler",
    "steps": "Number of steps",
    "seed": "Seed",
    "guidance": "Guidance off vs on",
    "start": "Start: noise vs a known crystal",
    "free": "Free: any settings",
    "family": "Model family: diffusion vs CDVAE",
}
EXTERNAL = "external"   # another model's trajectory (opened from a file) vs ours; made by the Open page only
SIDE_COLORS = (PALETTE[0], PALETTE[1])
SLIDER_PREFIX = "Step t of both reverse processes"   # the 3D views find the slider by this start of its label


@dataclass(frozen=True)
class Side:
    """One of the two runs: its settings, its trajectory and a short label."""

    label: str
    settings: GenerateSettings
    trajectory: object          # diffusion.Trajectory
    seconds: float

    @property
    def steps(self) -> list[int]:
        return [int(t) for t in self.trajectory.timesteps.tolist()]


@dataclass(frozen=True)
class Comparison:
    """Two finished runs of one model that differ in ``difference`` (a key of ``DIFFERENCES``)."""

    id: int
    difference: str
    task: str
    left: Side
    right: Side
    abar: np.ndarray            # (T+1,) the model's lattice schedule
    sigma: np.ndarray           # (T+1,) coordinate noise levels

    @property
    def sides(self) -> tuple[Side, Side]:
        return self.left, self.right

    @property
    def steps(self) -> list[int]:
        """The slider's positions: every step either run recorded, from T down to 0."""
        return common_steps(self.left.steps, self.right.steps)

    @property
    def slider_label(self) -> str:
        """Says where each run starts: T for a run from noise, t0 for one from a known crystal."""
        starts = [side.settings.template_step for side in self.sides if side.settings.template_step is not None]
        if not starts:
            return f"{SLIDER_PREFIX}: T (noise) → 0 (crystal)"
        return f"{SLIDER_PREFIX}: T (noise) → 0; the known crystal's run starts at t0 = {starts[0]}"

    @property
    def label(self) -> str:
        base = self.left.settings
        what = f"{base.num_atoms} atoms" if self.task == "gen" else base.composition
        return f"#{self.id}: {what} · {base.model} · {self.left.label} vs {self.right.label}"


def common_steps(a: list[int], b: list[int]) -> list[int]:
    """The union of two step grids, descending (T first, 0 last)."""
    return sorted(set(int(t) for t in a) | set(int(t) for t in b), reverse=True)


def split_settings(base: GenerateSettings, difference: str, left=None, right=None) -> tuple[GenerateSettings, GenerateSettings]:
    """The two runs' settings: ``base`` with the one setting that differs set to ``left`` / ``right``.

    For "guidance" the values are not used: left is ``base`` without any condition, right is
    ``base`` itself (which must carry a property target). For "free", left and right are dicts of
    GenerateSettings fields (sampler, steps, seed, template_step) applied to ``base``.
    """
    if difference == "free":
        return base.replace(**dict(left or {})), base.replace(**dict(right or {}))
    if difference == "sampler":
        return base.replace(sampler=str(left)), base.replace(sampler=str(right))
    if difference == "steps":
        return base.replace(steps=int(left)), base.replace(steps=int(right))
    if difference == "seed":
        return base.replace(seed=int(left)), base.replace(seed=int(right))
    if difference == "guidance":
        if base.prop is None:
            raise ValueError("guidance on needs a property target")
        return base.replace(prop=None, space_group=None, guidance=0.0), base
    if difference == "start":
        return base.replace(template_step=None), base.replace(template_step=int(right))
    raise ValueError(f"unknown difference '{difference}' (choose {', '.join(DIFFERENCES)})")


def side_label(settings: GenerateSettings, difference: str, property_name: str | None = None) -> str:
    """What makes this side different, in a few words."""
    if difference == "sampler":
        return f"{settings.sampler.upper()}, {settings.steps} steps"
    if difference == "steps":
        return f"{settings.sampler.upper()}, {settings.steps} steps"
    if difference == "seed":
        return f"seed {settings.seed}"
    start = "from noise" if settings.template_step is None else f"from a known crystal, t0 = {settings.template_step}"
    if difference == "start":
        return start
    if difference == "free":
        return f"{settings.sampler.upper()}, {settings.steps} steps, seed {settings.seed}, {start}"
    if difference == "family":
        if settings.sampler == "langevin":
            return f"CDVAE {settings.model}: Langevin, {settings.steps} steps per level"
        return f"diffusion {settings.model}: {settings.sampler.upper()}, {settings.steps} steps"
    if settings.prop is None:
        return "no guidance"
    return f"{property_name or 'property'} = {settings.prop:g}, w = {settings.guidance:g}"


def overlay_figure(comparison: Comparison, t: int) -> go.Figure:
    """Both runs' diagnostics against t (T on the left) in one figure, each with a marker at its frame nearest t."""
    fig = make_subplots(rows=2, cols=2, subplot_titles=[title for _, title in DIAGNOSTICS],
                        horizontal_spacing=0.09, vertical_spacing=0.24)
    for side, color in zip(comparison.sides, SIDE_COLORS):
        steps = side.trajectory.timesteps.numpy()
        k = side.trajectory.frame_of_step(t)
        for i, (name, title) in enumerate(DIAGNOSTICS):
            row, col = divmod(i, 2)
            y = getattr(side.trajectory, name)[:, 0].double().numpy()
            fig.add_trace(go.Scatter(x=steps, y=y, mode="lines", line=dict(color=color, width=2), name=side.label,
                                     legendgroup=side.label, showlegend=i == 0,
                                     hovertemplate=f"{side.label}<br>t=%{{x}}<br>%{{y:.3g}}<extra></extra>"),
                          row=row + 1, col=col + 1)
            value = marker_value(y, k)
            if value is not None:
                fig.add_trace(go.Scatter(x=[int(steps[k])], y=[value], mode="markers", showlegend=False,
                                         legendgroup=side.label,
                                         marker=dict(color=color, size=11, line=dict(color="white", width=1.5)),
                                         hovertemplate=f"{side.label}<br>t={int(steps[k])}<br>%{{y:.3g}}<extra>now</extra>"),
                              row=row + 1, col=col + 1)
    for i, (name, _) in enumerate(DIAGNOSTICS):
        row, col = divmod(i, 2)
        fig.add_vline(x=int(t), line=dict(color=MARKER_COLOR, width=1.5, dash="dot"), row=row + 1, col=col + 1)
        if name == "min_distance":
            fig.add_hline(y=VALID_MIN_DISTANCE, line=dict(color="#888888", dash="dash", width=1), row=row + 1, col=col + 1)
    T = max(comparison.steps[0], 1)
    fig.update_xaxes(range=[T * 1.02, -T * 0.02], title_text="step t")
    fig.update_layout(height=540, margin=dict(l=10, r=10, t=60, b=10), template="plotly_white", hovermode="closest",
                      font=dict(size=14), legend=dict(orientation="h", yanchor="bottom", y=1.06, xanchor="left", x=0))
    fig.update_annotations(font=dict(size=14))
    return fig
