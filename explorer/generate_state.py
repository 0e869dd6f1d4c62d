"""The Generate page's state: its widgets' values, the first run of a session (defaults overridden by
the URL's settings), and the URL that mirrors the result on screen.

Session state (all keys start with ``gen.``):
    widget values       gen.model, gen.composition, gen.num_atoms, gen.sg_text, gen.use_prop, gen.prop,
                        gen.guidance, gen.sampler, gen.steps, gen.seed, gen.start, gen.template_step,
                        gen.precision
    gen.results         earlier results of this session (a failed run never removes one)
    gen.shown           id of the result on screen
    gen.t.<id>, gen.playing   the player's step per result and its play state (``playback.py``)
    gen.pending         a run was asked for by a link or a one-click example
    gen.gif_frames, gen.strip_frames   how many steps the slide exports (GIF, PNG strip) draw
The result on screen and its step are mirrored in the URL (``st.query_params``), so a
copied link reopens the same trajectory at the same step.
"""
from __future__ import annotations

import streamlit as st

from .layout import kept_query_params
from .models import ModelEntry, ModelInfo, default_model, model_entry, try_model_info
from .compositions import typed_atoms
from .page_state import start_page_state
from .recommended_field import apply_recommended
from .result import Result
from .settings import DEFAULT_SAMPLER, DEFAULT_STEPS, LANGEVIN, SAMPLER_LABELS, GenerateSettings, from_query

PREFIX = "gen"
WIDGETS = ("gen.model", "gen.composition", "gen.num_atoms", "gen.sg_text", "gen.use_prop", "gen.prop",
           "gen.guidance", "gen.sampler", "gen.steps", "gen.seed", "gen.start", "gen.template_step", "gen.precision",
           "gen.symmetry", "gen.eta")
ss = st.session_state


def steps_of(entry: ModelEntry) -> int:
    """The model's T (from its checkpoint; 1000 when it cannot be read, and the page says why elsewhere)."""
    info, _ = try_model_info(entry)
    return info.num_steps if info is not None else 1000


def settings_to_widgets(settings: GenerateSettings, info: ModelInfo | None) -> None:
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
    if settings.sampler in SAMPLER_LABELS:   # a CDVAE's "langevin" is no choice of the diffusion samplers' box
        ss["gen.sampler"] = settings.sampler
    ss["gen.steps"] = int(settings.steps)
    if info is not None and info.task == "cdvae":
        _cdvae_widgets(settings, info)
        ss["gen.langevin_steps"] = True
    ss["gen.seed"] = int(settings.seed)
    ss["gen.precision"] = settings.precision
    ss["gen.start"] = "noise" if settings.template_step is None else "template"
    ss["gen.symmetry"] = bool(settings.symmetry)
    if settings.template_step is not None:
        ss["gen.template_step"] = int(settings.template_step)


def _cdvae_widgets(settings: GenerateSettings, info: ModelInfo) -> None:
    """A CDVAE's widgets: steps per level and eta (the model's own unless the settings say otherwise)."""
    ss["gen.eta"] = float(settings.step_size if settings.step_size is not None else info.langevin_step)
    ss["gen.num_atoms"] = int(min(max(settings.num_atoms, 0), info.max_atoms))


def init_state(models: list[ModelEntry]) -> None:
    """First run of the page in this session: defaults, overridden by the URL's settings."""
    if not start_page_state(PREFIX, WIDGETS, models):
        return
    entry = default_model(models)
    default = GenerateSettings(model=entry.name)
    params = {k: st.query_params[k] for k in st.query_params}
    settings, step, errors = from_query(params, {m.name: steps_of(m) for m in models}, default)
    info, _ = try_model_info(model_entry(models, settings.model))
    if info is not None and info.task == "gen":
        if "atoms" not in params:
            settings = settings.replace(num_atoms=info.typical_atoms)
        elif settings.num_atoms > info.max_atoms:
            errors.append(f"'atoms={params['atoms']}' is more than {settings.model} makes (at most {info.max_atoms})")
            settings = settings.replace(num_atoms=info.max_atoms)
    settings_to_widgets(settings, info)
    if "model" not in params and info is not None and info.task == "csp":
        apply_recommended(model_entry(models, settings.model), typed_atoms(settings.composition), info.num_steps)
    ss["gen.link_errors"] = errors
    if "model" in params and not errors:
        ss["gen.pending"] = True   # a shared link: reproduce its trajectory right away
        ss["gen.link_step"] = step


def on_model_change(models: list[ModelEntry]) -> None:
    entry = model_entry(models, ss["gen.model"])
    info, _ = try_model_info(entry) if entry else (None, None)
    if info is None:
        return
    came_from_cdvae = ss.pop("gen.langevin_steps", False)
    if info.task == "cdvae":   # its own sampler: the model's steps per level and eta, the atom count from z
        ss["gen.steps"], ss["gen.eta"], ss["gen.num_atoms"] = info.steps_per_level, info.langevin_step, 0
        ss["gen.langevin_steps"] = True
        return
    if came_from_cdvae:        # gen.steps held Langevin steps per level: back to the sampler's default
        ss["gen.steps"] = DEFAULT_STEPS.get(ss.get("gen.sampler", DEFAULT_SAMPLER), 100)
    ss["gen.steps"] = min(int(ss.get("gen.steps", 100)), info.num_steps)
    ss["gen.num_atoms"] = min(int(ss.get("gen.num_atoms", info.typical_atoms)), info.max_atoms)
    if info.task == "gen" and ("gen.num_atoms" not in ss or ss["gen.num_atoms"] < 1):  # a CDVAE's 0 = "from z"
        ss["gen.num_atoms"] = info.typical_atoms
    if info.use_property:
        ss["gen.prop"] = round(info.property_mean, 3)
    ss["gen.use_prop"] = False


def on_sampler_change(models: list[ModelEntry]) -> None:
    entry = model_entry(models, ss["gen.model"])
    ss["gen.steps"] = min(DEFAULT_STEPS[ss["gen.sampler"]], steps_of(entry) if entry else 1000)


def sync_url(result: Result, t: int) -> None:
    query = result.settings.to_query(result.task)
    query["t"] = str(int(t))
    query.update(kept_query_params())   # projector mode survives the rewrite
    if {k: st.query_params[k] for k in st.query_params} != query:
        st.query_params.from_dict(query)
