"""Which checkpoints the app offers, loading them once, and cached sampling runs.

Only checkpoints found by ``diffusion.list_checkpoints()`` are ever offered (the folder
is ``$CRYSTAL_DIFFUSION_CHECKPOINTS`` or the repository's ``checkpoints/``): the app
never loads a path typed by a user. A checkpoint is identified by its name plus its
file's modification time, so a model rewritten by a running training job is reloaded.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import streamlit as st
import torch

from diffusion.api import (NO_PROTOTYPE_MATCH, NO_TEMPLATE, CheckpointError, ProcessConfig, SamplingConfig, cdvae,
                           check_composition, checkpoint_folder, constraint_from_template, describe_device,
                           fast_bfloat16, generate, list_checkpoints, load_card, load_model, read_checkpoint, recommended,
                           SharedSampler, group_predictor, resolve_device, symmetric_request, training_formula_units,
                           training_space_group_predictor, training_template_library)

from .settings import GenerateSettings



@dataclass(frozen=True)
class ModelEntry:
    """One offered checkpoint: its name, file, version (mtime in ns) and model card."""

    name: str
    path: str
    version: int
    card: dict

    @property
    def task(self) -> str:
        return str(self.card.get("task") or "csp")

    @property
    def family(self) -> str:
        """"diffusion" or "cdvae" (the card's ``family``; cards written before it are diffusion models)."""
        return str(self.card.get("family") or "diffusion")

    @property
    def label(self) -> str:
        task = ("CDVAE" if self.family == "cdvae" else
                {"csp": "structure from a composition", "gen": "ab initio"}.get(self.task, self.task))
        return f"{self.name} ({task})"


# The model Generate and Compare start with: mp_20 first, since it reproduces their default formula SrTiO3 as the
# real perovskite far more often than perov_5 (docs/experiments.md#textbook-crystals).
DEFAULT_MODELS = ("mp_20", "perov_5")


def model_entry(models: list[ModelEntry], name: str) -> ModelEntry | None:
    """The offered model called ``name``, or None."""
    return next((m for m in models if m.name == name), None)


def default_model(models: list[ModelEntry]) -> ModelEntry:
    """The first of ``DEFAULT_MODELS`` offered, else the first structure-prediction model, else the first model."""
    for name in DEFAULT_MODELS:
        if (entry := model_entry(models, name)) is not None:
            return entry
    return next((m for m in models if m.task == "csp"), models[0])


def available_models(family: str = "diffusion") -> list[ModelEntry]:
    """The checkpoints of one model family in the models folder ("diffusion" or "cdvae", the card's
    ``family``), read fresh on every call (cheap: a glob and small JSON cards)."""
    entries = []
    for info in list_checkpoints():
        if info.card.get("family", "diffusion") != family:
            continue
        try:
            version = info.path.stat().st_mtime_ns
        except OSError:
            continue  # removed between the glob and now
        entries.append(ModelEntry(info.name, str(info.path), int(version), dict(info.card)))
    return entries


def models_folder() -> str:
    return str(checkpoint_folder())


def require_models(families: tuple[str, ...] = ("diffusion",)) -> list[ModelEntry]:
    """The available models of these families; with none, a message that says how to get one, and the page
    stops there."""
    models = [m for family in families for m in available_models(family)]
    if not models:
        st.error(f"No trained models found in `{models_folder()}`. Train one with `crystal-diffusion train ...` "
                 "or point CRYSTAL_DIFFUSION_CHECKPOINTS at a folder of checkpoints.")
        st.stop()
    return models


@st.cache_resource(show_spinner=False)
def app_device() -> torch.device:
    """CUDA when present, else the CPU (shared by all sessions)."""
    return resolve_device("auto")


def device_text() -> str:
    return describe_device(app_device())


def precision_help() -> str:
    """The help of the "Network precision" choice (Generate and Batch), saying whether this machine has native bfloat16."""
    native = "has" if fast_bfloat16(app_device()) else "does NOT have"
    return ("bfloat16 runs the network's matrix products at half precision (the state, the schedule and the sums "
            "stay float32): faster on CPUs with AVX512-BF16 and on GPUs, with the same match rate on the validation "
            "splits (docs/performance.md); structures differ in the last digits. "
            f"This machine {native} native bfloat16 products.")


@st.cache_resource(max_entries=6, show_spinner="Loading the model...")
def _load(path: str, version: int, device: str):
    # ``version`` is only part of the cache key: a rewritten checkpoint is a new entry
    return load_model(path, device)


@st.cache_resource(show_spinner=False)
def shared_sampler() -> SharedSampler:
    """One for the whole server: every session's diffusion runs go through it, so requests that arrive together
    (a class pressing Generate at once) share their network calls (``diffusion/shared_sampling.py``)."""
    return SharedSampler()


def get_model(entry: ModelEntry):
    """The loaded model (shared by all sessions: never mutate it). Raises ``CheckpointError``."""
    return _load(entry.path, entry.version, str(app_device()))


def _constrained(model, library, settings: GenerateSettings, num_samples: int, record: str, progress):
    """Sample in the asked space group with its Wyckoff orbits kept at every step (``diffusion.wyckoff``)."""
    if settings.space_group is None:
        raise ValueError("keeping the symmetry needs a space group: type one or press Suggest")
    template = library.template(check_composition(model, settings.composition), settings.space_group)
    cell = constraint_from_template(template, settings.space_group)
    request = symmetric_request([cell] * num_samples, [settings.seed + i for i in range(num_samples)],
                                start_step=settings.template_step)
    config = SamplingConfig(sampler=settings.sampler, steps=settings.steps, guidance=settings.guidance,
                            record=record, precision=settings.precision)
    return shared_sampler().sample(model, request, config, progress)


def _decode_cdvae(model, settings: GenerateSettings, record: str, progress):
    """A CDVAE's trajectory: z ~ N(0, I) from the seed, decoded by annealed Langevin dynamics (every step kept)."""
    counts = None if settings.num_atoms <= 0 else torch.tensor([int(settings.num_atoms)])
    types = None
    if settings.given_composition:   # the composition-given mode (Compare: the same atoms as a diffusion run)
        numbers = check_composition(model, settings.composition)
        if len(numbers) > model.normalization.max_atoms:
            raise ValueError(f"{settings.model} decodes at most {model.normalization.max_atoms} atoms, "
                             f"{settings.composition} has {len(numbers)}")
        types, counts = torch.tensor(numbers), torch.tensor([len(numbers)])
    config = cdvae.LangevinConfig(steps_per_level=int(settings.steps), step_size=settings.step_size,
                                  seed=int(settings.seed), record_every=1 if record == "all" else 10**9)
    return cdvae.generate_from_prior(model, 1, config, num_atoms=counts, types=types, progress=progress).trajectory


@st.cache_data(max_entries=24, show_spinner=False)
def sample_trajectory(path: str, version: int, settings: GenerateSettings, num_samples: int = 1,
                      record: str = "all"):
    """Run the sampler once for these exact settings (cached; a cache hit is instant).

    The progress bar lives inside the cached function (Streamlit replays it on a hit), and
    is emptied at the end so a finished run leaves nothing behind.
    """
    model = _load(path, version, str(app_device()))
    bar = st.progress(0.0, text="Sampling...")

    def progress(done: int, total: int) -> None:
        if done == total or done % max(1, total // 50) == 0:
            bar.progress(done / total, text=f"Sampling: step {done} of {total}")

    try:
        if getattr(model, "family", "diffusion") == "cdvae":
            return _decode_cdvae(model, settings, record, progress)
        kwargs = settings.generate_kwargs(model.process.task)
        if settings.symmetry and model.process.task == "csp":
            return _constrained(model, _template_library(path, version), settings, num_samples, record, progress)
        if settings.template_step is not None and model.process.task == "csp":
            template = _template_library(path, version).template(check_composition(model, settings.composition),
                                                                 settings.space_group)
            if template is None:
                raise ValueError(f"{NO_TEMPLATE}: start from noise instead")
            kwargs.update(start=template.crystal, start_step=int(settings.template_step))
        return generate(model, num_samples=num_samples, record=record, progress=progress, run=shared_sampler().sample,
                        **kwargs)
    finally:
        bar.empty()


@dataclass(frozen=True)
class ModelInfo:
    """What the Generate page needs to know about a loaded model to build its widgets."""

    task: str
    num_steps: int
    elements: tuple[int, ...]
    max_atoms: int
    typical_atoms: int
    use_property: bool
    property_name: str | None
    property_mean: float
    property_std: float
    use_space_group: bool
    steps_per_level: int = 0        # CDVAE: its default Langevin steps per noise level (0 for diffusion models)
    langevin_step: float = 0.0      # CDVAE: its default step size eta

    @property
    def element_symbols(self) -> list[str]:
        from pymatgen.core.periodic_table import Element
        return [Element.from_Z(z).symbol for z in self.elements]


@st.cache_data(max_entries=32, show_spinner=False)
def _info(path: str, version: int) -> ModelInfo:
    data = read_checkpoint(path)  # tensors + plain config only; no network is built (fast)
    norm, process, config = data["normalization"], data["process"], data["model_config"]
    counts = [int(c) for c in norm.get("num_atoms_counts") or []]
    max_atoms = int(norm.get("max_atoms") or 20)
    typical = max(range(len(counts)), key=lambda n: counts[n]) if counts and sum(counts) > 0 else min(8, max_atoms)
    use_property = bool(config.get("use_property"))
    if data.get("family") == "cdvae":   # no diffusion steps: Langevin levels x steps per level
        return ModelInfo(task="cdvae", num_steps=int(process["num_levels"]) * int(process["steps_per_level"]),
                         elements=tuple(int(z) for z in norm.get("elements") or ()), max_atoms=max_atoms,
                         typical_atoms=max(1, int(typical)), use_property=use_property,
                         property_name=process.get("property_name") if use_property else None,
                         property_mean=float(norm.get("property_mean", 0.0)),
                         property_std=float(norm.get("property_std", 1.0)), use_space_group=False,
                         steps_per_level=int(process["steps_per_level"]), langevin_step=float(process["langevin_step"]))
    steps = ProcessConfig.from_dict(process).num_steps   # T: the checkpoint's own process config, read one way
    return ModelInfo(task=str(process.get("task") or "csp"), num_steps=steps,
                     elements=tuple(int(z) for z in norm.get("elements") or ()), max_atoms=max_atoms,
                     typical_atoms=max(1, int(typical)), use_property=use_property,
                     property_name=process.get("property_name") if use_property else None,
                     property_mean=float(norm.get("property_mean", 0.0)), property_std=float(norm.get("property_std", 1.0)),
                     use_space_group=bool(config.get("use_space_group")))


def model_info(entry: ModelEntry) -> ModelInfo:
    """What a checkpoint can do, read from the file without building the network. Raises ``CheckpointError``."""
    return _info(entry.path, entry.version)


def try_model_info(entry: ModelEntry) -> tuple[ModelInfo | None, str | None]:
    try:
        return model_info(entry), None
    except (CheckpointError, OSError, RuntimeError, ValueError, KeyError, TypeError) as exc:
        return None, f"could not read {entry.name}: {exc}"


@st.cache_resource(max_entries=4, show_spinner="Reading the model's training crystals...")
def _space_group_predictor(path: str, version: int):
    return training_space_group_predictor(load_card(Path(path)))


@st.cache_resource(max_entries=4, show_spinner="Reading the model's training crystals...")
def _template_library(path: str, version: int):
    return training_template_library(load_card(Path(path)))


@st.cache_resource(max_entries=4, show_spinner="Reading the model's training crystals...")
def _formula_units_advisor(path: str, version: int):
    return training_formula_units(load_card(Path(path)))


def warm_up_training_crystals(entry: ModelEntry) -> None:
    """Read a model's training crystals into the per-server caches (vote, templates, formula units); raises
    what reading raises (a model without usable training data)."""
    if (entry.card.get("conditions") or {}).get("space_group"):
        _space_group_predictor(entry.path, entry.version)
    if entry.task == "csp":
        _template_library(entry.path, entry.version)
        _formula_units_advisor(entry.path, entry.version)


def reference_volume(entry: ModelEntry, atomic_numbers):
    """The training crystals' volume per atom for this chemistry (None when they say nothing or cannot be read)."""
    try:
        return _formula_units_advisor(entry.path, entry.version).reference_volume(list(atomic_numbers))
    except (CheckpointError, OSError, RuntimeError, ValueError, KeyError, TypeError):
        return None


def suggest_formula_units(entry: ModelEntry, atomic_numbers, max_atoms: int) -> tuple[object | None, str | None]:
    """(the training crystals' formula-units proposal, None) or (None, why there is none)."""
    try:
        return _formula_units_advisor(entry.path, entry.version).propose(list(atomic_numbers), max_atoms), None
    except (CheckpointError, OSError, RuntimeError, ValueError, KeyError, TypeError) as exc:
        return None, f"no proposal: {exc}"


def template_library(entry: ModelEntry) -> tuple[object | None, str | None]:
    """(the model's template library, None) or (None, why it cannot be read)."""
    try:
        return _template_library(entry.path, entry.version), None
    except (CheckpointError, OSError, RuntimeError, ValueError, KeyError, TypeError) as exc:
        return None, f"no template: {exc}"


def space_group_predictor(entry: ModelEntry) -> tuple[object | None, str | None]:
    """(the vote over the model's training crystals, None) or (None, why it cannot be read)."""
    try:
        return _space_group_predictor(entry.path, entry.version), None
    except (CheckpointError, OSError, RuntimeError, ValueError, KeyError, TypeError) as exc:
        return None, f"no suggestion: {exc}"


def chosen_group_predictor(entry: ModelEntry, choice: str) -> tuple[object | None, str | None]:
    """(the predictor a recommended setting's ``group_choice`` names, None) or (None, why it cannot be made): the
    vote, or the model's choice among the nearest training crystals' groups (``diffusion/group_ranking.py``)."""
    vote, why = space_group_predictor(entry)
    if vote is None or choice != "model":
        return vote, why
    try:
        return _model_group_predictor(entry.path, entry.version, str(app_device())), None
    except (CheckpointError, OSError, RuntimeError, ValueError, KeyError, TypeError) as exc:
        return None, f"no suggestion: {exc}"


@st.cache_resource(max_entries=4, show_spinner="Reading the model's training crystals...")
def _model_group_predictor(path: str, version: int, device: str):
    return group_predictor("model", _space_group_predictor(path, version), _load(path, version, device),
                           _template_library(path, version))


def find_template(entry: ModelEntry, atomic_numbers, space_group: int | None = None) -> tuple[object | None, str | None]:
    """(the template for this composition, in this group when given, None) or (None, why there is none)."""
    library, why = template_library(entry)
    if library is None:
        return None, why
    template = library.template(list(atomic_numbers), space_group)
    if template is None:
        return None, f"{NO_TEMPLATE} to start from"
    return template, None


def group_choice(entry: ModelEntry) -> str:
    """Who picks a suggested group for this model: "model" when its card's recommended setting lets the model
    choose among the nearest training crystals' groups, else "vote" (``diffusion/group_ranking.py``)."""
    setting = recommended(entry.card) if entry is not None and isinstance(entry.card, dict) else None
    return setting.group_choice if setting is not None else "vote"


def suggest_space_group(entry: ModelEntry, atomic_numbers) -> tuple[object | None, str | None]:
    """(the group for this composition as the model's recommended setting picks it: the training crystals' vote
    or the model's choice among their groups, None) or (None, why there is none)."""
    predictor, why = chosen_group_predictor(entry, group_choice(entry))
    if predictor is None:
        return None, why
    guess = predictor.predict(list(atomic_numbers))
    if guess is None:
        return None, f"{NO_PROTOTYPE_MATCH}, so there is nothing to vote; type a group or leave the field empty"
    return guess, None
