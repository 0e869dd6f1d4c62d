"""3D structure views as self-contained HTML (py3Dmol), for ``st.iframe``.

No Streamlit here. 3Dmol.js is loaded from the app's own static folder
(``/app/static/3Dmol-min.js``, served because ``.streamlit/config.toml`` enables static
serving), never from a CDN, so views work in a classroom without internet.

A view shows one unit cell (optionally a supercell) with atoms wrapped into it, element
colours (VESTA's scheme, the same in the legend), the cell edges with a, b, c marked,
optionally a faint "ghost" structure (the clean crystal, or the model's prediction of
x_0), and atoms whose type is still undecided (ab initio sampling) in translucent grey.

The HTML is deterministic: the same frame gives the same text, so Streamlit does not
reload an unchanged view, and the camera rotation is kept (in ``sessionStorage``) when
the frame changes.
"""
from __future__ import annotations

import hashlib
import itertools
import json
import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import py3Dmol

JS_URL = os.environ.get("CRYSTAL_DIFFUSION_3DMOL_URL", "/app/static/3Dmol-min.js")
STATIC_JS = Path(__file__).resolve().parent.parent / "static" / "3Dmol-min.js"
UNDECIDED_COLOR = "#9e9e9e"
AXIS_COLORS = ("#d62728", "#2ca02c", "#1f77b4")  # a, b, c as in VESTA
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
    extra_legend: tuple[str, ...] = field(default_factory=tuple)


def _cart(frac: np.ndarray, lattice: np.ndarray, supercell: tuple[int, int, int],
          boundary: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Cartesian positions of wrapped atoms repeated over a supercell, and each one's atom index.

    With ``boundary`` > 0, atoms within that fractional distance of a face of the
    (super)cell are also drawn on the opposite face, as crystallographic viewers do
    (a perovskite shows Sr on all eight corners).
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
            offset = np.asarray(offset, float)
            moved = images + offset
            keep = np.all((moved > -boundary / size) & (moved < 1 + boundary / size), axis=1)
            extra.append(moved[keep])
            extra_index.append(index[keep])
        images, index = np.concatenate(extra), np.concatenate(extra_index)
    return images @ (np.asarray(lattice, float) * size[:, None]), index


def _vec(p) -> dict:
    return {"x": round(float(p[0]), 4), "y": round(float(p[1]), 4), "z": round(float(p[2]), 4)}


def _cell_edges(lattice: np.ndarray, supercell=(1, 1, 1)):
    a, b, c = (np.asarray(lattice, float) * np.asarray(supercell, float)[:, None])
    corners = {(i, j, k): i * a + j * b + k * c for i in (0, 1) for j in (0, 1) for k in (0, 1)}
    for (i, j, k), p in corners.items():
        for axis in range(3):
            q = [i, j, k]
            if q[axis] == 0:
                q[axis] = 1
                yield p, corners[tuple(q)], axis, (i, j, k) == (0, 0, 0)


def _draw_cell(view, lattice, supercell, color: str, radius: float, dashed: bool, axes: bool) -> None:
    if tuple(supercell) != (1, 1, 1):
        for start, end, _, _ in _cell_edges(lattice, supercell):
            view.addCylinder({"start": _vec(start), "end": _vec(end), "radius": radius * 0.6, "color": "#bbbbbb",
                              "dashed": dashed, "fromCap": 1, "toCap": 1})
    for start, end, axis, from_origin in _cell_edges(lattice):
        colour = AXIS_COLORS[axis] if axes and from_origin else color
        view.addCylinder({"start": _vec(start), "end": _vec(end), "radius": radius * (1.6 if axes and from_origin else 1),
                          "color": colour, "dashed": dashed, "fromCap": 1, "toCap": 1})
    if axes:
        for axis, name in enumerate("abc"):
            tip = np.asarray(lattice, float)[axis] * 1.08
            view.addLabel(name, {"position": _vec(tip), "fontColor": AXIS_COLORS[axis], "fontSize": 16,
                                 "backgroundOpacity": 0.0, "inFront": True})


def _draw_atoms(view, frame: ViewFrame, supercell, opacity: float, ghost: bool, boundary: float) -> None:
    cart, index = _cart(frame.frac, frame.lattice, supercell, boundary)
    masked = np.zeros(len(frame.numbers), bool) if frame.masked is None else np.asarray(frame.masked, bool)
    for position, i in zip(cart[:MAX_DRAWN_ATOMS], index[:MAX_DRAWN_ATOMS]):
        z = int(frame.numbers[i])
        if masked[i]:
            spec = {"radius": 0.55, "color": UNDECIDED_COLOR, "opacity": 0.45 if not ghost else 0.15}
        else:
            spec = {"radius": atom_radius(z), "color": element_color(_symbol(z)), "opacity": opacity}
        view.addSphere({"center": _vec(position), **spec})


def _legend_html(frame: ViewFrame, ghost: ViewFrame | None, options: ViewOptions) -> str:
    masked = np.zeros(len(frame.numbers), bool) if frame.masked is None else np.asarray(frame.masked, bool)
    decided = sorted({int(z) for z, m in zip(frame.numbers, masked) if not m}
                     | ({int(z) for z in ghost.numbers} if ghost is not None else set()))
    chips = [f'<span class="chip"><span class="dot" style="background:{element_color(_symbol(z))}"></span>{_symbol(z)}</span>'
             for z in decided]
    if masked.any():
        chips.append(f'<span class="chip"><span class="dot" style="background:{UNDECIDED_COLOR};opacity:.6"></span>'
                     f'undecided type ({int(masked.sum())})</span>')
    if ghost is not None:
        chips.append(f'<span class="chip"><span class="dot ghost"></span>{options.ghost_label}</span>')
    chips.append('<span class="chip axes"><b style="color:#d62728">a</b> <b style="color:#2ca02c">b</b> '
                 '<b style="color:#1f77b4">c</b> cell edges</span>')
    chips.extend(f'<span class="chip">{text}</span>' for text in options.extra_legend)
    return ('<div class="legend">' + "".join(chips) + "</div>")


_STYLE = """<style>
body { margin: 0; font-family: "Source Sans Pro", "Source Sans 3", sans-serif; }
.legend { display: flex; flex-wrap: wrap; gap: 4px 14px; padding: 6px 4px 0 4px; font-size: 15px; color: #31333f; }
.chip { display: inline-flex; align-items: center; gap: 5px; white-space: nowrap; }
.dot { display: inline-block; width: 14px; height: 14px; border-radius: 50%; border: 1px solid #666; }
.dot.ghost { background: #ddd; opacity: .5; border-style: dashed; }
</style>"""

_AFTER_RENDER = """
(function() {
  var viewer = viewer_UNIQUEID;
  var key = "crystal-diffusion-view-GROUP";
  try {
    var saved = JSON.parse(window.sessionStorage.getItem(key) || "null");
    if (saved && saved.length === 8) {
      var v = viewer.getView();
      v[4] = saved[4]; v[5] = saved[5]; v[6] = saved[6]; v[7] = saved[7];
      viewer.setView(v);
    }
    var save = function() { try { window.sessionStorage.setItem(key, JSON.stringify(viewer.getView())); } catch (e) {} };
    var el = document.getElementById("3dmolviewer_UNIQUEID");
    ["mouseup", "touchend", "wheel"].forEach(function(name) { el.addEventListener(name, save); });
  } catch (e) {}
  viewer.render();
  document.body.setAttribute("data-rendered", "FRAMEID");
  try { window.parent.postMessage({type: "crystal-diffusion-rendered", frame: "FRAMEID", time: Date.now()}, "*"); } catch (e) {}
})();
"""


def structure_html(frame: ViewFrame, ghost: ViewFrame | None = None, options: ViewOptions = ViewOptions()) -> str:
    """Self-contained HTML (a div, a legend and a script) drawing ``frame`` with 3Dmol.js."""
    view = py3Dmol.view(width="100%", height=options.height, js=JS_URL)
    view.setBackgroundColor("white")
    supercell = tuple(int(k) for k in options.supercell)
    if ghost is not None:
        _draw_cell(view, ghost.lattice, (1, 1, 1), "#aaaaaa", 0.03, True, False)
        _draw_atoms(view, ghost, supercell, 0.22, True, options.boundary)
    _draw_cell(view, frame.lattice, supercell, "#444444", 0.035, False, True)
    _draw_atoms(view, frame, supercell, 1.0, False, options.boundary)
    view.zoomTo()
    view.rotate(ROTATION[0], "x")
    view.rotate(ROTATION[1], "y")
    html = view._make_html().replace(view.uniqueid, "UNIQUEID")  # py3Dmol's id is the clock: make it the content's hash
    digest = hashlib.sha1(json.dumps([html, options.group]).encode()).hexdigest()[:16]
    html = html.replace("UNIQUEID", digest)
    after = _AFTER_RENDER.replace("UNIQUEID", digest).replace("GROUP", options.group).replace("FRAMEID", digest)
    html = html.replace(f"viewer_{digest}.render();\n", after, 1)
    legend = _legend_html(frame, ghost, options) if options.show_legend else ""
    return _STYLE + html + legend


def grid_html(frames: list[ViewFrame], titles: list[str], columns: int = 4, cell_height: int = 230) -> str:
    """Several structures in one 3Dmol viewer grid (one WebGL context for the whole gallery)."""
    if not frames:
        return "<p>nothing to show</p>"
    columns = max(1, min(columns, len(frames)))
    rows = -(-len(frames) // columns)
    view = py3Dmol.view(width="100%", height=rows * cell_height, js=JS_URL, viewergrid=(rows, columns), linked=False)
    for k, frame in enumerate(frames):
        r, c = divmod(k, columns)
        target = (r, c)
        cart, index = _cart(frame.frac, frame.lattice, (1, 1, 1), 0.02)
        for position, i in zip(cart, index):
            z = int(frame.numbers[i])
            view.addSphere({"center": _vec(position), "radius": atom_radius(z), "color": element_color(_symbol(z))},
                           viewer=target)
        for start, end, axis, from_origin in _cell_edges(frame.lattice):
            view.addCylinder({"start": _vec(start), "end": _vec(end), "radius": 0.03, "color": "#444444"}, viewer=target)
        view.addLabel(titles[k], {"useScreen": True, "position": {"x": 8, "y": 8, "z": 0}, "fontSize": 13,
                                  "fontColor": "black", "backgroundColor": "white", "backgroundOpacity": 0.7},
                      viewer=target)
        view.zoomTo(viewer=target)
        view.rotate(ROTATION[0], "x", viewer=target)
        view.rotate(ROTATION[1], "y", viewer=target)
    html = view._make_html().replace(view.uniqueid, "UNIQUEID")
    digest = hashlib.sha1(html.encode()).hexdigest()[:16]
    html = html.replace("UNIQUEID", digest)
    symbols = sorted({int(z) for f in frames for z in f.numbers})
    legend = ('<div class="legend">' + "".join(
        f'<span class="chip"><span class="dot" style="background:{element_color(_symbol(z))}"></span>{_symbol(z)}</span>'
        for z in symbols) + "</div>")
    return _STYLE + html + legend + (
        f'<script>document.body.setAttribute("data-rendered", "{digest}");</script>')
