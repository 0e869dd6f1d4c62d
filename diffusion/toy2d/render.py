"""A 2D run as an animated GIF (matplotlib's Agg canvas, no display): the forward or reverse frames of the
points over the data in grey, for slides."""
from __future__ import annotations

import io

import numpy as np

MAX_GIF_FRAMES = 60


def points_gif(frames: np.ndarray, steps: list[int], data: np.ndarray, periodic: bool, title: str,
               count: int = 30, size: int = 420, frame_ms: int = 120, hold_ms: int = 1500) -> bytes:
    """frames (K, n, 2), steps (K,) the step t of each frame, data (m, 2); ``count`` evenly spaced frames
    (first and last kept, at most MAX_GIF_FRAMES) of ``size`` x ``size`` pixels, looping, the last held."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure
    from PIL import Image

    K = len(frames)
    if K == 0 or len(steps) != K:
        raise ValueError("give one step per frame")
    count = max(2, min(int(count), MAX_GIF_FRAMES, K))
    chosen = sorted({int(round(i)) for i in np.linspace(0, K - 1, count)})
    span = 3.2
    images = []
    for k in chosen:
        figure = Figure(figsize=(size / 100, size / 100), dpi=100)
        axes = figure.add_axes((0.02, 0.02, 0.96, 0.9))
        axes.scatter(data[:, 0], data[:, 1], s=2, c="#cccccc", linewidths=0)
        axes.scatter(frames[k][:, 0], frames[k][:, 1], s=3, c="#1f77b4", alpha=0.7, linewidths=0)
        axes.set_xlim(*((0, 1) if periodic else (-span, span)))
        axes.set_ylim(*((0, 1) if periodic else (-span, span)))
        axes.set_aspect("equal")
        axes.set_xticks([])
        axes.set_yticks([])
        figure.suptitle(f"{title}: t = {steps[k]}", fontsize=11)
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png")
        images.append(Image.open(io.BytesIO(buffer.getvalue())).convert("P", palette=Image.Palette.ADAPTIVE,
                                                                          colors=64))
    durations = [int(frame_ms)] * (len(images) - 1) + [int(max(hold_ms, frame_ms))]
    out = io.BytesIO()
    images[0].save(out, format="GIF", save_all=True, append_images=images[1:], duration=durations, loop=0)
    return out.getvalue()
