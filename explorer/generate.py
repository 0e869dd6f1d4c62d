"""The Generate page: conditions -> one sampling run -> a player from x_T (noise) to x_0 (a crystal).

Session state (all keys start with ``gen.``):
    widget values       gen.model, gen.composition, gen.num_atoms, gen.sg_text, gen.use_prop, gen.prop,
                        gen.guidance, gen.sampler, gen.steps, gen.seed, gen.start, gen.template_step,
                        gen.precision
    gen.results         earlier results of this session (a failed run never removes one)
    gen.shown           id of the result on screen
    gen.t.<id>          the step t shown for result <id> (the slider)
    gen.playing         whether the player advances by itself
    gen.pending         a run was asked for by a link or a one-click example
    gen.gif_frames, gen.strip_frames   how many steps the slide exports (GIF, PNG strip) draw
The result on screen and its step are mirrored in the URL (``st.query_params``), so a
copied link reopens the same trajectory at the same step.
"""
from __future__ import annotations

import hashlib
import math
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import pandas as pd
import streamlit as st

from diffusion import FormulaError, parse_formula
from diffusion.api import MAX_ATOMS
from diffusion.render import MAX_FRAMES, MAX_STRIP_PANELS, evenly_spaced_steps, render_gif, render_strip

from .equation_view import show_panels
from .equations import DEFAULT_STEP_LR, reverse_panels
from .examples import GENERATE_EXAMPLES, GenerateExample
from .figures import diagnostics_figure
from .formula_units_field import formula_units_button
from .models import (ModelEntry, ModelInfo, default_model, find_template, get_model, model_entry, precision_help,
                     sample_trajectory, try_model_info)
from .numbers import describe
from .space_group_field import space_group_field
from .settings import (DEFAULT_PRECISION, DEFAULT_STEPS, MAX_SEED, PRECISION_LABELS, SAMPLER_LABELS, SAMPLER_NAMES,
                       GenerateSettings, from_query)
from .viewer import ViewFrame, ViewOptions, trajectory_html
from .widgets import numbers_table, result_picker, show_view, shown_item

MAX_RESULTS = 12
PLAY_TICK_SECONDS = 0.35
PLAY_TICKS = 30            # a whole trajectory plays in about this many frames
VIEW_HEIGHT = 470
SLIDER_PREFIX = "Step t of the reverse process"   # the 3D view finds its slider by this start of the label
WIDGETS = ("gen.model", "gen.composition", "gen.num_atoms", "gen.sg_text", "gen.use_prop", "gen.prop",
           "gen.guidance", "gen.sampler", "gen.steps", "gen.seed", "gen.start", "gen.template_step", "gen.precision")
DEFAULT_TEMPLATE_STEP = 300   # of T = 1000: keeps the template's structure type, visibly noised
ss = st.session_state


@dataclass(frozen=True)
class Result:
    """One finished sampling run kept in the session."""

    id: int
    settings: GenerateSettings
    task: str
    trajectory: object          # diffusion.Trajectory
    abar: np.ndarray            # (T+1,) of the model's lattice schedule, for the captions
    sigma: np.ndarray           # (T+1,) coordinate noise levels
    seconds: float
    schedule: object = None     # the model's diffusion.NoiseSchedule, for the equations
    step_lr: float = DEFAULT_STEP_LR  # the model's pc corrector step size (the sampler used it)

    @property
    def steps(self) -> list[int]:
        return [int(t) for t in self.trajectory.timesteps.tolist()]

    @property
    def label(self) -> str:
        return f"#{self.id}: {self.settings.summary(self.task)}"


# ---------------------------------------------------------------- state

def _steps_of(entry: ModelEntry) -> int:
    return int((entry.card.get("process") or {}).get("num_steps") or 1000)


def _settings_to_widgets(settings: GenerateSettings, info: ModelInfo | None) -> None:
    ss["gen.model"] = settings.model
    ss["gen.composition"] = settings.composition
    ss["gen.num_atoms"] = int(settings.num_atoms if info is None else min(settings.num_atoms, info.max_atoms))
    ss["gen.sg_text"] = "" if settings.space_group is None else str(settings.space_group)
    ss["gen.use_prop"] = settings.prop is not None
    if settings.prop is not None:
        ss["gen.prop"] = float(settings.prop)
    elif info is not None and info.use_property:
        ss["gen.prop"] = round(info.property_mean, 3)
    ss["gen.guidance"] = float(settings.guidance)
    ss["gen.sampler"] = settings.sampler
    ss["gen.steps"] = int(settings.steps)
    ss["gen.seed"] = int(settings.seed)
    ss["gen.precision"] = settings.precision
    ss["gen.start"] = "noise" if settings.template_step is None else "template"
    if settings.template_step is not None:
        ss["gen.template_step"] = int(settings.template_step)


def init_state(models: list[ModelEntry]) -> None:
    """First run of the page in this session: defaults, overridden by the URL's settings."""
    for key in WIDGETS:  # keep widget values while their widget is hidden (e.g. another task)
        if key in ss:
            ss[key] = ss[key]
    ss.setdefault("gen.results", [])
    ss.setdefault("gen.next_id", 1)
    ss.setdefault("gen.playing", False)
    if ss.get("gen.model") not in {m.name for m in models}:
        ss.pop("gen.initialized", None)
    if ss.get("gen.initialized"):
        return
    ss["gen.initialized"] = True
    entry = default_model(models)
    default = GenerateSettings(model=entry.name)
    params = {k: st.query_params[k] for k in st.query_params}
    settings, step, errors = from_query(params, {m.name: _steps_of(m) for m in models}, default)
    info, _ = try_model_info(model_entry(models, settings.model))
    if info is not None and info.task == "gen":
        if "atoms" not in params:
            settings = settings.replace(num_atoms=info.typical_atoms)
        elif settings.num_atoms > info.max_atoms:
            errors.append(f"'atoms={params['atoms']}' is more than {settings.model} makes (at most {info.max_atoms})")
            settings = settings.replace(num_atoms=info.max_atoms)
    _settings_to_widgets(settings, info)
    ss["gen.link_errors"] = errors
    if "model" in params and not errors:
        ss["gen.pending"] = True   # a shared link: reproduce its trajectory right away
        ss["gen.link_step"] = step


def _on_model_change(models: list[ModelEntry]) -> None:
    entry = model_entry(models, ss["gen.model"])
    info, _ = try_model_info(entry) if entry else (None, None)
    if info is None:
        return
    ss["gen.steps"] = min(int(ss.get("gen.steps", 100)), info.num_steps)
    ss["gen.num_atoms"] = min(int(ss.get("gen.num_atoms", info.typical_atoms)), info.max_atoms)
    if info.task == "gen" and "gen.num_atoms" not in ss:
        ss["gen.num_atoms"] = info.typical_atoms
    if info.use_property:
        ss["gen.prop"] = round(info.property_mean, 3)
    ss["gen.use_prop"] = False


def _on_sampler_change(models: list[ModelEntry]) -> None:
    entry = model_entry(models, ss["gen.model"])
    ss["gen.steps"] = min(DEFAULT_STEPS[ss["gen.sampler"]], _steps_of(entry) if entry else 1000)


# ---------------------------------------------------------------- one-click examples

def typed_atoms(text: str) -> list[int] | None:
    """The atoms of a formula that parses (whatever the model), else None."""
    try:
        return parse_formula(text, max_atoms=MAX_ATOMS)
    except FormulaError:
        return None


def check_formula(info: ModelInfo, text: str) -> list[int]:
    """Atomic numbers of a composition this model can make; ``FormulaError`` says why not.

    The same rules as ``diffusion.check_composition`` plus the model's largest training cell,
    checked from the checkpoint's statistics so no network has to be loaded.
    """
    from pymatgen.core.periodic_table import Element

    numbers = parse_formula(text, max_atoms=MAX_ATOMS)
    known = set(info.elements)
    unknown = sorted({z for z in numbers if known and z not in known})
    if unknown:
        names = ", ".join(Element.from_Z(z).symbol for z in unknown)
        raise FormulaError(f"this model was not trained on {names}; it knows {len(known)} elements")
    if len(numbers) > info.max_atoms:
        raise FormulaError(f"{len(numbers)} atoms is more than this model was trained on "
                           f"(at most {info.max_atoms} per cell)")
    return numbers


def choose_model(example: GenerateExample, models: list[ModelEntry]) -> tuple[ModelEntry, ModelInfo] | None:
    """The best offered structure-prediction model for an example, or None if none can make it."""
    candidates = []
    for entry in models:
        info, _ = try_model_info(entry)
        if info is None or info.task != "csp":
            continue
        try:
            check_formula(info, example.composition)
        except FormulaError:
            continue
        rank = (entry.name not in example.prefer, not (example.space_group and info.use_space_group))
        candidates.append((rank, entry.name, entry, info))
    if not candidates:
        return None
    _, _, entry, info = min(candidates, key=lambda c: (c[0], c[1]))
    return entry, info


def _apply_example(example: GenerateExample, models: list[ModelEntry]) -> None:
    choice = choose_model(example, models)
    if choice is None:
        return
    entry, info = choice
    settings = GenerateSettings(model=entry.name, composition=example.composition,
                                space_group=example.space_group if info.use_space_group else None,
                                sampler=example.sampler, steps=min(example.steps, info.num_steps),
                                seed=int(ss.get("gen.seed", 0)))
    _settings_to_widgets(settings, info)
    ss["gen.pending"] = True
    ss["gen.example_note"] = (f"{example.label}: {example.note}; model `{entry.name}`, "
                              f"{SAMPLER_NAMES[settings.sampler]}, {settings.steps} steps") + (
        "" if example.prefer and entry.name in example.prefer else
        f" (`{entry.name}` was not trained on such crystals: expect a rough structure)")


def examples_row(models: list[ModelEntry]) -> None:
    st.markdown("**One-click examples** (sets the conditions below and generates):")
    columns = st.columns(len(GENERATE_EXAMPLES))
    for column, example in zip(columns, GENERATE_EXAMPLES):
        choice = choose_model(example, models)
        help_text = (f"{example.composition}, {example.note}" + (f", space group {example.space_group}" if example.space_group else "")
                     if choice else f"none of the offered models can make {example.composition}")
        column.button(example.label, key=f"gen.example.{example.key}", help=help_text, disabled=choice is None,
                      on_click=_apply_example, args=(example, models), width="stretch")


# ---------------------------------------------------------------- conditions

def controls(models: list[ModelEntry]) -> tuple[ModelEntry, ModelInfo | None, GenerateSettings | None, str | None]:
    """The condition, sampler and seed widgets; returns (entry, info, settings, first error or None)."""
    names = [m.name for m in models]
    labels = {m.name: m.label for m in models}
    left, middle, right = st.columns([1.2, 1, 1], gap="large")
    problems: list[str] = []
    with left:
        st.selectbox("Model", names, key="gen.model", format_func=lambda n: labels.get(n, n),
                     on_change=_on_model_change, args=(models,),
                     help="Trained checkpoints found in the models folder; see their cards on the Home page.")
        entry = model_entry(models, ss["gen.model"])
        info, load_error = try_model_info(entry)
        if info is None:
            st.error(load_error)
            return entry, None, None, load_error
        if info.task == "csp":
            st.text_input("Composition (atoms in the cell)", key="gen.composition", max_chars=200,
                          help="Element symbols with counts, e.g. SrTiO3, NaCl, Ti2O4 (rutile has 6 atoms "
                               "in its cell, so TiO2 as 'Ti2O4'). The model places these atoms.")
            try:
                numbers = check_formula(info, ss["gen.composition"])
                st.caption(f"{len(numbers)} atoms. The model knows {len(info.elements)} elements.")
            except FormulaError as exc:
                st.error(f"Composition: {exc}.", icon=":material/error:")
                problems.append(f"composition: {exc}")
            typed = typed_atoms(ss["gen.composition"])
            if typed:  # offered for a cell that is too big, too: the proposal may fix it
                formula_units_button(entry, "gen", "gen.composition", typed, info.max_atoms)
        else:
            st.number_input("Number of atoms", min_value=1, max_value=info.max_atoms, step=1, key="gen.num_atoms",
                            help="Ab initio generation: the model chooses the elements as well as the structure.")
        space_group = None
        if info.use_space_group:
            space_group, problem = space_group_field(entry, "gen", "gen.sg_text", "gen.composition",
                                                     numbers if info.task == "csp" and not problems else None,
                                                     "e.g. 136 or P4_2/mnm")
            if problem:
                problems.append(problem)
    with middle:
        prop = None
        if info.use_property:
            label = info.property_name or "property"
            st.checkbox(f"Condition on {label}", key="gen.use_prop",
                        help="Classifier-free guidance toward a target value of the property the model was trained with.")
            low, high = info.property_mean - 4 * info.property_std, info.property_mean + 4 * info.property_std
            ss.setdefault("gen.prop", round(info.property_mean, 3))
            st.number_input(f"Target {label}", key="gen.prop", format="%.3f", disabled=not ss.get("gen.use_prop"),
                            help=f"Training data: mean {info.property_mean:.3f}, std {info.property_std:.3f}.")
            if ss.get("gen.use_prop"):
                prop = float(ss["gen.prop"])
                if not (math.isfinite(prop) and low <= prop <= high):
                    st.warning(f"{prop:g} is far outside the training data ({low:.2f} to {high:.2f}); "
                               "the model will extrapolate.")
        if info.use_property or info.use_space_group:
            st.slider("Guidance scale w", 0.0, 5.0, step=0.25, key="gen.guidance",
                      help="eps = (1 + w) eps(x, t, condition) - w eps(x, t, none); 0 = plain conditional "
                           "sampling, larger pushes harder toward the condition.")
        else:
            st.caption("This model takes no property or space-group condition.")
    with right:
        st.selectbox("Sampler", list(SAMPLER_LABELS), key="gen.sampler", format_func=SAMPLER_LABELS.get,
                     on_change=_on_sampler_change, args=(models,))
        st.number_input(f"Network evaluations (steps, 1 to T = {info.num_steps})", min_value=1,
                        max_value=info.num_steps, step=10, key="gen.steps",
                        help="Fewer steps = faster; DDIM works well with 50-100, DDPM is the full T.")
        st.number_input("Seed", min_value=0, max_value=MAX_SEED, step=1, key="gen.seed",
                        help="Same settings and seed give the same trajectory.")
        st.selectbox("Network precision", list(PRECISION_LABELS), key="gen.precision",
                     format_func=PRECISION_LABELS.get, help=precision_help())
        template_step = None
        if info.task == "csp":
            template_step, problem = _template_controls(entry, info, numbers if not problems else None, space_group)
            if problem:
                problems.append(problem)
    settings = GenerateSettings(
        model=entry.name, composition=str(ss.get("gen.composition", "")).strip(),
        num_atoms=int(ss.get("gen.num_atoms", info.typical_atoms)), space_group=space_group, prop=prop,
        guidance=float(ss.get("gen.guidance", 0.0)) if (space_group is not None or prop is not None) else 0.0,
        sampler=ss["gen.sampler"], steps=int(ss["gen.steps"]), seed=int(ss["gen.seed"]), template_step=template_step,
        precision=ss.get("gen.precision", DEFAULT_PRECISION))
    return entry, info, settings, (problems[0] if problems else None)


def _template_controls(entry: ModelEntry, info: ModelInfo, numbers: list[int] | None,
                       space_group: int | None) -> tuple[int | None, str | None]:
    """'Start from' noise or a template; returns (t0 or None for noise, problem or None)."""
    st.radio("Start from", ["noise", "template"], key="gen.start", horizontal=True,
             format_func={"noise": "noise (x_T)", "template": "a similar known crystal"}.get,
             help="A template is the chemically nearest training crystal with the same atom counts (in the asked "
                  "space group, when you give one), its elements replaced by yours (e.g. KBr from NaCl). The "
                  "reverse process then starts from it noised to step t0 (SDEdit): small t0 keeps it, t0 = T "
                  "forgets it.")
    if ss.get("gen.start") != "template":
        return None, None
    ss["gen.template_step"] = min(int(ss.get("gen.template_step", DEFAULT_TEMPLATE_STEP)), info.num_steps)
    st.slider("Noise the template to step t0", 1, info.num_steps, key="gen.template_step")
    if numbers is None:
        return int(ss["gen.template_step"]), None
    template, message = find_template(entry, numbers, space_group)
    if template is None:
        st.warning(message, icon=":material/warning:")
        return None, "start: no template for this composition"
    st.caption(f"Template: {template.describe()}.")
    return int(ss["gen.template_step"]), None


# ---------------------------------------------------------------- running

def run(entry: ModelEntry, settings: GenerateSettings) -> None:
    """Sample (cached) and keep the result; an error is kept for display and nothing is removed."""
    started = time.perf_counter()
    try:
        trajectory = sample_trajectory(entry.path, entry.version, settings)
        model = get_model(entry)
    except Exception as exc:  # a failed run must never break the page or wipe earlier results
        ss["gen.error"] = f"Generation failed: {exc}"
        return
    result = Result(id=ss["gen.next_id"], settings=settings, task=model.process.task, trajectory=trajectory,
                    abar=model.abar.detach().cpu().double().numpy(), sigma=model.sigma.detach().cpu().double().numpy(),
                    seconds=time.perf_counter() - started, schedule=model.schedule,
                    step_lr=model.process.corrector_step_lr)
    ss["gen.next_id"] += 1
    ss["gen.results"] = (ss["gen.results"] + [result])[-MAX_RESULTS:]
    ss["gen.shown"] = result.id
    step = ss.pop("gen.link_step", None)
    ss[f"gen.t.{result.id}"] = result.steps[result.trajectory.frame_of_step(step)] if step is not None else 0
    ss["gen.playing"] = False
    ss.pop("gen.error", None)


def generate_button(entry: ModelEntry, settings: GenerateSettings | None, problem: str | None) -> None:
    pressed = st.button("Generate", type="primary", icon=":material/auto_awesome:", key="gen.go")
    pending = ss.pop("gen.pending", False)
    if pressed or pending:
        if settings is None or problem:
            ss["gen.error"] = f"Nothing generated: fix the {problem or 'settings'} first."
        else:
            run(entry, settings)
    if ss.get("gen.error"):
        st.error(ss["gen.error"], icon=":material/error:")
    note = ss.pop("gen.example_note", None)
    if note and not ss.get("gen.error"):
        st.caption(note)


# ---------------------------------------------------------------- showing a result

def _shown() -> Result | None:
    return shown_item("gen.results", "gen.shown")


def shown_result() -> Result | None:
    """The result on screen (None before the first run), e.g. for the relax section below the player."""
    return _shown()


def _sync_url(result: Result, t: int) -> None:
    query = result.settings.to_query(result.task)
    query["t"] = str(int(t))
    if {k: st.query_params[k] for k in st.query_params} != query:
        st.query_params.from_dict(query)


def _top_types(probs: np.ndarray, count: int = 3) -> str:
    from pymatgen.core.periodic_table import Element

    probs = probs.copy()
    probs[0] = 0.0
    order = np.argsort(probs)[::-1][:count]
    return " · ".join(f"{Element.from_Z(int(z)).symbol} {100 * probs[z]:.0f}%" for z in order if probs[z] > 0)


def _undecided_table(result: Result, k: int) -> None:
    trajectory = result.trajectory
    masked = trajectory.masked(k, 0)
    total = len(masked)
    st.markdown(f"**Atom types:** {total - int(masked.sum())} of {total} decided at this step.")
    if trajectory.type_probs is None or not masked.any():
        return
    probs = trajectory.type_probs[k, : total].double().numpy()
    rows = [(f"atom {i + 1}", _top_types(probs[i])) for i in np.flatnonzero(masked)]
    st.dataframe(pd.DataFrame(rows, columns=["undecided atom", "model's p(type | x_t), top 3"]), hide_index=True,
                 width="stretch", height=min(38 + 35 * len(rows), 260))


def _numbers(result: Result, k: int, predicted: bool):
    cache = ss.setdefault("gen.numbers_cache", {})
    key = (result.id, k, predicted)
    if key not in cache:
        structure = result.trajectory.structure(frame=k, predicted=predicted)
        shortest = None if predicted else float(result.trajectory.min_distance[k, 0])
        cache[key] = describe(structure, shortest=shortest)
        if len(cache) > 4000:
            cache.clear()
    return cache[key]


def _frames(result: Result, predicted: bool) -> list[ViewFrame]:
    """Every recorded frame (or the model's x_0 prediction at every frame) as drawable data.

    All frames are shifted by one common translation that puts the final crystal's first
    atom on the cell's corner (a common shift of all atoms changes nothing physically),
    so a generated perovskite is drawn the way textbooks draw it.
    """
    trajectory = result.trajectory
    n = int(trajectory.num_atoms[0])
    lattice = (trajectory.pred_lattice if predicted else trajectory.lattice)[:, 0].double().numpy()
    frac = (trajectory.pred_frac_coords if predicted else trajectory.frac_coords)[:, :n].double().numpy()
    frac = frac - trajectory.frac_coords[-1, 0].double().numpy()
    frames = []
    for k in range(trajectory.num_frames):
        masked = trajectory.masked(k, 0) if result.task == "gen" else None
        frames.append(ViewFrame(lattice[k], frac[k], trajectory.element_numbers(k, 0), masked))
    return frames


def _slider_label(result: Result) -> str:
    t0 = result.settings.template_step
    if t0 is None or result.task != "csp":
        return f"{SLIDER_PREFIX}: T (noise) → 0 (crystal)"
    return f"{SLIDER_PREFIX}: t0 = {t0} (the known crystal, noised) → 0 (crystal)"


def _view(result: Result, supercell: int, ghost: bool) -> str:
    """The trajectory's 3D view (all frames; it follows ``?t=`` in the URL), built once per option set."""
    cache = ss.setdefault("gen.view_cache", {})
    key = (result.id, supercell, ghost)
    if key not in cache:
        options = ViewOptions(height=VIEW_HEIGHT, supercell=(supercell,) * 3, ghost_label="model's x̂₀ (predicted)",
                              group="generate", boundary=0.05)  # generated atoms sit near, not on, the faces
        cache[key] = trajectory_html(_frames(result, False), result.steps, _frames(result, True) if ghost else None,
                                     options, follow="t", slider_label=SLIDER_PREFIX)
        while len(cache) > 8:
            cache.pop(next(iter(cache)))
    return cache[key]


def equations(result: Result, t: int) -> None:
    """The sampler's update at slider step t, with the model's schedule values filled in."""
    if result.schedule is None:
        return
    settings = result.settings
    try:
        panels = reverse_panels(result.schedule, settings.steps, t, settings.sampler, result.task,
                                settings.guidance if settings.conditioned else 0.0, result.step_lr)
    except ValueError:
        return  # a step off the sampler's grid (not produced by this page)
    st.markdown(f"##### The update at t = {t}" if t else "##### The last update (it produced t = 0)")
    show_panels([[p for p in panels if p.field in ("lattice", "guidance")],
                 [p for p in panels if p.field in ("coords", "types")]])


def player(result: Result) -> None:
    """Slider + play/pause, the 3D view at step t, its numbers, the update equations and the
    diagnostics (one fragment).

    The 3D view's HTML holds every frame and does not change with t: the fragment writes
    t into the URL first thing, and the view (same-origin iframe) redraws that frame in
    place, so scrubbing never reloads 3Dmol.js or the WebGL context.
    """
    key = f"gen.t.{result.id}"
    steps = result.steps
    if ss.get(key) not in steps:
        ss[key] = 0

    @st.fragment(run_every=PLAY_TICK_SECONDS if ss.get("gen.playing") else None)
    def _player() -> None:
        stride = max(1, math.ceil(len(steps) / PLAY_TICKS))
        finished = False
        if ss.get("gen.playing"):
            index = steps.index(ss[key])
            index = min(index + stride, len(steps) - 1)
            ss[key] = steps[index]
            finished = index == len(steps) - 1
        play_col, slider_col = st.columns([1, 9], vertical_alignment="bottom")
        with play_col:
            playing = ss.get("gen.playing", False)
            if st.button("Pause" if playing else "Play", icon=":material/pause:" if playing else ":material/play_arrow:",
                         key="gen.play", width="stretch"):
                ss["gen.playing"] = not playing
                if ss["gen.playing"] and ss[key] == steps[-1]:
                    ss[key] = steps[0]
                st.rerun()
        with slider_col:
            st.select_slider(_slider_label(result), options=steps, key=key)
        t = int(ss[key])
        if st.query_params.get("t") != str(t):
            st.query_params["t"] = str(t)  # first: the 3D view follows the URL
        k = result.trajectory.frame_of_step(t)
        view_col, numbers_col = st.columns([3, 2], gap="medium")
        with numbers_col:
            sub = st.columns(2)
            supercell = sub[0].selectbox("Cells shown", (1, 2, 3), key="gen.supercell",
                                         format_func=lambda n: f"{n}×{n}×{n}")
            ghost_on = sub[1].toggle("Ghost: model's x̂₀", key="gen.ghost",
                                     help="The model's prediction of the final crystal, made at each step, drawn faint.")
            extra = [("step t", f"{t} of {steps[0]}"), ("lattice signal kept √ᾱ_t", f"{result.abar[t] ** 0.5:.3f}"),
                     ("coordinate noise σ_t", f"{result.sigma[t]:.3f}")]
            numbers_table(_numbers(result, k, False), extra)
            if result.task == "gen":
                _undecided_table(result, k)
        with view_col:
            show_view(_view(result, supercell, ghost_on), VIEW_HEIGHT)
            st.caption("Drag to rotate, scroll to zoom; the view follows the slider. All steps are drawn with the "
                       "final crystal's first atom on the cell corner (shifting every atom together changes nothing)."
                       + (" Dark grey atoms: type not decided yet (the table lists the model's current guesses)." if result.task == "gen" else ""))
        equations(result, t)
        st.plotly_chart(diagnostics_figure(result.trajectory, 0, t), width="stretch", key="gen.diagnostics",
                        config={"displayModeBar": False})
        if finished:
            ss["gen.playing"] = False
            st.rerun()

    _player()


def _final_cif(result: Result) -> str:
    from pymatgen.io.cif import CifWriter
    return str(CifWriter(result.trajectory.structure(frame=result.trajectory.num_frames - 1)))


_EXPORTS: OrderedDict[tuple, bytes] = OrderedDict()
_EXPORTS_LOCK = threading.Lock()
MAX_EXPORTS = 16


def trajectory_key(trajectory) -> str:
    """A content hash of a trajectory (its cells, coordinates and types): same key, same pictures."""
    digest = hashlib.sha1()
    for tensor in (trajectory.timesteps, trajectory.lattice, trajectory.frac_coords, trajectory.types):
        digest.update(tensor.contiguous().numpy().tobytes())
    return digest.hexdigest()


def export_picture(result: Result, kind: str, count: int) -> bytes:
    """The trajectory's first crystal as a GIF ('gif') or PNG strip ('png') of ``count`` evenly spaced
    steps, rendered on the server. Cached across sessions by the trajectory's content; safe to call
    from the thread that serves a download (no Streamlit calls here)."""
    key = (trajectory_key(result.trajectory), kind, int(count))
    with _EXPORTS_LOCK:
        if key in _EXPORTS:
            _EXPORTS.move_to_end(key)
            return _EXPORTS[key]
    steps = evenly_spaced_steps(result.trajectory, int(count))
    settings = result.settings
    formula = result.trajectory.structure(frame=result.trajectory.num_frames - 1).composition.reduced_formula
    subtitle = f"{formula} · {settings.model} · {settings.sampler}, {settings.steps} steps · seed {settings.seed}"
    draw = render_gif if kind == "gif" else render_strip
    data = draw(result.trajectory, steps, subtitle=subtitle)
    with _EXPORTS_LOCK:
        _EXPORTS[key] = data
        while len(_EXPORTS) > MAX_EXPORTS:
            _EXPORTS.popitem(last=False)
    return data


def downloads(result: Result) -> None:
    stem = "".join(ch for ch in result.settings.composition if ch.isalnum()) if result.task == "csp" else \
        f"abinitio{result.settings.num_atoms}"
    stem = f"{stem}_{result.settings.model}_{result.settings.sampler}{result.settings.steps}_seed{result.settings.seed}"
    left, right, _ = st.columns([1, 1.4, 1.6])
    left.download_button("Final structure (CIF)", data=lambda: _final_cif(result), file_name=f"{stem}.cif",
                         mime="chemical/x-cif", icon=":material/download:", on_click="ignore", key="gen.dl_cif", width="stretch")
    right.download_button(f"Trajectory, {result.trajectory.num_frames} frames (XYZ)",
                          data=lambda: result.trajectory.to_extxyz(0), file_name=f"{stem}_trajectory.extxyz",
                          mime="chemical/x-xyz", icon=":material/download:", on_click="ignore", key="gen.dl_xyz", width="stretch",
                          help="Every recorded step as multi-frame extended XYZ (opens in ASE, OVITO, VESTA).")
    st.markdown("**For slides:** pictures of the trajectory drawn on the server (unit cell, element colours, "
                "the step t on each frame), made when you press a button.")
    frames_col, panels_col, gif_col, png_col = st.columns([1, 1, 1.2, 1.2], vertical_alignment="bottom")
    available = result.trajectory.num_frames
    gif_frames = int(frames_col.number_input("GIF frames", min_value=2, max_value=MAX_FRAMES, value=20, step=1,
                                             key="gen.gif_frames",
                                             help="Recorded steps evenly spaced from T to 0 (at most the "
                                                  f"{available} recorded here); the last frame is held."))
    strip_frames = int(panels_col.number_input("Strip panels", min_value=2, max_value=MAX_STRIP_PANELS, value=6,
                                               step=1, key="gen.strip_frames",
                                               help="Steps side by side in one PNG, from T to 0."))
    gif_count, strip_count = min(gif_frames, available), min(strip_frames, available)
    gif_col.download_button(f"Animation, {gif_count} frames (GIF)", data=lambda: export_picture(result, "gif", gif_count),
                            file_name=f"{stem}_{gif_count}frames.gif", mime="image/gif", icon=":material/animation:",
                            on_click="ignore", key="gen.dl_gif", width="stretch")
    png_col.download_button(f"Strip of {strip_count} steps (PNG)",
                            data=lambda: export_picture(result, "png", strip_count),
                            file_name=f"{stem}_strip{strip_count}.png", mime="image/png", icon=":material/image:",
                            on_click="ignore", key="gen.dl_png", width="stretch")


def warm_up(models: list[ModelEntry]) -> None:
    """Load the selected model while the user reads the page (last thing on the page), so the first
    press of Generate only samples. Loading is cached and shared by every session."""
    entry = model_entry(models, ss.get("gen.model", ""))
    if entry is not None:
        try:
            get_model(entry)
        except Exception:
            pass  # the Generate button reports a broken checkpoint next to itself


def results_section() -> None:
    result = _shown()
    if result is None:
        st.info("Press **Generate** (or a one-click example) to sample a crystal. You will then scrub a slider "
                "from t = T, pure noise, to t = 0, the generated crystal, and watch it condense.",
                icon=":material/info:")
        return
    result_picker("gen.results", "gen.shown", "Result shown (earlier results stay here for this session)",
                  "Clear results", lambda r: f"{r.label}  ({r.seconds:.1f} s)")
    result = _shown()
    final = result.trajectory.structure(frame=result.trajectory.num_frames - 1)
    final_numbers = _numbers(result, result.trajectory.num_frames - 1, False)
    sg = f", space group {final_numbers.space_group[0]} ({final_numbers.space_group[1]})" if final_numbers.space_group else ""
    st.markdown(f"**Generated:** {final.composition.reduced_formula} ({len(final)} atoms){sg}, "
                f"{'structurally valid' if final_numbers.valid else 'NOT valid (atoms closer than 0.5 Å)'}; "
                f"{result.trajectory.num_frames} recorded steps, "
                + ("taken from the cache (same settings as before)." if result.seconds < 0.1 else
                   f"sampled in {result.seconds:.1f} s."))
    player(result)
    _sync_url(result, int(ss[f"gen.t.{result.id}"]))
    downloads(result)
