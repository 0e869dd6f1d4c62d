"""3D structure views as self-contained HTML for ``st.iframe`` (py3Dmol + ``crystal_view.js``).

No Streamlit here. py3Dmol writes the loader and the viewer; 3Dmol.js comes from the app's
own static folder (``/app/static/3Dmol-min.js``, served because ``.streamlit/config.toml``
enables static serving), never from a CDN, so views work in a classroom without internet.
The structures travel as JSON and ``crystal_view.js`` draws them in the browser.

A view shows one unit cell (optionally a supercell) with atoms wrapped into it, element
colours (VESTA's scheme, the same in the legend), the cell edges with a, b, c marked,
optionally a faint "ghost" structure (the clean crystal, or the model's prediction of
x_0), and atoms whose type is still undecided (ab initio sampling) in dark grey.

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


def _cart(frac: np.ndarray, lattice: np.ndarray, supercell: tuple[int, int, int],
          boundary: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Cartesian positions of wrapped atoms repeated over a supercell, and each one's atom index.

    The reference for ``crystal_view.js`` (which draws in the browser) and for tests: with
    ``boundary`` > 0, atoms within that fractional distance of a face of the (super)cell
    are also drawn on the opposite face, as crystallographic viewers do (a perovskite
    shows Sr on all eight corners).
    """
    frac = np.mod(np.asarray(frac, float), 1.0)
    size = np.asarray(supercell, float)
    shifts = np.array(list(itertools.product(*(range(int(k)) for k in supercell))), float)
    images = ((frac[None, :, :] + shifts[:, None, :]) / size).reshape(-1, 3)  # supercell fractions in [0, 1)
    index = np.tile(np.arange(len(frac)), len(shifts))
    if boundary > 0:
        extra, extra_index = [images], [index]
        for offset in itertools.product((-1, 0, 1), repeat=3):
            if offset == (0, 0, 0):
                continue
            moved = images + np.asarray(offset, float)
            keep = np.all((moved > -boundary / size) & (moved < 1 + boundary / size), axis=1)
            extra.append(moved[keep])
            extra_index.append(index[keep])
        images, index = np.concatenate(extra), np.concatenate(extra_index)
    return images @ (np.asarray(lattice, float) * size[:, None]), index


def _frame_data(frame: ViewFrame, boundary: float) -> dict:
    data = {"L": [round(float(v), 4) for v in np.asarray(frame.lattice, float).ravel()],
            "F": [round(float(v), 5) for v in np.asarray(frame.frac, float).ravel()],
            "Z": [int(z) for z in frame.numbers]}
    if frame.masked is not None and np.asarray(frame.masked).any():
        data["M"] = [1 if m else 0 for m in np.asarray(frame.masked, bool)]
    if boundary > 0:
        data["B"] = boundary
    return data


def _elements(frames: list[ViewFrame]) -> list[int]:
    return sorted({int(z) for f in frames for z in f.numbers})


@lru_cache(maxsize=1)
def _script() -> str:
    return (Path(__file__).resolve().parent / "crystal_view.js").read_text()


_STYLE = """<style>
body { margin: 0; font-family: "Source Sans Pro", "Source Sans 3", sans-serif; }
.legend { display: flex; flex-wrap: wrap; gap: 4px 14px; padding: 6px 4px 0 4px; font-size: 15px; color: #31333f; min-height: 22px; }
.chip { display: inline-flex; align-items: center; gap: 5px; white-space: nowrap; }
.dot { display: inline-block; width: 14px; height: 14px; border-radius: 50%; border: 1px solid #666; }
.dot.ghost { opacity: .5; border-style: dashed; }
.dot.undecided { opacity: .85; }
</style>"""


def _html(frames: list[ViewFrame], *, height: int, steps: list[int] | None = None, ghosts: list[ViewFrame] | None = None,
          options: ViewOptions = ViewOptions(), boundaries: list[float] | None = None, follow: str | None = None,
          follow_slider: str | None = None, initial: int | None = None, grid: tuple[int, int] | None = None,
          titles: list[str] | None = None) -> str:
    """py3Dmol's loader and viewer (3Dmol.js from the app's static folder) + crystal_view.js + the frames as JSON."""
    if not frames:
        raise ValueError("nothing to draw")
    boundaries = boundaries or [options.boundary] * len(frames)
    everything = frames + (ghosts or [])
    data = {
        "frames": [_frame_data(f, b) for f, b in zip(frames, boundaries)],
        "ghosts": None if not ghosts else [_frame_data(g, b) for g, b in zip(ghosts, boundaries)],
        "steps": list(steps) if steps is not None else list(range(len(frames))),
        "colors": {str(z): element_color(_symbol(z)) for z in _elements(everything)},
        "radii": {str(z): round(atom_radius(z), 3) for z in _elements(everything)},
        "symbols": {str(z): _symbol(z) for z in _elements(everything)},
        "supercell": [int(k) for k in options.supercell], "ghostLabel": options.ghost_label, "group": options.group,
        "rotation": list(ROTATION), "follow": follow, "followSlider": follow_slider, "initial": len(frames) - 1 if initial is None else int(initial),
        "maxAtoms": MAX_DRAWN_ATOMS, "titles": titles,
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
            f"document.getElementById('legend_{digest}'));\n")
    head, tail = html.rsplit("});", 1)
    legend = f'<div class="legend" id="legend_{digest}"></div>' if options.show_legend else ""
    return _STYLE + head + call + "});" + tail + legend


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
    Only the final frame (t = 0) gets boundary images; noisy frames show each atom once.
    """
    boundaries = [options.boundary if int(t) == 0 else 0.0 for t in steps]
    return _html(frames, height=options.height, steps=steps, ghosts=ghosts, options=options, boundaries=boundaries,
                 follow=follow, follow_slider=slider_label, initial=initial)


def grid_html(frames: list[ViewFrame], titles: list[str], columns: int = 4, cell_height: int = 230,
              boundary: float = 0.05) -> str:
    """Several structures in one 3Dmol viewer grid (one WebGL context for the whole gallery)."""
    if not frames:
        return "<p>nothing to show</p>"
    columns = max(1, min(columns, len(frames)))
    rows = -(-len(frames) // columns)
    return _html(frames, height=rows * cell_height, options=ViewOptions(group="gallery", boundary=boundary),
                 grid=(rows, columns), titles=titles)
