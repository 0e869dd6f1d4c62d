"""Diffusion in two dimensions, before crystals (issue 22): the course figure of forward and
reverse diffusion on a 2D Swiss roll (Sohl-Dickstein et al. 2015), on the crystal model's schedules.

    make_dataset(name, n, seed)              -> ToyDataset      (data.py: swiss_roll, two_moons, ...)
    make_process(schedule, T, periodic)      -> ToyProcess      (process.py: q_sample, forward_numbers)
    train_toy(ToyTrainConfig(), data)        -> ToyTrainResult  (train.py; .model is a ToyDenoiser)
    ddpm_path / ddim_path / pc_path(model, start_noise(...)) -> ToyPath (sampling.py; points (K, n, 2))
    drift_field(model, t, grid)              -> DriftField      (sampling.py)
    fit_gmm(points) / mmd(x, y)              -> GaussianMixtureFit / float (mixture.py, metrics.py)
"""
from .data import DATASETS, ToyDataset, make_dataset
from .metrics import median_bandwidth, mmd
from .mixture import GaussianMixtureFit, fit_gmm, gmm_density, gmm_log_density, gmm_sample
from .model import ToyDenoiser
from .process import ForwardNumbers, ToyProcess, forward_numbers, forward_path, make_process, q_sample
from .sampling import (SAMPLERS, DriftField, ToyPath, ddim_path, ddpm_path, drift_field, grid_points, pc_path,
                       sample_path, start_noise)
from .render import points_gif
from .train import ToyTrainConfig, ToyTrainResult, train_toy, untrained_model

__all__ = [
    "DATASETS", "ToyDataset", "make_dataset", "median_bandwidth", "mmd", "GaussianMixtureFit", "fit_gmm",
    "gmm_density", "gmm_log_density", "gmm_sample", "ToyDenoiser", "ForwardNumbers", "ToyProcess",
    "forward_numbers", "forward_path", "make_process", "q_sample", "SAMPLERS", "DriftField", "ToyPath",
    "ddim_path", "ddpm_path", "drift_field", "grid_points", "pc_path", "sample_path", "start_noise",
    "ToyTrainConfig", "ToyTrainResult", "train_toy", "untrained_model", "points_gif",
]
