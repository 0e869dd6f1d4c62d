"""The Compare page: two sampling runs that differ in one thing, under one slider (the data and the
overlay figure are in ``comparison.py``).

The user picks what differs (sampler, guidance off vs on, seed, number of steps, or, for structure
prediction, starting from noise vs from a template noised to t0);
everything else (model, composition or number of atoms, the other settings) is shared.
Both runs go through ``explorer.models.sample_trajectory`` (``diffusion.generate``, cached).

Session state (all keys start with ``cmp.``):
    widget values   cmp.model, cmp.composition, cmp.num_atoms, cmp.diff, cmp.sampler, cmp.steps, cmp.seed,
                    cmp.prop, cmp.guidance, cmp.left.<what>, cmp.right.<what> (what = sampler, steps, seed),
                    cmp.right.start (the template's t0)
    cmp.results     earlier comparisons of this session (a failed run never removes one)
    cmp.shown       id of the comparison on screen
    cmp.t.<id>, cmp.playing   the player's step per comparison and its play state (``playback.py``)
    cmp.error       why the last press of Compare made nothing
"""
from __future__ import annotations

import math
import time

import streamlit as st

from diffusion.api import VALID_MIN_DISTANCE

from .comparison import (DIFFERENCES, EXTERNAL, SIDE_COLORS, SLIDER_PREFIX, Comparison, Side, overlay_figure, side_label,
                         split_settings)
from .compositions import composition_field
from .models import (ModelEntry, ModelInfo, available_models, default_model, find_template, get_model, model_entry,
                     sample_trajectory, try_model_info)
from .numbers import describe
from .page_state import start_page_state
from .playback import playback, reset
from .space_group_field import space_group_field
from .settings import (DEFAULT_TEMPLATE_STEP, LANGEVIN, MAX_LANGEVIN_STEPS_PER_LEVEL, MAX_SEED, SAMPLER_LABELS,
                       GenerateSettings)
from .trajectory_view import view_frames
from .viewer import ViewOptions, trajectory_html
from .widgets import numbers_table, result_picker, show_view, shown_item

SIDES = ("left", "right")
WIDGETS = ("cmp.model", "cmp.composition", "cmp.num_atoms", "cmp.diff", "cmp.sampler", "cmp.steps", "cmp.seed",
           "cmp.prop", "cmp.guidance", "cmp.right.start", "cmp.cdvae", "cmp.langevin_steps",
           "cmp.sg_text", *(f"cmp.{side}.{what}" for side in SIDES
                             for what in ("sampler", "steps", "seed", "from_template", "t0")))
MAX_COMPARISONS = 6
VIEW_HEIGHT = 380
ss = st.session_state


# ---------------------------------------------------------------- state and controls

def init_state(models: list[ModelEntry]) -> None:
    """Defaults on the first visit; widget values survive while their widget is hidden. A trajectory handed over
    by the Open page (``cmp.incoming``) becomes a comparison: that file's sample vs our model's run."""
    first = start_page_state("cmp", WIDGETS, models)
    incoming = ss.pop("cmp.incoming", None)
    if incoming is not None:
        _add_external(incoming)
    if not first:
        return
    entry = default_model(models)
    ss.update({"cmp.model": entry.name, "cmp.composition": "SrTiO3", "cmp.diff": "sampler", "cmp.sampler": "ddim",
               "cmp.seed": 0, "cmp.left.sampler": "ddpm", "cmp.right.sampler": "ddim", "cmp.left.seed": 0,
               "cmp.right.seed": 1, "cmp.guidance": 2.0})
    _on_model_change(models)


def _on_model_change(models: list[ModelEntry]) -> None:
    info, _ = try_model_info(model_entry(models, ss["cmp.model"]))
    if info is None:
        return
    T = info.num_steps
    ss["cmp.steps"] = min(int(ss.get("cmp.steps", 100)), T)
    ss["cmp.left.steps"] = min(int(ss.get("cmp.left.steps", 20)), T)
    ss["cmp.right.steps"] = min(int(ss.get("cmp.right.steps", 100)), T)
    ss["cmp.num_atoms"] = min(int(ss.get("cmp.num_atoms", info.typical_atoms)), info.max_atoms)
    if info.use_property:
        ss["cmp.prop"] = round(info.property_mean, 3)


def _sampler_box(container, key: str) -> None:
    container.selectbox("Sampler", list(SAMPLER_LABELS), key=key, format_func=SAMPLER_LABELS.get)


def _steps_box(container, key: str, info: ModelInfo) -> None:
    container.number_input(f"Steps (1 to T = {info.num_steps})", min_value=1, max_value=info.num_steps, step=10, key=key,
                           help="Network evaluations on an evenly strided grid from T to 0.")


def _seed_box(container, key: str) -> None:
    container.number_input("Seed", min_value=0, max_value=MAX_SEED, step=1, key=key)


def _free_side(column, side: str, info: ModelInfo) -> dict:
    """One side's own sampler, steps, seed and start (free mode); returns the GenerateSettings fields."""
    _sampler_box(column, f"cmp.{side}.sampler")
    _steps_box(column, f"cmp.{side}.steps", info)
    _seed_box(column, f"cmp.{side}.seed")
    template_step = None
    if info.task == "csp":
        column.checkbox("Start from a similar known crystal", key=f"cmp.{side}.from_template")
        if ss.get(f"cmp.{side}.from_template"):
            ss[f"cmp.{side}.t0"] = min(int(ss.get(f"cmp.{side}.t0", DEFAULT_TEMPLATE_STEP)), info.num_steps)
            template_step = int(column.slider("Noise it to step t0", 1, info.num_steps, key=f"cmp.{side}.t0"))
    return {"sampler": ss[f"cmp.{side}.sampler"], "steps": int(ss[f"cmp.{side}.steps"]),
            "seed": int(ss[f"cmp.{side}.seed"]), "template_step": template_step}


def controls(models: list[ModelEntry]) -> tuple[ModelEntry, ModelInfo | None, tuple | None, str | None]:
    """The widgets; returns (entry, info, (left settings, right settings) or None, first problem or None)."""
    names = [m.name for m in models]
    labels = {m.name: m.label for m in models}
    top = st.columns([1.2, 1, 1.4], gap="large")
    with top[0]:
        st.selectbox("Model (shared)", names, key="cmp.model", format_func=lambda n: labels.get(n, n),
                     on_change=_on_model_change, args=(models,))
    entry = model_entry(models, ss["cmp.model"])
    info, load_error = try_model_info(entry)
    if info is None:
        st.error(load_error)
        return entry, None, None, load_error
    problems: list[str] = []
    numbers = None
    with top[1]:
        if info.task == "csp":
            numbers, problem = composition_field(info, "cmp.composition", "Composition (shared)",
                                                 "The atoms of the cell, e.g. SrTiO3 or Ti2O4. Both runs place the "
                                                 "same atoms.")
            problems += [problem] if problem else []
        else:
            st.number_input("Number of atoms (shared)", min_value=1, max_value=info.max_atoms, step=1, key="cmp.num_atoms")
        space_group = None
        if info.use_space_group:
            space_group, problem = space_group_field(entry, "cmp", "cmp.sg_text", "cmp.composition",
                                                     numbers if info.task == "csp" and not problems else None,
                                                     "e.g. 221 (shared)")
            problems += [problem] if problem else []
    cdvae_models = available_models("cdvae")
    options = [k for k in DIFFERENCES if (k != "guidance" or info.use_property) and (k != "start" or info.task == "csp")
               and (k != "family" or cdvae_models)]
    if ss.get("cmp.diff") not in options:
        ss["cmp.diff"] = "sampler"
    with top[2]:
        st.radio("What differs between left and right", options, key="cmp.diff", format_func=DIFFERENCES.get,
                 horizontal=True, help="Everything else is the same for both runs." +
                 ("" if info.use_property else " Guidance needs a model trained with a property condition."))
    difference = ss["cmp.diff"]
    shared, left_col, right_col = st.columns([1, 1.2, 1.2], gap="large")
    shared.markdown("**Shared**")
    left_col.markdown(f"**Left** <span style='color:{SIDE_COLORS[0]}'>●</span>", unsafe_allow_html=True)
    right_col.markdown(f"**Right** <span style='color:{SIDE_COLORS[1]}'>●</span>", unsafe_allow_html=True)
    if difference not in ("sampler", "free"):
        _sampler_box(shared, "cmp.sampler")
    if difference not in ("steps", "free"):
        _steps_box(shared, "cmp.steps", info)
    if difference not in ("seed", "free"):
        _seed_box(shared, "cmp.seed")
    if space_group is not None and difference != "guidance":
        shared.slider("Guidance scale w (toward the space group)", 0.0, 5.0, step=0.25, key="cmp.guidance")
    prop, guidance = None, 0.0
    if difference == "guidance":
        label = info.property_name or "property"
        left_col.caption("No condition: plain sampling, the model's unconditional prediction.")
        with right_col:
            st.number_input(f"Target {label}", key="cmp.prop", format="%.3f",
                            help=f"Training data: mean {info.property_mean:.3f}, std {info.property_std:.3f}.")
            st.slider("Guidance scale w", 0.0, 5.0, step=0.25, key="cmp.guidance",
                      help="eps = (1 + w) eps(x, t, condition) - w eps(x, t, none).")
        prop, guidance = float(ss["cmp.prop"]), float(ss["cmp.guidance"])
        if not math.isfinite(prop):
            problems.append("target property: not a number")
    elif difference == "start":
        left_col.caption("From noise at t = T, as on Generate.")
        with right_col:
            ss["cmp.right.start"] = min(int(ss.get("cmp.right.start", DEFAULT_TEMPLATE_STEP)), info.num_steps)
            st.slider("Noise the known crystal to step t0", 1, info.num_steps, key="cmp.right.start")
            if not problems:
                template, message = find_template(entry, numbers, space_group)
                if template is None:
                    st.warning(message, icon=":material/warning:")
                    problems.append("start: no template for this composition")
                else:
                    st.caption(f"Template: {template.describe()}.")
    elif difference == "family":
        family_right = _cdvae_side(left_col, right_col, cdvae_models, info)
    elif difference == "free":
        free = {side: _free_side(column, side, info) for side, column in zip(SIDES, (left_col, right_col))}
        if info.task == "csp" and any(v["template_step"] is not None for v in free.values()) and not problems:
            template, message = find_template(entry, numbers, space_group)
            if template is None:
                problems.append("start: no template for this composition")
                st.warning(message, icon=":material/warning:")
            else:
                st.caption(f"Template: {template.describe()}.")
    else:
        for side, column in zip(SIDES, (left_col, right_col)):
            {"sampler": _sampler_box, "seed": _seed_box}.get(difference, lambda c, k: _steps_box(c, k, info))(
                column, f"cmp.{side}.{difference}")
    if space_group is not None and difference != "guidance":
        guidance = float(ss["cmp.guidance"])
    base = GenerateSettings(model=entry.name, composition=str(ss.get("cmp.composition", "")).strip(),
                            num_atoms=int(ss.get("cmp.num_atoms", info.typical_atoms)), prop=prop, guidance=guidance,
                            space_group=space_group, sampler=ss["cmp.sampler"], steps=int(ss["cmp.steps"]),
                            seed=int(ss["cmp.seed"]))
    if difference == "free":
        pair = split_settings(base, "free", free["left"], free["right"])
    elif difference == "family":
        pair = (base, base.replace(**family_right))
    else:
        pair = split_settings(base, difference, ss.get(f"cmp.left.{difference}"), ss.get(f"cmp.right.{difference}"))
    if pair[0] == pair[1]:
        problems.append(f"{DIFFERENCES[difference].lower()}: left and right are the same")
    return entry, info, pair, (problems[0] if problems else None)


def _cdvae_side(left_col, right_col, cdvae_models: list[ModelEntry], info: ModelInfo) -> dict:
    """Left: this diffusion model with the shared settings; right: a CDVAE decoding the same composition (or the
    same number of atoms) by annealed Langevin dynamics with the shared seed. Returns the right's settings fields."""
    left_col.caption("The diffusion model above, with the shared sampler, steps and seed.")
    with right_col:
        names = [m.name for m in cdvae_models]
        if ss.get("cmp.cdvae") not in names:
            ss["cmp.cdvae"] = names[0]
        st.selectbox("CDVAE model", names, key="cmp.cdvae")
        process = model_entry(cdvae_models, ss["cmp.cdvae"]).card.get("process") or {}
        ss.setdefault("cmp.langevin_steps", int(process.get("steps_per_level", 10)))
        st.number_input("Langevin steps per noise level", min_value=1, max_value=MAX_LANGEVIN_STEPS_PER_LEVEL, step=1,
                        key="cmp.langevin_steps")
        st.caption("Its latent z is drawn with the shared seed; "
                   + ("the composition is given (its atoms' types stay fixed)." if info.task == "csp" else
                      "the number of atoms is given, z chooses the elements.")
                   + " Its Langevin steps are spread over the diffusion run's 0..T (normalized progress).")
    return {"model": ss["cmp.cdvae"], "sampler": LANGEVIN, "steps": int(ss["cmp.langevin_steps"]), "step_size": None,
            "space_group": None, "prop": None, "guidance": 0.0, "given_composition": info.task == "csp"}


# ---------------------------------------------------------------- running

def run(entry: ModelEntry, info: ModelInfo, pair: tuple[GenerateSettings, GenerateSettings], difference: str) -> None:
    """Sample both sides (each cached) and keep the comparison; an error is kept for display, nothing is removed."""
    sides = []
    try:
        for name, settings in zip(("Left", "Right"), pair):
            st.caption(f"{name}: {side_label(settings, difference, info.property_name)}")
            started = time.perf_counter()
            if settings.sampler == LANGEVIN:   # the family comparison's CDVAE side, on the diffusion run's axis
                cdvae_entry = model_entry(available_models("cdvae"), settings.model)
                if cdvae_entry is None:
                    raise ValueError(f"the CDVAE model {settings.model} is gone")
                trajectory = sample_trajectory(cdvae_entry.path, cdvae_entry.version, settings).spread_over(
                    info.num_steps)
            else:
                trajectory = sample_trajectory(entry.path, entry.version, settings)
            sides.append(Side(side_label(settings, difference, info.property_name), settings, trajectory,
                              time.perf_counter() - started))
        model = get_model(entry)
    except Exception as exc:  # a failed run must never break the page or wipe earlier comparisons
        ss["cmp.error"] = f"Comparison failed: {exc}"
        return
    comparison = Comparison(id=ss["cmp.next_id"], difference=difference, task=model.process.task, left=sides[0],
                            right=sides[1], abar=model.abar.detach().cpu().double().numpy(),
                            sigma=model.sigma.detach().cpu().double().numpy())
    ss["cmp.next_id"] += 1
    ss["cmp.results"] = (ss["cmp.results"] + [comparison])[-MAX_COMPARISONS:]
    ss["cmp.shown"] = comparison.id
    reset("cmp", comparison.id)
    ss.pop("cmp.error", None)


def _add_external(incoming: dict) -> None:
    """Keep "another model's trajectory vs ours" as a comparison (left: the file's frames spread over 0..T)."""
    ss.setdefault("cmp.results", [])
    ss.setdefault("cmp.next_id", 1)
    ours = incoming["settings"]
    theirs = Side(incoming["label"], ours.replace(template_step=None, symmetry=False), incoming["theirs"], 0.0)
    mine = Side(f"our {ours.model}: {ours.sampler.upper()}, {ours.steps} steps", ours, incoming["ours"],
                incoming["seconds"])
    comparison = Comparison(id=ss["cmp.next_id"], difference=EXTERNAL, task=incoming["task"], left=theirs,
                            right=mine, abar=incoming["abar"], sigma=incoming["sigma"])
    ss["cmp.next_id"] += 1
    ss["cmp.results"] = (ss["cmp.results"] + [comparison])[-MAX_COMPARISONS:]
    ss["cmp.shown"] = comparison.id
    reset("cmp", comparison.id)


def compare_button(entry: ModelEntry, info: ModelInfo | None, pair, problem: str | None) -> None:
    if st.button("Compare", type="primary", icon=":material/compare:", key="cmp.go"):
        if info is None or pair is None or problem:
            ss["cmp.error"] = f"Nothing compared: fix the {problem or 'settings'} first."
        else:
            progress = st.empty()
            with progress.container():
                run(entry, info, pair, ss["cmp.diff"])
            progress.empty()
    if ss.get("cmp.error"):
        st.error(ss["cmp.error"], icon=":material/error:")


# ---------------------------------------------------------------- showing a comparison

def _shown() -> Comparison | None:
    return shown_item("cmp.results", "cmp.shown")


def _view(comparison: Comparison, index: int) -> str:
    """One side's 3D view: all its frames; it follows the shared slider (nearest recorded step)."""
    cache = ss.setdefault("cmp.view_cache", {})
    key = (comparison.id, index)
    if key not in cache:
        side = comparison.sides[index]
        options = ViewOptions(height=VIEW_HEIGHT, group="compare", boundary=0.05)
        cache[key] = trajectory_html(view_frames(side.trajectory, comparison.task), side.steps, None, options,
                                     follow="t", slider_label=SLIDER_PREFIX)
        while len(cache) > 8:
            cache.pop(next(iter(cache)))
    return cache[key]


def _numbers(comparison: Comparison, index: int, k: int):
    cache = ss.setdefault("cmp.numbers_cache", {})
    key = (comparison.id, index, k)
    if key not in cache:
        trajectory = comparison.sides[index].trajectory
        cache[key] = describe(trajectory.structure(frame=k), shortest=float(trajectory.min_distance[k, 0]))
        if len(cache) > 4000:
            cache.clear()
    return cache[key]


def _final_line(comparison: Comparison, index: int) -> str:
    side = comparison.sides[index]
    last = side.trajectory.num_frames - 1
    structure = side.trajectory.structure(frame=last)
    numbers = _numbers(comparison, index, last)
    sg = f", {numbers.space_group[0]}" if numbers.space_group else ""
    seconds = "from the cache" if side.seconds < 0.1 else f"{side.seconds:.1f} s"
    return (f"**Final:** {structure.composition.reduced_formula}{sg}, "
            f"{'valid' if numbers.valid else 'NOT valid'}; {side.trajectory.num_frames} frames, {seconds}")


def _show_step(comparison: Comparison, t: int) -> None:
    """Side by side the two 3D views (each at its frame nearest t) and their numbers; below, both runs'
    diagnostics overlaid in one figure."""
    if comparison.difference == "family":
        st.caption(f"Left: the diffusion model at t = {t} (the lattice keeps √ᾱ_t = {comparison.abar[t] ** 0.5:.3f} of "
                   "its signal). Right: the CDVAE's annealed Langevin steps spread evenly over the same 0..T "
                   "(normalized progress: its cell is fixed by z from the start, only the atoms move).")
    elif comparison.difference == EXTERNAL:
        st.caption("Left: the opened file's frames, spread evenly over our model's steps (frame k of K at "
                   "t ≈ T·(K−1−k)/(K−1): the file carries no step of ours, so only first, last and the order are "
                   f"exact). Right: our model's run; at t = {t} it keeps √ᾱ_t = {comparison.abar[t] ** 0.5:.3f} "
                   "of the lattice's signal.")
    else:
        st.caption(f"At t = {t} the lattice keeps √ᾱ_t = {comparison.abar[t] ** 0.5:.3f} of its signal and the "
                   f"coordinates carry wrapped noise of width σ_t = {comparison.sigma[t]:.3f} (the same model, so "
                   "the same for both). A run with fewer steps shows its recorded step nearest t.")
    columns = st.columns(2, gap="medium")
    for index, (side, column, color) in enumerate(zip(comparison.sides, columns, SIDE_COLORS)):
        with column:
            st.markdown(f"#### <span style='color:{color}'>●</span> {'Left' if index == 0 else 'Right'}: "
                        f"{side.label}", unsafe_allow_html=True)
            st.markdown(_final_line(comparison, index))
            show_view(_view(comparison, index), VIEW_HEIGHT)
            k = side.trajectory.frame_of_step(t)
            numbers_table(_numbers(comparison, index, k),
                          [("step shown", f"{side.steps[k]} (frame {k + 1} of {side.trajectory.num_frames})")])
    st.plotly_chart(overlay_figure(comparison, t), width="stretch", key="cmp.diagnostics",
                    config={"displayModeBar": False})
    st.caption("Solid lines: each run's diagnostics against t, blue = left, red = right; the dots mark the "
               "frame each side shows, the dotted line the slider's t. The shortest distance must end above "
               f"{VALID_MIN_DISTANCE} Å (dashed) for a physically valid crystal.")


def player(comparison: Comparison) -> None:
    """One player over t for both runs (Play, step buttons, slider), then ``_show_step``."""
    playback("cmp", comparison.id, comparison.steps, comparison.slider_label, lambda t: _show_step(comparison, t))


def results_section() -> None:
    comparison = _shown()
    if comparison is None:
        st.info("Choose what differs, then press **Compare**. Both runs are sampled, and one slider moves both "
                "from t = T (noise) to t = 0 (the crystals).", icon=":material/info:")
        return
    result_picker("cmp.results", "cmp.shown", "Comparison shown (earlier ones stay here for this session)", "Clear",
                  lambda c: c.label)
    player(_shown())
