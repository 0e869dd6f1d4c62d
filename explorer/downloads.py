"""Downloads of a result: the final CIF, the whole trajectory (extended XYZ) and pictures for slides.

Pictures are rendered on the server and cached across sessions by the trajectory's content, so a class
downloading the same example's GIF renders it once.
"""
from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict

import streamlit as st

from diffusion.api import MAX_FRAMES, MAX_STRIP_PANELS, evenly_spaced_steps, render_gif, render_strip

from .result import Result

MAX_EXPORTS = 16
_EXPORTS: OrderedDict[tuple, bytes] = OrderedDict()
_EXPORTS_LOCK = threading.Lock()


def final_cif(result: Result) -> str:
    from pymatgen.io.cif import CifWriter
    return str(CifWriter(result.trajectory.structure(frame=result.trajectory.num_frames - 1)))


def trajectory_key(trajectory) -> str:
    """A content hash of a trajectory (its cells, coordinates and types): same key, same pictures."""
    digest = hashlib.sha1()
    for tensor in (trajectory.timesteps, trajectory.lattice, trajectory.frac_coords, trajectory.types):
        digest.update(tensor.contiguous().numpy().tobytes())
    return digest.hexdigest()


def export_picture(result: Result, kind: str, count: int) -> bytes:
    """The trajectory's first crystal as a GIF ('gif') or PNG strip ('png') of ``count`` evenly spaced
    steps. Safe to call from the thread that serves a download (no Streamlit calls here)."""
    key = (trajectory_key(result.trajectory), kind, int(count))
    with _EXPORTS_LOCK:
        if key in _EXPORTS:
            _EXPORTS.move_to_end(key)
            return _EXPORTS[key]
    steps = evenly_spaced_steps(result.trajectory, int(count))
    settings = result.settings
    formula = result.trajectory.structure(frame=result.trajectory.num_frames - 1).composition.reduced_formula
    subtitle = f"{formula} · {settings.model} · {settings.sampler}, {settings.steps} steps · seed {settings.seed}"
    data = (render_gif if kind == "gif" else render_strip)(result.trajectory, steps, subtitle=subtitle)
    with _EXPORTS_LOCK:
        _EXPORTS[key] = data
        while len(_EXPORTS) > MAX_EXPORTS:
            _EXPORTS.popitem(last=False)
    return data


def file_stem(result: Result) -> str:
    settings = result.settings
    what = ("".join(ch for ch in settings.composition if ch.isalnum()) if result.task == "csp"
            else f"abinitio{settings.num_atoms}")
    return f"{what}_{settings.model}_{settings.sampler}{settings.steps}_seed{settings.seed}"


def downloads(prefix: str, result: Result) -> None:
    """Download buttons (keys ``<prefix>.dl_*``) and the slide-picture settings (``<prefix>.gif_frames``,
    ``<prefix>.strip_frames``)."""
    stem = file_stem(result)
    left, right, _ = st.columns([1, 1.4, 1.6])
    left.download_button("Final structure (CIF)", data=lambda: final_cif(result), file_name=f"{stem}.cif",
                         mime="chemical/x-cif", icon=":material/download:", on_click="ignore",
                         key=f"{prefix}.dl_cif", width="stretch")
    right.download_button(f"Trajectory, {result.trajectory.num_frames} frames (XYZ)",
                          data=lambda: result.trajectory.to_extxyz(0), file_name=f"{stem}_trajectory.extxyz",
                          mime="chemical/x-xyz", icon=":material/download:", on_click="ignore",
                          key=f"{prefix}.dl_xyz", width="stretch",
                          help="Every recorded step as multi-frame extended XYZ (opens in ASE, OVITO, VESTA).")
    st.markdown("**For slides:** pictures of the trajectory drawn on the server (unit cell, element colours, "
                "the step t on each frame), made when you press a button.")
    frames_col, panels_col, gif_col, png_col = st.columns([1, 1, 1.2, 1.2], vertical_alignment="bottom")
    available = result.trajectory.num_frames
    gif_frames = int(frames_col.number_input("GIF frames", min_value=2, max_value=MAX_FRAMES, value=20, step=1,
                                             key=f"{prefix}.gif_frames",
                                             help="Recorded steps evenly spaced from T to 0 (at most the "
                                                  f"{available} recorded here); the last frame is held."))
    strip_frames = int(panels_col.number_input("Strip panels", min_value=2, max_value=MAX_STRIP_PANELS, value=6,
                                               step=1, key=f"{prefix}.strip_frames",
                                               help="Steps side by side in one PNG, from T to 0."))
    gif_count, strip_count = min(gif_frames, available), min(strip_frames, available)
    gif_col.download_button(f"Animation, {gif_count} frames (GIF)", data=lambda: export_picture(result, "gif", gif_count),
                            file_name=f"{stem}_{gif_count}frames.gif", mime="image/gif", icon=":material/animation:",
                            on_click="ignore", key=f"{prefix}.dl_gif", width="stretch")
    png_col.download_button(f"Strip of {strip_count} steps (PNG)",
                            data=lambda: export_picture(result, "png", strip_count),
                            file_name=f"{stem}_strip{strip_count}.png", mime="image/png", icon=":material/image:",
                            on_click="ignore", key=f"{prefix}.dl_png", width="stretch")
