"""Diffusion in two dimensions (issue 22): training time and sample quality of the toy models. Prints a table.

Run:  .venv/bin/python benchmarks/toy2d_training.py [--threads 2] [--datasets swiss_roll ...] [--max-steps 3000]
          [--points 2000] [--schedule linear]

For each data set (``make_dataset(name, points, seed=0)``) a ``ToyDenoiser`` is trained with the default
``ToyTrainConfig`` (or --max-steps, --schedule), and the untrained model (same seed, same initial
weights) and the trained one each sample ``--points`` points with DDPM (all T steps), DDIM (50 steps)
and predictor-corrector (all T steps, one Langevin move per step), every sampler from the same start
noise (seed 123). Each cell is MMD(samples, data) untrained -> trained: RBF kernel with the bandwidth
fixed per data set to the median heuristic on the data (chord distance on the torus), so the cells of a
row compare. Two references: ``fresh data``, a second draw of the data set (seed 1) -- the MMD of a
perfect sampler up to sampling noise --, and ``GMM``, an 8-component Gaussian mixture fitted by EM.
``train s`` is the wall time of ``train_toy`` with --threads torch threads.
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from diffusion.toy2d import (DATASETS, SAMPLERS, ToyTrainConfig, fit_gmm, gmm_sample, make_dataset,  # noqa: E402
                             median_bandwidth, mmd, sample_path, start_noise, train_toy, untrained_model)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--datasets", nargs="+", choices=DATASETS, default=list(DATASETS))
    parser.add_argument("--max-steps", type=int, default=None, help="default: ToyTrainConfig's")
    parser.add_argument("--schedule", default=None, help="default: ToyTrainConfig's")
    parser.add_argument("--points", type=int, default=2000)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    overrides = {k: v for k, v in (("max_steps", args.max_steps), ("schedule", args.schedule)) if v is not None}
    config = dataclasses.replace(ToyTrainConfig(), **overrides)

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; {config}\n")
    print("| data set | steps | train s | " + " | ".join(f"{m} MMD untrained -> trained" for m in SAMPLERS)
          + " | sampling s (ddpm/ddim/pc) | GMM | fresh data |")
    print("|---|---|---|" + "---|" * len(SAMPLERS) + "---|---|---|")
    for name in args.datasets:
        data = make_dataset(name, args.points, seed=0)
        bandwidth = median_bandwidth(data.points, data.periodic)
        score = lambda points: mmd(points, data.points, bandwidth, data.periodic)  # noqa: E731
        result = train_toy(config, data)
        untrained = untrained_model(config, data.periodic)
        x_T = start_noise(result.model.process, args.points, seed=123)
        cells, seconds = [], []
        for method in SAMPLERS:
            before = score(sample_path(untrained, method, x_T, seed=1).samples)
            start = time.perf_counter()
            after = score(sample_path(result.model, method, x_T, seed=1).samples)
            seconds.append(time.perf_counter() - start)
            cells.append(f"{before:.3f} -> {after:.4f}")
        gmm = score(gmm_sample(fit_gmm(data.points, 8), args.points, seed=1))
        fresh = score(make_dataset(name, args.points, seed=1).points)
        print(f"| {name} | {result.steps} | {result.seconds:.1f} | " + " | ".join(cells)
              + f" | {'/'.join(f'{s:.1f}' for s in seconds)} | {gmm:.4f} | {fresh:.4f} |", flush=True)


if __name__ == "__main__":
    main()
