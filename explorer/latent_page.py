"""The Latent space page (CDVAE models): the validation crystals' latents on a 2D map (PCA), a walk between two
crystals decoded point by point under a slider, and CDVAE's property optimisation (gradient steps on z) drawn
as a path on the map with crystals decoded along it. What it computes (cached, shared by sessions) is in
``latent_runs.py``, its figures in ``latent_figures.py``; the core is ``diffusion.cdvae`` (``api.cdvae_latent``).

Session state (keys start with ``lat.``):
    widgets       lat.model, lat.langevin, lat.seed, lat.colour, lat.element, lat.a, lat.b, lat.points,
                  lat.point (the walk's slider), lat.start, lat.direction, lat.steps, lat.lr
    lat.seen      the model the widgets were set up for (a new model resets the Langevin steps and the picks)
    lat.walk      the decoded walk on screen (``Walk``); lat.walk_error why the last decode failed
    lat.opt       the property path on screen (``Optimised``); lat.opt_error why the last run failed
A failed run never removes the result on screen.
"""
from __future__ import annotations

from collections import Counter

import numpy as np
import pandas as pd
import streamlit as st

from .latent_figures import Colouring, map_figure, property_figure
from . import latent_runs as runs
from .latent_runs import DECODED_ALONG, LatentMap, Optimised, Walk, property_name
from .models import ModelEntry, available_models, get_model, models_folder
from .numbers import describe
from .viewer import ViewFrame, ViewOptions, grid_html, trajectory_html
from .widgets import numbers_table, show_view, table_size

MAX_LANGEVIN_PER_LEVEL = 50
VIEW_HEIGHT = 430
GALLERY_HEIGHT = 250
SLIDER_LABEL = "Point on the walk"   # the 3D view finds its slider by this start of the label
TRAIN_COMMAND = ("crystal-diffusion train --family cdvae --data data/perov_5/val.csv.gz "
                 "--out checkpoints/perov_5_cdvae.pt --property heat_ref")
ELEMENT = "element"
ss = st.session_state


# ---------------------------------------------------------------- the model and the shared settings

def page() -> None:
    """The whole page under its title: the model and decoding settings, the map, the walk, the optimisation."""
    model_col, steps_col, seed_col = st.columns([3, 1.6, 1], vertical_alignment="bottom")
    with model_col:
        entry = pick_model()
    show(entry, (steps_col, seed_col))


def pick_model() -> ModelEntry:
    """The CDVAE model picker; with no CDVAE checkpoint, how to train one, and the page stops."""
    models = available_models(family="cdvae")
    if not models:
        st.info(f"No CDVAE model in `{models_folder()}` yet, so there is no latent space to show. Train one "
                f"(it writes the .pt and its card next to it):\n\n```\n{TRAIN_COMMAND}\n```",
                icon=":material/info:")
        st.stop()
    names = [m.name for m in models]
    if ss.get("lat.model") not in names:
        ss["lat.model"] = names[0]
    st.selectbox("CDVAE model", names, key="lat.model",
                 help="The checkpoints of the CDVAE family in the models folder.")
    return next(m for m in models if m.name == ss["lat.model"])


def _setup(entry: ModelEntry, model, latent_map: LatentMap) -> None:
    """Defaults, and for a newly picked model its own Langevin steps and picks inside its map."""
    if ss.get("lat.seen") != entry.path:
        ss["lat.seen"] = entry.path
        ss["lat.langevin"] = min(MAX_LANGEVIN_PER_LEVEL, int(model.process.steps_per_level))
    count = len(latent_map.crystals)
    for key, default in (("lat.a", 0), ("lat.b", 1), ("lat.start", int(ss.get("lat.a", 0)))):
        if ss.get(key) not in range(count):
            ss[key] = default
    for key, default in (("lat.seed", 0), ("lat.points", 7), ("lat.steps", 100), ("lat.lr", 0.05),
                         ("lat.direction", "lower")):
        ss.setdefault(key, default)


def show(entry: ModelEntry, settings_columns) -> None:
    """Everything below the model picker: the map (drawn last, with the walk and the path on it), the walk
    and the property optimisation."""
    try:
        model = get_model(entry)
        latent_map = runs.latent_map(entry.path, entry.version, entry)
    except Exception as exc:
        st.error(f"{entry.name} cannot be mapped: {exc}", icon=":material/error:")
        st.stop()
    _setup(entry, model, latent_map)
    steps_col, seed_col = settings_columns
    steps_col.number_input(f"Langevin steps per level (1 to {MAX_LANGEVIN_PER_LEVEL})", 1, MAX_LANGEVIN_PER_LEVEL,
                           key="lat.langevin",
                           help=f"Decoding runs this many Langevin steps at each of the model's {model.num_levels} "
                                f"noise levels; the model's own setting is {model.process.steps_per_level}. Fewer "
                                "is faster and rougher.")
    seed_col.number_input("Seed", 0, 9_999, key="lat.seed", help="The random stream of the Langevin decoding.")
    map_slot = st.container()
    st.divider()
    walk = walk_section(entry, latent_map)
    st.divider()
    optimised = optimise_section(entry, model, latent_map)
    with map_slot:
        map_section(entry, model, latent_map, walk, optimised)


# ---------------------------------------------------------------- the map

def _colouring(latent_map: LatentMap, name: str | None, values: np.ndarray | None) -> Colouring:
    options = ([name] if values is not None and np.isfinite(values).any() else []) + [ELEMENT]
    if ss.get("lat.colour") not in options:
        ss["lat.colour"] = options[0]
    st.radio("Colour the points by", options, key="lat.colour",
             format_func=lambda o: "an element they contain" if o == ELEMENT else f"{o} (the model's property)")
    if ss["lat.colour"] != ELEMENT:
        return Colouring(name, values=values)
    counts = Counter(symbol for symbols in latent_map.symbols for symbol in symbols)
    elements = [symbol for symbol, _ in counts.most_common()]
    if ss.get("lat.element") not in elements:   # the element closest to splitting the map in two halves
        ss["lat.element"] = min(elements, key=lambda s: abs(counts[s] - len(latent_map.symbols) / 2))
    st.selectbox("Element", elements, key="lat.element", format_func=lambda s: f"{s} ({counts[s]})",
                 help="In brackets: how many crystals on the map contain it.")
    element = ss["lat.element"]
    return Colouring(element, mask=np.array([element in symbols for symbols in latent_map.symbols]))


def map_section(entry: ModelEntry, model, latent_map: LatentMap, walk: Walk | None, optimised) -> None:
    name = property_name(entry, model) or (entry.card.get("train_config") or {}).get("property_name")
    values = None if not name else np.array([float(c.properties.get(name, np.nan)) for c in latent_map.crystals])
    st.subheader("The map")
    map_col, side_col = st.columns([4, 1], gap="medium")
    with side_col:
        colouring = _colouring(latent_map, name, values)
        st.caption("Hover over a point for its formula, id and property.")
    explained = tuple(float(v) for v in latent_map.projection.explained)
    figure = map_figure(latent_map.points, latent_map.formulas, latent_map.ids, explained, colouring,
                        prop=None if values is None else (name, values),
                        walk=None if walk is None else walk.points, current=ss.get("lat.point"),
                        path=None if optimised is None else optimised.points,
                        picks=None if optimised is None else optimised.picks)
    with map_col:
        st.plotly_chart(figure, width="stretch", key="lat.map", config={"displayModeBar": False})
        dim = int(latent_map.latents.shape[1])
        share = f"{100 * sum(explained):.0f}\u00a0%"
        st.caption(f"The map is a 2D projection (PCA) of the {dim}-dimensional latents of {len(latent_map.crystals)} "
                   f"validation crystals: the two axes keep {share} of their variance, so points close on the map can "
                   "still be far apart in z.")


# ---------------------------------------------------------------- the walk from A to B

def _run_walk(entry: ModelEntry, latent_map: LatentMap) -> None:
    a, b, num = int(ss["lat.a"]), int(ss["lat.b"]), int(ss["lat.points"])
    seed, langevin = int(ss["lat.seed"]), int(ss["lat.langevin"])
    try:
        if a == b:
            raise ValueError("A and B are the same crystal: pick two different ones")
        if not 5 <= num <= 11:
            raise ValueError(f"the number of points must be between 5 and 11, got {num}")
        with st.spinner(f"Decoding {num} latents by annealed Langevin dynamics..."):
            walk = runs.walk(entry.path, entry.version, a, b, num, seed, langevin, entry)
    except Exception as exc:
        ss["lat.walk_error"] = f"The walk was not decoded: {exc}"
        return
    ss["lat.walk"] = walk
    ss["lat.point"] = 0
    ss.pop("lat.walk_error", None)


def walk_section(entry: ModelEntry, latent_map: LatentMap) -> Walk | None:
    st.subheader("Walk from one crystal to another")
    st.markdown("Pick two crystals A and B: the page takes evenly spaced latents on the straight line from A's to "
                "B's, decodes them all in one batch and lets you slide along the line. Near A the decoded crystal "
                "is A, near B it is B; what lies between shows what the model has put there.")
    options = list(range(len(latent_map.crystals)))
    a_col, b_col, n_col, go_col = st.columns([2, 2, 1, 1.2], vertical_alignment="bottom")
    a_col.selectbox("Crystal A", options, key="lat.a", format_func=latent_map.label)
    b_col.selectbox("Crystal B", options, key="lat.b", format_func=latent_map.label)
    n_col.number_input("Points (5 to 11)", 5, 11, key="lat.points")
    if go_col.button("Decode the path", key="lat.decode", type="primary", icon=":material/route:", width="stretch"):
        _run_walk(entry, latent_map)
    if ss.get("lat.walk_error"):
        st.error(ss["lat.walk_error"], icon=":material/error:")
    walk = ss.get("lat.walk")
    if walk is None or walk.key[:2] != (entry.path, entry.version):
        st.caption("Press *Decode the path*: the decoded crystals appear here and the walk on the map above.")
        return None
    _walk_player(walk, latent_map)
    return walk


def _walk_view(walk: Walk) -> str:
    cache = ss.setdefault("lat.view_cache", {})
    if walk.key not in cache:
        frames = [ViewFrame.from_structure(s) for s in walk.structures]
        cache[walk.key] = trajectory_html(frames, list(range(len(frames))), None,
                                          ViewOptions(height=VIEW_HEIGHT, group="latent", boundary=0.05),
                                          follow="point", slider_label=SLIDER_LABEL, initial=0)
        while len(cache) > 4:
            cache.pop(next(iter(cache)))
    return cache[walk.key]


def _walk_player(walk: Walk, latent_map: LatentMap) -> None:
    num = len(walk.structures)
    a, b = walk.key[2], walk.key[3]
    if ss.get("lat.point") not in range(num):
        ss["lat.point"] = 0
    point = st.slider(f"{SLIDER_LABEL} (0 = A, {num - 1} = B)", 0, num - 1, key="lat.point")
    if st.query_params.get("point") != str(point):
        st.query_params["point"] = str(point)   # the 3D view follows the slider, else the URL
    view_col, numbers_col = st.columns([3, 2], gap="medium")
    with view_col:
        show_view(_walk_view(walk), VIEW_HEIGHT)
        st.caption(f"A = {latent_map.label(a)}, B = {latent_map.label(b)}. Drag to rotate, scroll to zoom; the "
                   f"view follows the slider. {num} crystals decoded in {walk.seconds:.1f} s "
                   f"({walk.key[6]} Langevin steps per level, seed {walk.key[5]}).")
    with numbers_col:
        structure = walk.structures[point]
        st.markdown(f"**Point {point}: {structure.composition.reduced_formula}**, {len(structure)} atoms, "
                    + (f"decodes to {walk.matches[point]}" if walk.matches[point] else "matches neither A nor B"))
        numbers_table(describe(structure), [("point", f"{point} of {num - 1}"),
                                            ("formula", structure.composition.formula)])
    st.caption("Along the walk: " + " → ".join(
        f"{k} {s.composition.reduced_formula}" + (f" ({m})" if m else "")
        for k, (s, m) in enumerate(zip(walk.structures, walk.matches))))


# ---------------------------------------------------------------- property optimisation

def _run_optimise(entry: ModelEntry) -> None:
    start, higher = int(ss["lat.start"]), ss["lat.direction"] == "higher"
    steps, lr = int(ss["lat.steps"]), float(ss["lat.lr"])
    try:
        with st.spinner(f"{steps} gradient steps on z, then decoding {DECODED_ALONG} latents along the path..."):
            optimised = runs.optimise(entry.path, entry.version, start, higher, steps, lr, int(ss["lat.seed"]),
                                  int(ss["lat.langevin"]), entry)
    except Exception as exc:
        ss["lat.opt_error"] = f"The optimisation did not run: {exc}"
        return
    ss["lat.opt"] = optimised
    ss.pop("lat.opt_error", None)


def optimise_section(entry: ModelEntry, model, latent_map: LatentMap) -> Optimised | None:
    name = property_name(entry, model)
    st.subheader("Optimise the property")
    if name is None:
        st.info("This model has no property head, so there is nothing to optimise: train it with "
                "`--property heat_ref` (or another property of its data).", icon=":material/info:")
        return None
    st.markdown(f"CDVAE's property optimisation: start at a crystal's latent and follow the gradient of the "
                f"property head's prediction of **{name}** (Adam steps on z, the decoder untouched), then decode "
                f"{DECODED_ALONG} latents along the way. The head predicts from z alone, so the numbers are the "
                "model's guess for the decoded crystals, not a calculation.")
    options = list(range(len(latent_map.crystals)))
    start_col, dir_col, steps_col, lr_col, go_col = st.columns([2, 1.4, 1.1, 1, 1], vertical_alignment="bottom")
    start_col.selectbox("Start from", options, key="lat.start", format_func=latent_map.label)
    dir_col.radio(f"Make {name}", ["lower", "higher"], key="lat.direction", horizontal=True)
    steps_col.number_input("Steps (10 to 500)", 10, 500, key="lat.steps", help="Gradient steps on z.")
    lr_col.number_input("Step size", min_value=0.001, max_value=1.0, step=0.01, format="%.3f", key="lat.lr",
                        help="Adam's learning rate on z.")
    if go_col.button("Optimise", key="lat.optimise", type="primary", icon=":material/trending_down:", width="stretch"):
        _run_optimise(entry)
    if ss.get("lat.opt_error"):
        st.error(ss["lat.opt_error"], icon=":material/error:")
    optimised = ss.get("lat.opt")
    if optimised is None or optimised.key[:2] != (entry.path, entry.version):
        st.caption("Press *Optimise*: the path appears on the map above, with the crystals decoded along it.")
        return None
    _optimised_result(optimised, name, latent_map)
    return optimised


def _optimised_result(optimised: Optimised, name: str, latent_map: LatentMap) -> None:
    plot_col, table_col = st.columns([3, 2], gap="medium")
    predicted = optimised.predicted
    with plot_col:
        st.plotly_chart(property_figure(predicted, optimised.picks, name), width="stretch", key="lat.property",
                        config={"displayModeBar": False})
    with table_col:
        rows = [(k, s.composition.reduced_formula, len(s), f"{predicted[k]:.3f}")
                for k, s in zip(optimised.picks, optimised.structures)]
        st.dataframe(pd.DataFrame(rows, columns=["step", "decoded", "atoms", f"predicted {name}"]), hide_index=True,
                     width="stretch", **table_size(len(rows)))
        way = "up" if optimised.higher else "down"
        st.caption(f"From {latent_map.label(optimised.key[2])}: predicted {name} {predicted[0]:.3f} → "
                   f"{predicted[-1]:.3f} ({way}) in {len(predicted) - 1} steps ({optimised.seconds:.1f} s with the "
                   f"decoding). The path ends {optimised.distance:.1f} from its start in z, where the validation "
                   f"crystals lie a median {latent_map.spread:.1f} from their centre: far out, the head and the "
                   "decoder extrapolate.")
    frames = [ViewFrame.from_structure(s).origin_on_first_atom() for s in optimised.structures]
    titles = [f"step {k}: {predicted[k]:.2f}" for k in optimised.picks]
    show_view(grid_html(frames, titles, columns=len(frames), cell_height=GALLERY_HEIGHT), GALLERY_HEIGHT)
    st.caption(f"The crystals decoded along the path, left to right, each titled with its step and the predicted "
               f"{name}.")
