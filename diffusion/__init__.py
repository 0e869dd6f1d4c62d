"""Diffusion models for periodic crystals (plain PyTorch; never imports streamlit).

The small public API used by the app and the command line:

    load_model(name_or_path, device)          -> CrystalDiffusion   (checkpoints.py)
    list_checkpoints()                        -> [CheckpointInfo]   (shipped models + cards)
    generate(model, composition=..., ...)     -> Trajectory         (api.py)
    forward_noise(crystal, t, setup, seed)    -> Crystal            (api.py)
    make_schedule(name, T)                    -> NoiseSchedule      (schedules.py)
    Crystal.from_cif / .to_structure / ...                          (crystal.py)
"""
from .api import ForwardSetup, check_composition, forward_noise, generate
from .checkpoints import CheckpointError, CheckpointInfo, list_checkpoints, load_model
from .crystal import Crystal, CrystalBatch, CrystalError, lattice_parameters
from .data import DatasetError, load_csv, load_dataset
from .device import describe_device, resolve_device
from .formula import FormulaError, parse_formula
from .sampling import SAMPLERS, SamplingConfig
from .schedules import SCHEDULE_NAMES, NoiseSchedule, make_schedule
from .trajectory import Trajectory

__all__ = [
    "ForwardSetup", "check_composition", "forward_noise", "generate", "CheckpointError", "CheckpointInfo",
    "list_checkpoints", "load_model", "Crystal", "CrystalBatch", "CrystalError", "lattice_parameters",
    "DatasetError", "load_csv", "load_dataset", "describe_device", "resolve_device", "FormulaError",
    "parse_formula", "SAMPLERS", "SamplingConfig", "SCHEDULE_NAMES", "NoiseSchedule", "make_schedule", "Trajectory",
]
