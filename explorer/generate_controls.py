"""The Generate page's controls: one-click examples, then conditions, sampler and seed, and where the
reverse process starts (noise or a template). State keys are described in ``generate_state.py``."""
from __future__ import annotations

import math

import streamlit as st

from diffusion.api import FormulaError, constraint_from_template

from .compositions import check_formula, composition_field, typed_atoms
from .examples import GENERATE_EXAMPLES, GenerateExample
from .formula_units_field import formula_units_button
from .generate_state import on_model_change, on_sampler_change, settings_to_widgets
from .models import ModelEntry, ModelInfo, find_template, model_entry, precision_help, try_model_info
from .recommended_field import recommended_line
from .settings import (DEFAULT_PRECISION, DEFAULT_TEMPLATE_STEP, LANGEVIN, MAX_LANGEVIN_STEPS_PER_LEVEL, MAX_SEED,
                       PRECISION_LABELS, SAMPLER_LABELS, SAMPLER_NAMES, GenerateSettings)
from .space_group_field import space_group_field

ss = st.session_state


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
                                seed=int(ss.get("gen.seed", 0)),
                                symmetry=example.symmetry and info.use_space_group and example.space_group is not None)
    settings_to_widgets(settings, info)
    ss["gen.pending"] = True
    ss["gen.scroll_to_view"] = True   # the result appears below the fold: bring it up (generate.results_section)
    ss["gen.example_note"] = (f"{example.label}: {example.note}; model `{entry.name}`, "
                              f"{SAMPLER_NAMES[settings.sampler]}, {settings.steps} steps"
                              + (", Wyckoff orbits kept" if settings.symmetry else "")) + (
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


def controls(models: list[ModelEntry]) -> tuple[ModelEntry, ModelInfo | None, GenerateSettings | None, str | None]:
    """The condition, sampler and seed widgets; returns (entry, info, settings, first error or None)."""
    names = [m.name for m in models]
    labels = {m.name: m.label for m in models}
    left, middle, right = st.columns([1.2, 1, 1], gap="large")
    problems: list[str] = []
    with left:
        st.selectbox("Model", names, key="gen.model", format_func=lambda n: labels.get(n, n),
                     on_change=on_model_change, args=(models,),
                     help="Trained checkpoints found in the models folder; see their cards on the Home page.")
        entry = model_entry(models, ss["gen.model"])
        info, load_error = try_model_info(entry)
        if info is None:
            st.error(load_error)
            return entry, None, None, load_error
        if info.task == "cdvae":
            return entry, info, _cdvae_controls(entry, info, middle, right), None
        if info.task == "csp":
            numbers, problem = composition_field(
                info, "gen.composition", "Composition (atoms in the cell)",
                "Element symbols with counts, e.g. SrTiO3, NaCl, Ti2O4 (rutile has 6 atoms in its cell, so TiO2 as "
                "'Ti2O4'; *Cell size from training crystals* proposes it). The model places these atoms.")
            problems += [problem] if problem else []
            typed = typed_atoms(ss["gen.composition"])
            if typed:  # offered for a cell that is too big, too: the proposal may fix it
                formula_units_button(entry, "gen", "gen.composition", typed, info.max_atoms)
        else:
            st.number_input("Number of atoms", min_value=1, max_value=info.max_atoms, step=1, key="gen.num_atoms",
                            help="Ab initio generation: the model chooses the elements as well as the structure.")
        space_group, keep_symmetry = None, False
        if info.use_space_group:
            space_group, problem = space_group_field(entry, "gen", "gen.sg_text", "gen.composition",
                                                     numbers if info.task == "csp" and not problems else None,
                                                     "e.g. 136 or P4_2/mnm")
            if problem:
                problems.append(problem)
            if info.task == "csp":
                keep_symmetry = symmetry_box(entry, numbers if not problems else None, space_group)
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
                     on_change=on_sampler_change, args=(models,))
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
    if info.task == "csp":
        recommended_line(entry, numbers if not problems else None, info.num_steps)
    if entry.card.get("about_data"):
        st.caption(f"**About `{entry.name}`'s data:** {entry.card['about_data']}")
    settings = GenerateSettings(
        model=entry.name, composition=str(ss.get("gen.composition", "")).strip(),
        num_atoms=int(ss.get("gen.num_atoms", info.typical_atoms)), space_group=space_group, prop=prop,
        guidance=float(ss.get("gen.guidance", 0.0)) if (space_group is not None or prop is not None) else 0.0,
        sampler=ss["gen.sampler"], steps=int(ss["gen.steps"]), seed=int(ss["gen.seed"]), template_step=template_step,
        precision=ss.get("gen.precision", DEFAULT_PRECISION),
        symmetry=keep_symmetry)
    return entry, info, settings, (problems[0] if problems else None)


def _cdvae_controls(entry: ModelEntry, info: ModelInfo, middle, right) -> GenerateSettings:
    """A CDVAE: a latent z drawn from N(0, I) with the seed, decoded by annealed Langevin dynamics."""
    process = entry.card.get("process") or {}
    st.number_input("Number of atoms (0: the one z predicts)", min_value=0, max_value=info.max_atoms, step=1,
                    key="gen.num_atoms", help="A CDVAE reads the atom count, the cell and the composition from its "
                                              "latent z; a number here overrides the count.")
    with middle:
        st.caption("A CDVAE takes no condition here: the seed draws a latent z from N(0, I), and z decides the "
                   "elements, the cell and (through the score network) the positions. Walk its latent space, and "
                   "steer a property, on the *Latent space* page.")
    with right:
        st.caption(f"Sampler: annealed Langevin dynamics over {process.get('num_levels', '?')} noise levels "
                   "(the CDVAE family has no DDPM or DDIM).")
        st.number_input("Langevin steps per noise level", min_value=1, max_value=MAX_LANGEVIN_STEPS_PER_LEVEL, step=1,
                        key="gen.steps", help="The model's own default was chosen on its validation split "
                                              "(see its card); more steps settle the atoms better at each level.")
        st.number_input("Step size η (γ_l = η σ_l²)", min_value=0.001, max_value=1.0, step=0.05, format="%.3f",
                        key="gen.eta", help="How far each Langevin step moves the atoms, relative to the level's width.")
        st.number_input("Seed", min_value=0, max_value=MAX_SEED, step=1, key="gen.seed",
                        help="Draws the latent z and the Langevin noise: same seed, same crystal.")
    default_eta = float(process.get("langevin_step", 0.0))
    eta = float(ss["gen.eta"])
    return GenerateSettings(model=entry.name, num_atoms=int(ss.get("gen.num_atoms", 0)), sampler=LANGEVIN,
                            steps=int(ss["gen.steps"]), seed=int(ss["gen.seed"]),
                            step_size=None if abs(eta - default_eta) < 1e-12 else eta)


def symmetry_box(entry: ModelEntry, numbers: list[int] | None, space_group: int | None) -> bool:
    """'Keep the symmetry at every step': Wyckoff orbits from the nearest training crystal in the asked group.
    True when it is ticked and such orbits exist (otherwise the page says why and samples without them)."""
    st.checkbox("Keep the symmetry at every step (Wyckoff orbits)", key="gen.symmetry", disabled=space_group is None,
                help="Every step is projected into the asked space group: the cell into its crystal system's shape, "
                     "and each Wyckoff orbit's atoms placed from one representative by the group's operations "
                     "(DiffCSP++ idea). The orbits come from the chemically nearest training crystal in that group.")
    if not ss.get("gen.symmetry") or space_group is None or numbers is None:
        return False
    template, _ = find_template(entry, numbers, space_group)
    try:
        cell = constraint_from_template(template, space_group)
    except ValueError as exc:
        st.warning(f"Cannot keep the symmetry: {exc}. Generating without it.", icon=":material/warning:")
        return False
    st.caption(f"Wyckoff orbits from {template.describe()}: {cell.describe()}.")
    return True


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
