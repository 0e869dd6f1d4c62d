"""3D structure views as self-contained HTML for ``st.iframe`` (py3Dmol + ``crystal_view.js``).

No Streamlit here. py3Dmol writes the loader and the viewer; 3Dmol.js comes from the app's
own static folder (``/app/static/3Dmol-min.js``, served because ``.streamlit/config.toml``
enables static serving), never from a CDN, so views work in a classroom without internet.
The structures travel as JSON and ``crystal_view.js`` draws them in the browser.

A view shows one unit cell (optionally a supercell) with atoms wrapped into it, element
colours (VESTA's scheme, the same in the legend), the cell edges with a, b, c marked,
optionally a faint "ghost" structure (the clean crystal, or the model's prediction of
x_0), and atoms whose type is still undecided (ab initio sampling) in dark grey.

Periodic images: an atom on a face, edge or corner of the reference frame (the crystal at
t = 0) is also drawn on the opposite faces, as crystallographic viewers do. Which copies
each atom gets is decided once, on the reference frame, and every other frame draws the
same copies, moved with the atom (``image_translations``), so a perovskite shows 8 Sr and
6 O at every step instead of losing 7 Sr and 3 O at t = 1. A checkbox under the view turns
the copies off. Below the canvas: the legend, that checkbox and a full-screen button; the
camera is centred on the reference cell and fitted to it once, so scrubbing never moves it.

A trajectory view holds every frame and shows the step named in the page URL, redrawing
in place when the URL changes: scrubbing never reloads the iframe. The HTML is
deterministic (same input, same text), so Streamlit never reloads an unchanged view, and
the camera rotation is remembered (``sessionStorage``) across views of the same group.
"""
from __future__ import annotations

import hashlib
import itertools
import json
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import py3Dmol

JS_URL = os.environ.get("CRYSTAL_DIFFUSION_3DMOL_URL", "/app/static/3Dmol-min.js")
STATIC_JS = Path(__file__).resolve().parent.parent / "static" / "3Dmol-min.js"
MAX_DRAWN_ATOMS = 2000
ROTATION = (-75, -25)  # degrees about the screen's x, then y axis: a right, c up, b into the screen, tilted


@lru_cache(maxsize=1)
def _color_table() -> dict[str, str]:
    import pymatgen.vis
    from ruamel.yaml import YAML  # a pymatgen dependency

    path = Path(pymatgen.vis.__file__).resolve().parent / "ElementColorSchemes.yaml"
    table = YAML(typ="safe").load(path.read_text())["VESTA"]
    return {symbol: "#{:02x}{:02x}{:02x}".format(*rgb) for symbol, rgb in table.items()}


def element_color(symbol: str) -> str:
    """Hex colour of an element (VESTA scheme; unknown elements are pink)."""
    return _color_table().get(symbol, "#ff69b4")


@lru_cache(maxsize=128)
def _symbol(z: int) -> str:
    from pymatgen.core.periodic_table import Element
    return Element.from_Z(int(z)).symbol


@lru_cache(maxsize=128)
def atom_radius(z: int) -> float:
    """Drawn sphere radius in angstrom: small enough to see through a cell, ordered like atomic radii."""
    from pymatgen.core.periodic_table import Element
    radius = Element.from_Z(int(z)).atomic_radius
    return 0.2 + 0.22 * float(radius if radius is not None else 1.5)


@dataclass(frozen=True)
class ViewFrame:
    """One periodic structure to draw.

    lattice: (3, 3) rows are lattice vectors in angstrom; frac: (n, 3) fractional
    coordinates (wrapped into [0, 1) here); numbers: (n,) atomic numbers; masked:
    (n,) True where the type is still undecided (drawn grey), or None.
    """

    lattice: np.ndarray
    frac: np.ndarray
    numbers: np.ndarray
    masked: np.ndarray | None = None

    def origin_on_first_atom(self) -> "ViewFrame":
        """The same crystal translated so that atom 0 sits on the cell's corner (for drawing only)."""
        frac = np.asarray(self.frac, float)
        return ViewFrame(self.lattice, frac - frac[0], self.numbers, self.masked)

    @classmethod
    def from_structure(cls, structure, masked=None) -> "ViewFrame":
        return cls(np.asarray(structure.lattice.matrix, float), np.asarray(structure.frac_coords, float),
                   np.asarray([site.specie.Z for site in structure], int), masked)


@dataclass(frozen=True)
class ViewOptions:
    height: int = 460
    supercell: tuple[int, int, int] = (1, 1, 1)
    ghost_label: str = "ghost"
    group: str = "view"          # views of one group share the remembered camera rotation
    boundary: float = 0.02       # draw atoms this close to a face on the opposite face too (0 = off)
    show_legend: bool = True


def _wrap(frac) -> np.ndarray:
    frac = np.mod(np.asarray(frac, float), 1.0)
    return np.where(frac >= 1.0, 0.0, frac)  # mod of a tiny negative number can round to 1.0


def image_translations(reference: np.ndarray, supercell: tuple[int, int, int] = (1, 1, 1),
                       boundary: float = 0.0) -> list[list[list[int]]]:
    """Per atom and axis, the whole-cell translations at which the atom is drawn (``[i][axis]``).

    Decided once on the reference frame (wrapped into [0, 1)): one copy per cell of the
    supercell, plus, with ``boundary`` > 0, a copy on the opposite face for an atom within
    ``boundary`` (a fraction of the unit cell) of a face of the supercell. Per axis, so the
    copies of an atom are every combination of its three lists (8 for an atom on a corner).
    """
    reference = _wrap(reference)
    out = []
    for f in reference:
        axes = []
        for value, size in zip(f, supercell):
            size = int(size)
            kept = [j + o * size for j in range(size) for o in (0, -1, 1)
                    if o == 0 or -boundary < value + j + o * size < size + boundary]
            axes.append(sorted(set(kept)))
        out.append(axes)
    return out


def _outside(position: np.ndarray, size: int) -> np.ndarray:
    return np.maximum(0.0, -position) + np.maximum(0.0, position - size)


def image_positions(frac: np.ndarray, lattice: np.ndarray, reference: np.ndarray,
                    translations: list[list[list[int]]], supercell: tuple[int, int, int] = (1, 1, 1)
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Cartesian positions of every drawn copy of every atom of one frame, and each copy's atom index.

    The reference for ``crystal_view.js`` (which draws in the browser) and for tests. Each
    atom is first put at its periodic image nearest its reference position, so its copies
    keep their places while it moves a little; then, per axis, the whole set is moved by the
    number of cells that keeps it most inside the supercell (an atom that left the cell comes
    back on the other side, as the wrapped normal says).
    """
    frac, reference = np.asarray(frac, float), _wrap(reference)
    lattice = np.asarray(lattice, float)
    size = np.asarray(supercell, int)
    points, index = [], []
    for i, (f, r, axes) in enumerate(zip(frac, reference, translations)):
        per_axis = []
        for a in range(3):
            u = r[a] + (f[a] - r[a] - np.round(f[a] - r[a]))
            shifts = np.asarray(axes[a], float)
            best = min((0, -1, 1, -2, 2), key=lambda n: (_outside(u + n + shifts, size[a]).sum(), abs(n)))
            per_axis.append((u + best + shifts) / size[a])
        for point in itertools.product(*per_axis):
            points.append(point)
            index.append(i)
    cart = np.asarray(points, float).reshape(-1, 3) @ (lattice * size[:, None])
    return cart, np.asarray(index, int)


def _cart(frac: np.ndarray, lattice: np.ndarray, supercell: tuple[int, int, int],
          boundary: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Cartesian positions of wrapped atoms repeated over a supercell, and each one's atom index,
    with the frame as its own reference: with ``boundary`` > 0 a perovskite shows Sr on all
    eight corners."""
    translations = image_translations(frac, supercell, boundary)
    return image_positions(frac, lattice, frac, translations, supercell)


def _frame_data(frame: ViewFrame, images: int) -> dict:
    """A frame as JSON; ``images`` indexes the image set (reference and translations) it is drawn with."""
    data = {"L": [round(float(v), 4) for v in np.asarray(frame.lattice, float).ravel()],
            "F": [round(float(v), 5) for v in np.asarray(frame.frac, float).ravel()],
            "Z": [int(z) for z in frame.numbers], "I": int(images)}
    if frame.masked is not None and np.asarray(frame.masked).any():
        data["M"] = [1 if m else 0 for m in np.asarray(frame.masked, bool)]
    return data


def _image_set(reference: ViewFrame, supercell: tuple[int, int, int], boundary: float) -> dict:
    frac = _wrap(reference.frac)
    return {"R": [round(float(v), 5) for v in frac.ravel()], "T": image_translations(frac, supercell, boundary)}


def reference_index(steps: list[int]) -> int:
    """The frame whose copies every frame draws: the crystal at t = 0, else the last frame."""
    steps = [int(t) for t in steps]
    return steps.index(0) if 0 in steps else len(steps) - 1


def _elements(frames: list[ViewFrame]) -> list[int]:
    return sorted({int(z) for f in frames for z in f.numbers})


@lru_cache(maxsize=1)
def _script() -> str:
    return (Path(__file__).resolve().parent / "crystal_view.js").read_text()


_STYLE = """<style>
html, body { margin: 0; height: 100%; overflow: hidden; font-family: "Source Sans Pro", "Source Sans 3", sans-serif; }
.cv-wrap { display: flex; flex-direction: column; height: 100vh; background: white; position: relative; }
.cv-wrap > div[id^="3dmolviewer"] { flex: 1 1 auto; min-height: 80px; height: auto !important; }
.bar { display: flex; flex-wrap: wrap; align-items: center; justify-content: space-between; gap: 4px 12px;
       padding: 6px 4px 2px 4px; color: #31333f; }
.legend { display: flex; flex-wrap: wrap; gap: 4px 14px; font-size: 15px; min-height: 22px; }
.tools { display: flex; align-items: center; gap: 10px; font-size: 14px; margin-left: auto; }
.tools label { display: inline-flex; align-items: center; gap: 4px; cursor: pointer; white-space: nowrap; }
.tools button { font: inherit; padding: 2px 10px; border: 1px solid #c7c9d1; border-radius: 6px; background: white;
                color: #31333f; cursor: pointer; white-space: nowrap; }
.tools button:hover { border-color: #ff4b4b; color: #ff4b4b; }
.chip { display: inline-flex; align-items: center; gap: 5px; white-space: nowrap; }
.dot { display: inline-block; width: 14px; height: 14px; border-radius: 50%; border: 1px solid #666; }
.dot.ghost { opacity: .5; border-style: dashed; }
.dot.undecided { opacity: .85; }
@media (max-width: 360px) { .tools .wide { display: none; } .legend { font-size: 13px; gap: 2px 8px; } }
body.projector .legend { font-size: 20px; gap: 6px 18px; }
body.projector .tools { font-size: 18px; }
body.projector .dot { width: 18px; height: 18px; }
:fullscreen .legend { font-size: 20px; }
</style>"""


def _html(frames: list[ViewFrame], *, height: int, steps: list[int] | None = None, ghosts: list[ViewFrame] | None = None,
          options: ViewOptions = ViewOptions(), follow: str | None = None, follow_slider: str | None = None,
          initial: int | None = None, grid: tuple[int, int] | None = None, titles: list[str] | None = None) -> str:
    """py3Dmol's loader and viewer (3Dmol.js from the app's static folder) + crystal_view.js + the frames as JSON.

    A trajectory (no grid) draws every frame and ghost with the copies decided on its reference
    frame; each structure of a grid is its own reference.
    """
    if not frames:
        raise ValueError("nothing to draw")
    supercell = tuple(int(k) for k in options.supercell)
    if grid:
        image_sets = [_image_set(f, supercell, options.boundary) for f in frames]
        frame_sets = list(range(len(frames)))
        ghost_sets = list(range(len(ghosts or [])))
    else:
        reference = frames[reference_index(steps if steps is not None else list(range(len(frames))))]
        image_sets = [_image_set(reference, supercell, options.boundary)]
        frame_sets = [0 if len(f.numbers) == len(reference.numbers) else None for f in frames]
        ghost_sets = [0 if len(g.numbers) == len(reference.numbers) else None for g in ghosts or []]

    def encode(items: list[ViewFrame], sets: list[int | None]) -> list[dict]:
        out = []
        for item, index in zip(items, sets):
            if index is None:  # another atom count than the reference: its own copies
                image_sets.append(_image_set(item, supercell, options.boundary))
                index = len(image_sets) - 1
            out.append(_frame_data(item, index))
        return out

    everything = frames + (ghosts or [])
    data = {
        "frames": encode(frames, frame_sets),
        "ghosts": None if not ghosts else encode(ghosts, ghost_sets),
        "imageSets": image_sets,
        "steps": list(steps) if steps is not None else list(range(len(frames))),
        "colors": {str(z): element_color(_symbol(z)) for z in _elements(everything)},
        "radii": {str(z): round(atom_radius(z), 3) for z in _elements(everything)},
        "symbols": {str(z): _symbol(z) for z in _elements(everything)},
        "supercell": list(supercell), "ghostLabel": options.ghost_label, "group": options.group,
        "rotation": list(ROTATION), "follow": follow, "followSlider": follow_slider,
        "initial": len(frames) - 1 if initial is None else int(initial),
        "maxAtoms": MAX_DRAWN_ATOMS, "titles": titles, "legend": options.show_legend, "grid": list(grid or (1, 1)),
    }
    payload = json.dumps(data, separators=(",", ":"))
    digest = hashlib.sha1(payload.encode()).hexdigest()[:16]
    data["id"] = digest
    payload = json.dumps(data, separators=(",", ":")).replace("</", "<\\/")
    if grid:
        view = py3Dmol.view(width="100%", height=height, js=JS_URL, viewergrid=grid, linked=False)
        viewers = "[].concat.apply([], viewergrid_UNIQUEID)"
    else:
        view = py3Dmol.view(width="100%", height=height, js=JS_URL)
        viewers = "[viewer_UNIQUEID]"
    html = view._make_html().replace(view.uniqueid, digest)  # py3Dmol's id is the clock: use the content's hash
    html = html.replace('{backgroundColor:"white"}', '{backgroundColor:"white", antialias: crystalViewHardwareGL()}')
    call = (f"\n{_script()}\ncrystalView({viewers.replace('UNIQUEID', digest)}, {payload}, "
            f"document.getElementById('wrap_{digest}'));\n")
    head, tail = html.rsplit("});", 1)
    bar = (f'<div class="bar"><div class="legend" id="legend_{digest}"></div>'
           f'<div class="tools" id="tools_{digest}"></div></div>')
    return _STYLE + f'<div class="cv-wrap" id="wrap_{digest}">' + head + call + "});" + tail + bar + "</div>"


def structure_html(frame: ViewFrame, ghost: ViewFrame | None = None, options: ViewOptions = ViewOptions()) -> str:
    """Self-contained HTML drawing one structure (and an optional faint ghost) with 3Dmol.js."""
    return _html([frame], height=options.height, ghosts=None if ghost is None else [ghost], options=options)


def trajectory_html(frames: list[ViewFrame], steps: list[int], ghosts: list[ViewFrame] | None = None,
                    options: ViewOptions = ViewOptions(), follow: str = "t", slider_label: str | None = None,
                    initial: int | None = None) -> str:
    """All frames of a trajectory in one view that shows the step the page's slider is on.

    The view reads the step from the page's slider labelled ``slider_label`` (live, while it
    is dragged) or else from the URL's ``follow`` query parameter, which the page writes.
    The HTML does not depend on the current step, so moving the slider never reloads the
    iframe: the view redraws one frame (milliseconds on a GPU) instead of re-creating WebGL
    and 3Dmol.js (seconds under software GL). ``ghosts``: one per frame, or one for all.
    Every frame draws the periodic copies of the frame at t = 0 (``reference_index``).
    """
    return _html(frames, height=options.height, steps=steps, ghosts=ghosts, options=options, follow=follow,
                 follow_slider=slider_label, initial=initial)


def grid_html(frames: list[ViewFrame], titles: list[str], columns: int = 4, cell_height: int = 230,
              boundary: float = 0.05) -> str:
    """Several structures in one 3Dmol viewer grid (one WebGL context for the whole gallery)."""
    if not frames:
        return "<p>nothing to show</p>"
    columns = max(1, min(columns, len(frames)))
    rows = -(-len(frames) // columns)
    return _html(frames, height=rows * cell_height, options=ViewOptions(group="gallery", boundary=boundary),
                 grid=(rows, columns), titles=titles)
