"""The small API that the app and the command line call (pages never reach further in)."""
from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from pymatgen.core.periodic_table import Element

from .corruption import LatticeStats, lattice_to_latent, latent_to_lattice, q_sample, q_sample_coords
from .crystal import Crystal
from .formula import FormulaError, parse_formula
from .crystal_diffusion import CrystalDiffusion
from .placement import build_request, retrieve
from .sampling import SampleRequest, SamplingConfig, ProgressCallback, sample
from .schedules import make_schedule
from .shared_sampling import SharedSampler
from .tolerances import NO_SPACE_GROUP_CONDITION
from .trajectory import Trajectory

MAX_ATOMS = 100
MAX_SAMPLES = 1024
MAX_SPACE_GROUP = 230


def check_elements(numbers: list[int], elements) -> list[int]:
    """``numbers`` when every element is among a model's ``elements`` (empty = any); ``FormulaError`` says which is not."""
    known = set(elements)
    unknown = sorted({z for z in numbers if known and z not in known})
    if unknown:
        names = ", ".join(Element.from_Z(z).symbol for z in unknown)
        raise FormulaError(f"this model was not trained on {names}; it knows {len(known)} elements")
    return numbers


def check_composition(model: CrystalDiffusion, formula: str) -> list[int]:
    """Atomic numbers of a formula the model can make; ``FormulaError`` says why not."""
    return check_elements(parse_formula(formula, max_atoms=MAX_ATOMS), model.normalization.elements)


def check_space_group(model: CrystalDiffusion, space_group: int | None) -> None:
    if space_group is None:
        return
    if not model.model_config.use_space_group:
        raise ValueError(NO_SPACE_GROUP_CONDITION)
    if not 1 <= int(space_group) <= MAX_SPACE_GROUP:
        raise ValueError(f"space group must be between 1 and {MAX_SPACE_GROUP}, got {space_group}")


def sample_num_atoms(model: CrystalDiffusion, count: int, generator: torch.Generator) -> list[int]:
    """Atoms per cell drawn from the training distribution (ab initio models)."""
    hist = torch.tensor(model.normalization.num_atoms_counts, dtype=torch.float64)
    if hist.sum() <= 0:
        raise ValueError("the model has no atom-count statistics; give --num-atoms")
    return torch.multinomial(hist, count, replacement=True, generator=generator).tolist()


def generate(model: CrystalDiffusion, composition: str | None = None, num_atoms: int | None = None,
             num_samples: int = 1, sampler: str = "ddpm", steps: int | None = None, seed: int = 0,
             space_group: int | None = None, prop: float | None = None, guidance: float = 0.0,
             step_lr: float | None = None, record: str = "all", record_stride: int = 1,
             progress: ProgressCallback | None = None, start: Crystal | None = None,
             start_step: int | None = None, precision: str = "float32", run=sample) -> Trajectory:
    """Sample ``num_samples`` crystals; crystal i uses seed ``seed + i``.

    CSP models need ``composition`` (e.g. "Ti2O4": the atoms of the cell); ab initio models
    take ``num_atoms`` (or draw it from the training distribution when None). With ``start``
    (a crystal of the same composition, e.g. a template) the reverse process begins from it
    noised to ``start_step`` instead of from noise at T. ``precision="bfloat16"`` runs the network's
    matrix products in bfloat16 (faster on CPUs with AVX512-BF16 and on GPUs). ``run`` is the sampling function
    (``sampling.sample``, or a ``SharedSampler``'s ``sample`` that shares network calls with concurrent callers).
    """
    if not 1 <= num_samples <= MAX_SAMPLES:
        raise ValueError(f"num_samples must be between 1 and {MAX_SAMPLES}, got {num_samples}")
    check_space_group(model, space_group)
    if prop is not None and not model.model_config.use_property:
        raise ValueError("this model was not trained with a property condition")
    seeds = tuple(int(seed) + i for i in range(num_samples))
    if model.process.task == "csp":
        if composition is None:
            raise ValueError("this model predicts a structure from a composition: give one (e.g. SrTiO3)")
        numbers = check_composition(model, composition)
        if start is not None:
            if sorted(start.atomic_numbers.tolist()) != sorted(numbers):
                raise ValueError("the start structure has other atoms than the composition")
            numbers = start.atomic_numbers.tolist()   # the start's atom order
        request = build_request(seeds, atoms=[numbers] * num_samples, prop=prop,
                                space_groups=None if space_group is None else [space_group] * num_samples)
        if start is not None:
            request = replace(request, start=(start,) * num_samples, start_step=start_step)
    else:
        if composition is not None:
            raise ValueError("this is an ab initio model: it chooses the elements itself; give a number of atoms")
        if num_atoms is None:
            counts = sample_num_atoms(model, num_samples, torch.Generator().manual_seed(int(seed)))
        else:
            if not 1 <= int(num_atoms) <= MAX_ATOMS:
                raise ValueError(f"the number of atoms must be between 1 and {MAX_ATOMS}, got {num_atoms}")
            counts = [int(num_atoms)] * num_samples
        request = build_request(seeds, num_atoms=counts, prop=prop,
                                space_groups=None if space_group is None else [space_group] * num_samples)
        if start is not None:
            raise ValueError("starting from a structure needs a crystal-structure-prediction (csp) model")
    config = SamplingConfig(sampler=sampler, steps=steps, guidance=guidance, step_lr=step_lr, record=record,
                            record_stride=record_stride, precision=precision)
    return run(model, request, config, progress)


@dataclass(frozen=True)
class ForwardSetup:
    """How the forward-process page noises a crystal."""

    schedule: str = "cosine"
    num_steps: int = 1000
    sigma_min: float = 0.005
    sigma_max: float = 0.5
    lattice_std: float = 0.2


def forward_noise(crystal: Crystal, t: int, setup: ForwardSetup = ForwardSetup(), seed: int = 0,
                  stats: LatticeStats | None = None) -> Crystal:
    """The crystal noised to step t by the closed-form forward processes.

    The same seed gives the same eps for every t, so moving t moves the crystal smoothly
    from x_0 (t = 0) to the prior (t = T). Lattice statistics default to a cube at the
    crystal's own density (``LatticeStats.around``).
    """
    if not 0 <= int(t) <= setup.num_steps:
        raise ValueError(f"t must be between 0 and {setup.num_steps}, got {t}")
    schedule = make_schedule(setup.schedule, setup.num_steps, setup.sigma_min, setup.sigma_max)
    stats = stats or LatticeStats.around(crystal.volume / crystal.num_atoms, setup.lattice_std)
    generator = torch.Generator().manual_seed(int(seed))
    eps_lattice = torch.randn(1, 6, generator=generator, dtype=torch.float64)
    eps_coords = torch.randn(crystal.num_atoms, 3, generator=generator, dtype=torch.float64)
    n = torch.tensor([crystal.num_atoms])
    tt = torch.tensor([int(t)])
    if int(t) == 0:
        return crystal
    x0 = lattice_to_latent(crystal.lattice.unsqueeze(0), n, stats).double()
    symmetric0 = latent_to_lattice(x0, n, stats)[0].double()
    symmetric_t = latent_to_lattice(q_sample(x0, tt, eps_lattice, schedule.abar), n, stats)[0].double()
    # the latent is orientation-free; turn the noised cell like the input so both overlay
    rotation = torch.linalg.solve(symmetric0, crystal.lattice.double())
    lattice = symmetric_t @ rotation
    frac = q_sample_coords(crystal.frac_coords.double(), schedule.sigma[int(t)].double(), eps_coords)
    return crystal.replace(lattice=lattice, frac_coords=frac)


# ---------------------------------------------------------------------------------------------------------
# The app's door: everything `explorer/` and `pages/` use from the core, re-exported here so that the UI
# imports `diffusion.api` and nothing deeper (tests/test_layers.py checks it).
from .checkpoints import (CheckpointError, CheckpointInfo, checkpoint_folder, headline_metrics,  # noqa: E402
                          list_checkpoints, load_card, load_model, read_checkpoint, training_summary)
from .crystal import CrystalError  # noqa: E402
from .data import DATA_DIR, DatasetError, available_dataset_files, load_csv, resolve_data_file  # noqa: E402
from .device import describe_device, resolve_device  # noqa: E402
from .evaluation import (training_formula_units, training_space_group_predictor,  # noqa: E402
                         training_template_library, validation_crystals)
from .formula_units import formula_text  # noqa: E402
from .group_ranking import GROUP_CHOICES, group_predictor  # noqa: E402
from .live import (MAX_LIVE_ATOMS, MAX_LIVE_CRYSTALS, MAX_LIVE_SECONDS, MAX_LIVE_STEPS, LiveConfig,  # noqa: E402
                   LiveTrainer, composition_text, noise_prediction)
from .metrics import (compositional_validity, csp_matcher, match_rms, space_group_number,  # noqa: E402
                      structural_validity)
from .precision import fast_bfloat16  # noqa: E402
from .crystal_diffusion import ProcessConfig  # noqa: E402
from .relax import (DEFAULT_MAX_STEPS, HARD_MAX_STEPS, MATCHER_TOLERANCES, MAX_BATCH_RELAX, Potential,  # noqa: E402
                    PotentialUnavailable, RelaxError, RelaxResult, StabilityResult, energies_along, load_potential,
                    relax, relax_batch)
from .recommended import SamplingSetting, recommended  # noqa: E402
from .render import MAX_FRAMES, MAX_STRIP_PANELS, evenly_spaced_steps, render_gif, render_strip  # noqa: E402
from .samplers import (Coefficients, DDIMCoefficients, DDPMCoefficients, PCCoefficients,  # noqa: E402
                       ScheduleValues, make_sampler)
from .sampling import step_grid  # noqa: E402
from .schedules import SCHEDULE_NAMES  # noqa: E402
from .space_group_prediction import NO_PROTOTYPE_MATCH  # noqa: E402
from .templates import NO_TEMPLATE  # noqa: E402
from .tolerances import CSP_MATCHER_TOLERANCES, SYMPREC, VALID_MIN_DISTANCE  # noqa: E402
from .wyckoff import SymmetricCell, constraint_from_template, symmetric_request  # noqa: E402
from . import toy2d  # noqa: E402  (the 2D page's whole core: points in a plane before crystals)
from . import cdvae  # noqa: E402  (the CDVAE family: model, annealed Langevin sampler, latent space)
from .cdvae import latent as cdvae_latent  # noqa: E402
from .trajectory_files import MAX_FILE_BYTES as MAX_TRAJECTORY_FILE_BYTES  # noqa: E402
from .trajectory_files import OpenedTrajectories, TrajectoryFileError, read_trajectory_bytes  # noqa: E402

__all__ = [
    'available_dataset_files', 'check_composition', 'check_elements', 'check_space_group', 'checkpoint_folder',
    'CheckpointError', 'CheckpointInfo', 'compositional_validity', 'csp_matcher', 'CSP_MATCHER_TOLERANCES', 'space_group_number',
    'structural_validity', 'Coefficients', 'composition_text', 'Crystal', 'CrystalDiffusion',
    'CrystalError', 'DATA_DIR', 'DatasetError', 'DDIMCoefficients', 'DDPMCoefficients', 'DEFAULT_MAX_STEPS',
    'describe_device', 'energies_along', 'evenly_spaced_steps', 'fast_bfloat16', 'formula_text', 'FormulaError',
    'forward_noise', 'ForwardSetup', 'generate', 'HARD_MAX_STEPS', 'headline_metrics', 'latent_to_lattice',
    'lattice_to_latent', 'LatticeStats', 'list_checkpoints', 'LiveConfig', 'LiveTrainer', 'load_card', 'load_csv',
    'load_model', 'load_potential', 'make_sampler', 'make_schedule', 'match_rms', 'MATCHER_TOLERANCES', 'MAX_ATOMS',
    'MAX_BATCH_RELAX', 'MAX_FRAMES', 'MAX_LIVE_ATOMS', 'MAX_LIVE_CRYSTALS', 'MAX_LIVE_SECONDS', 'MAX_LIVE_STEPS',
    'MAX_SAMPLES', 'MAX_SPACE_GROUP', 'MAX_STRIP_PANELS', 'NO_PROTOTYPE_MATCH', 'NO_SPACE_GROUP_CONDITION',
    'NO_TEMPLATE', 'noise_prediction', 'parse_formula', 'PCCoefficients', 'Potential', 'PotentialUnavailable',
    'ProcessConfig', 'ProgressCallback', 'q_sample', 'q_sample_coords', 'SymmetricCell', 'constraint_from_template', 'symmetric_request', 'recommended', 'SamplingSetting', 'read_checkpoint', 'relax', 'relax_batch',
    'RelaxError', 'RelaxResult', 'render_gif', 'render_strip', 'resolve_data_file', 'resolve_device', 'sample',
    'sample_num_atoms', 'SampleRequest', 'SamplingConfig', 'SCHEDULE_NAMES', 'ScheduleValues', 'StabilityResult',
    'GROUP_CHOICES', 'group_predictor', 'SharedSampler', 'step_grid', 'SYMPREC', 'training_formula_units', 'training_space_group_predictor', 'training_summary',
    'training_template_library', 'Trajectory', 'VALID_MIN_DISTANCE', 'MAX_TRAJECTORY_FILE_BYTES',
    'OpenedTrajectories', 'TrajectoryFileError', 'read_trajectory_bytes', 'toy2d', 'cdvae', 'cdvae_latent',
    'validation_crystals'
]
