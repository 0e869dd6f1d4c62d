"""Pictures of a trajectory for slides: an animated GIF and a PNG strip, drawn on the server.

No browser and no display: matplotlib's Agg canvas draws each chosen step of one crystal
as a 3D scatter with the unit-cell edges (a, b, c marked), element colours (VESTA's
scheme, the same as the app's 3D views), a small legend and the step t in the title;
Pillow writes the GIF / PNG. Undecided atom types (ab initio sampling) are dark grey.

Every frame is drawn at one common scale (the largest cell of the chosen steps), so a
growing or shrinking cell is seen as such, and with one common translation that puts the
final crystal's first atom on the cell's corner, as the app does. Output is bounded:
at most ``MAX_FRAMES`` GIF frames, ``MAX_STRIP_PANELS`` strip panels, ``MAX_SIZE`` pixels
a side and ``MAX_BYTES`` per file.
"""
from __future__ import annotations

import io
import itertools
from functools import lru_cache
from pathlib import Path

import numpy as np

from .corruption import MASK
from .trajectory import Trajectory

MAX_FRAMES = 60
MAX_STRIP_PANELS = 16
MIN_SIZE, MAX_SIZE = 120, 800
MAX_BYTES = 8 * 2**20
BOUNDARY = 0.05          # atoms this close to a face are drawn on the opposite face too (final frame only)
UNDECIDED_COLOR = "#505050"
VIEW = (18.0, -68.0)     # matplotlib elevation, azimuth (degrees): a to the right, c up, b into the screen
_DPI = 100


# ------------------------------------------------------------------------------ choosing steps

def evenly_spaced_steps(trajectory: Trajectory, count: int) -> list[int]:
    """``count`` recorded steps from T down to 0, evenly spaced over the frames (all frames if fewer)."""
    if count < 1:
        raise ValueError(f"need at least one frame, got {count}")
    K = trajectory.num_frames
    index = np.unique(np.round(np.linspace(0, K - 1, min(int(count), K))).astype(int))
    return [int(trajectory.timesteps[k]) for k in index]


def _frames_of(trajectory: Trajectory, steps, limit: int, what: str) -> list[int]:
    steps = [int(t) for t in steps]
    if not steps:
        raise ValueError("choose at least one step to draw")
    if len(steps) > limit:
        raise ValueError(f"at most {limit} {what}, got {len(steps)}")
    if len(set(steps)) != len(steps):
        raise ValueError("each step can be drawn only once")
    recorded = [int(t) for t in trajectory.timesteps.tolist()]
    frames = []
    for t in steps:
        if t not in recorded:
            shown = ", ".join(str(s) for s in recorded[:4])
            raise ValueError(f"step {t} was not recorded (recorded: {shown}, ..., 0)")
        frames.append(recorded.index(t))
    return frames


def _check_size(size: int) -> int:
    if not MIN_SIZE <= int(size) <= MAX_SIZE:
        raise ValueError(f"size must be between {MIN_SIZE} and {MAX_SIZE} pixels, got {size}")
    return int(size)


def _check_crystal(trajectory: Trajectory, crystal: int) -> int:
    if not 0 <= int(crystal) < trajectory.num_crystals:
        raise ValueError(f"crystal must be between 0 and {trajectory.num_crystals - 1}, got {crystal}")
    return int(crystal)


# ------------------------------------------------------------------------------ colours and sizes

@lru_cache(maxsize=1)
def _color_table() -> dict[str, str]:
    """VESTA element colours shipped with pymatgen (the app's 3D views use the same table)."""
    import pymatgen.vis
    from ruamel.yaml import YAML  # a pymatgen dependency

    path = Path(pymatgen.vis.__file__).resolve().parent / "ElementColorSchemes.yaml"
    table = YAML(typ="safe").load(path.read_text())["VESTA"]
    return {symbol: "#{:02x}{:02x}{:02x}".format(*rgb) for symbol, rgb in table.items()}


@lru_cache(maxsize=128)
def _element(z: int) -> tuple[str, str, float]:
    """(symbol, hex colour, drawn radius in angstrom) of atomic number z."""
    from pymatgen.core.periodic_table import Element

    element = Element.from_Z(int(z))
    radius = element.atomic_radius
    return element.symbol, _color_table().get(element.symbol, "#ff69b4"), 0.2 + 0.22 * float(radius if radius else 1.5)


# ------------------------------------------------------------------------------ geometry

def _images(frac: np.ndarray, boundary: float) -> tuple[np.ndarray, np.ndarray]:
    """Wrapped fractional positions plus copies on opposite faces within ``boundary``; and atom indices."""
    frac = np.mod(frac, 1.0)
    index = np.arange(len(frac))
    if boundary <= 0:
        return frac, index
    parts, indices = [frac], [index]
    for offset in itertools.product((-1, 0, 1), repeat=3):
        if offset == (0, 0, 0):
            continue
        moved = frac + np.asarray(offset, float)
        keep = np.all((moved > -boundary) & (moved < 1 + boundary), axis=1)
        parts.append(moved[keep])
        indices.append(index[keep])
    return np.concatenate(parts), np.concatenate(indices)


_CORNERS = np.array(list(itertools.product((0, 1), repeat=3)), float)
_EDGES = [(i, j) for i, j in itertools.combinations(range(8), 2) if np.abs(_CORNERS[i] - _CORNERS[j]).sum() == 1]


class _Scene:
    """What every frame of one picture shares: the crystal, the translation, the scale, the elements."""

    def __init__(self, trajectory: Trajectory, crystal: int, frames: list[int], subtitle: str | None):
        self.trajectory, self.crystal = trajectory, crystal
        start = int(trajectory.num_atoms[:crystal].sum())
        self.atoms = slice(start, start + int(trajectory.num_atoms[crystal]))
        self.shift = trajectory.frac_coords[-1, start].double().numpy()   # final crystal's first atom -> corner
        self.T = int(trajectory.timesteps[0])
        lattices = trajectory.lattice[frames, crystal].double().numpy()
        half = max(np.abs(_CORNERS @ L - 0.5 * L.sum(0)).max() for L in lattices)
        self.half = 1.08 * half + 1.0          # room for the atoms' radii
        decided = [trajectory.element_numbers(k, crystal)[~trajectory.masked(k, crystal)] for k in frames]
        self.elements = sorted({int(z) for numbers in decided for z in numbers if int(z) != MASK})  # legend
        self.undecided = any(trajectory.masked(k, crystal).any() for k in frames)
        final = trajectory.element_numbers(trajectory.num_frames - 1, crystal)
        formula = _formula(final)
        self.subtitle = subtitle if subtitle is not None else " · ".join(x for x in (formula, trajectory.sampler) if x)


def _formula(numbers: np.ndarray) -> str:
    from pymatgen.core import Composition

    symbols = [_element(int(z))[0] for z in numbers if int(z) != MASK]
    return Composition(" ".join(symbols)).reduced_formula if symbols else ""


def _draw(scene: _Scene, k: int, size: int):
    """One frame as a PIL RGB image of ``size`` x ``size`` pixels."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from PIL import Image

    trajectory, crystal = scene.trajectory, scene.crystal
    t = int(trajectory.timesteps[k])
    L = trajectory.lattice[k, crystal].double().numpy()
    frac = trajectory.frac_coords[k, scene.atoms].double().numpy() - scene.shift
    numbers = trajectory.element_numbers(k, crystal)
    masked = trajectory.masked(k, crystal)
    frac_images, index = _images(frac, BOUNDARY if t == 0 else 0.0)
    centre = 0.5 * L.sum(0)
    xyz = frac_images @ L - centre

    fig = Figure(figsize=(size / _DPI, size / _DPI), dpi=_DPI, facecolor="white")
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0.0, 0.0, 1.0, 0.9), projection="3d")
    ax.set_proj_type("ortho")
    ax.view_init(*VIEW)
    for i, j in _EDGES:
        a, b = _CORNERS[i] @ L - centre, _CORNERS[j] @ L - centre
        ax.plot(*zip(a, b), color="#333333", lw=1.0 if size < 300 else 1.4, alpha=0.8)
    for axis, name in enumerate("abc"):  # at the middle of the edge from the origin, pushed out of the cell
        middle = 0.5 * L[axis] - centre
        outward = middle - np.dot(middle, L[axis]) / np.dot(L[axis], L[axis]) * L[axis]
        spot = middle + 0.9 * outward / max(np.linalg.norm(outward), 1e-9)
        ax.text(*spot, name, fontsize=max(7, size // 36), color="#444444", ha="center", va="center",
                fontstyle="italic")
    px_per_angstrom = 0.78 * size / (2 * scene.half)
    colors, sizes = [], []
    for atom in index:
        symbol, color, radius = _element(int(numbers[atom]))
        colors.append(UNDECIDED_COLOR if masked[atom] else color)
        sizes.append((2 * radius * px_per_angstrom * 72 / _DPI) ** 2)
    ax.scatter(xyz[:, 0], xyz[:, 1], xyz[:, 2], c=colors, s=sizes, depthshade=False, edgecolors="#222222",
               linewidths=0.5, alpha=1.0)
    lim = (-scene.half, scene.half)
    ax.set_xlim(*lim), ax.set_ylim(*lim), ax.set_zlim(*lim)
    ax.set_box_aspect((1, 1, 1), zoom=1.35)
    ax.set_axis_off()

    handles = [Line2D([], [], ls="", marker="o", markersize=max(4, size / 60), markerfacecolor=_element(z)[1],
                      markeredgecolor="#222222", markeredgewidth=0.5, label=_element(z)[0]) for z in scene.elements]
    if scene.undecided:
        handles.append(Line2D([], [], ls="", marker="o", markersize=max(4, size / 60), markerfacecolor=UNDECIDED_COLOR,
                              markeredgecolor="#222222", markeredgewidth=0.5, label="undecided"))
    fig.legend(handles=handles, loc="lower left", fontsize=max(6, size // 48), frameon=False, handletextpad=0.2,
               borderaxespad=0.3, labelspacing=0.25)
    fig.text(0.5, 0.975, f"t = {t}" + (" (crystal)" if t == 0 else f" of {scene.T}"), ha="center", va="top",
             fontsize=max(8, size // 30), fontweight="bold", color="#222222")
    if scene.subtitle:
        fig.text(0.5, 0.905, scene.subtitle, ha="center", va="top", fontsize=max(6, size // 48), color="#555555")
    fig.canvas.draw()
    image = Image.frombuffer("RGBA", fig.canvas.get_width_height(), fig.canvas.buffer_rgba(), "raw", "RGBA", 0, 1)
    return image.convert("RGB")


def _checked_bytes(data: bytes, what: str) -> bytes:
    if len(data) > MAX_BYTES:
        raise ValueError(f"the {what} would be {len(data) / 2**20:.1f} MiB, more than {MAX_BYTES / 2**20:.0f} MiB: "
                         "choose fewer frames or a smaller size")
    return data


# ------------------------------------------------------------------------------ the two outputs

def render_gif(trajectory: Trajectory, steps, crystal: int = 0, size: int = 480, frame_ms: int = 250,
               hold_ms: int = 1500, subtitle: str | None = None) -> bytes:
    """An animated GIF of one crystal, one frame per step in ``steps`` (recorded steps, e.g. from
    ``evenly_spaced_steps``), ``size`` x ``size`` pixels, looping; the last frame is held ``hold_ms``."""
    crystal = _check_crystal(trajectory, crystal)
    frames = _frames_of(trajectory, steps, MAX_FRAMES, "GIF frames")
    size = _check_size(size)
    scene = _Scene(trajectory, crystal, frames, subtitle)
    from PIL import Image

    images = [_draw(scene, k, size).convert("P", palette=Image.Palette.ADAPTIVE, colors=128) for k in frames]
    durations = [int(frame_ms)] * (len(images) - 1) + [int(max(hold_ms, frame_ms))]
    buffer = io.BytesIO()
    images[0].save(buffer, format="GIF", save_all=True, append_images=images[1:], duration=durations, loop=0,
                   disposal=1, optimize=False)
    return _checked_bytes(buffer.getvalue(), "GIF")


def render_strip(trajectory: Trajectory, steps, crystal: int = 0, size: int = 320, columns: int | None = None,
                 subtitle: str | None = None) -> bytes:
    """A PNG of the chosen steps side by side (``size`` pixels per panel; at most 8 per row unless
    ``columns`` says otherwise)."""
    crystal = _check_crystal(trajectory, crystal)
    frames = _frames_of(trajectory, steps, MAX_STRIP_PANELS, "strip panels")
    size = _check_size(size)
    columns = min(len(frames), int(columns) if columns else 8)
    if columns < 1:
        raise ValueError("columns must be at least 1")
    rows = -(-len(frames) // columns)
    from PIL import Image

    scene = _Scene(trajectory, crystal, frames, subtitle)
    strip = Image.new("RGB", (columns * size, rows * size), "white")
    for i, k in enumerate(frames):
        row, column = divmod(i, columns)
        strip.paste(_draw(scene, k, size), (column * size, row * size))
    buffer = io.BytesIO()
    strip.save(buffer, format="PNG", optimize=True)
    return _checked_bytes(buffer.getvalue(), "PNG strip")
