"""Seconds per 20-atom crystal at a checkpoint's recommended settings, as a user meets them (issue #17).

Run:  .venv/bin/python benchmarks/default_setting_speed.py [--checkpoint mp_20] [--crystals 20] [--threads 2]
          [--settings default noise] [--precision float32]

Takes the first --crystals validation crystals of exactly 20 atoms and samples each one alone (batch of one,
seed 0), as ``sample --composition`` does: the vote, the template and the Wyckoff cell are looked up per
crystal (timed as "retrieval"), then the reverse process runs (timed as "sampling"). The one-time set-up
(loading the model, indexing the training crystals) is timed apart: the app and a long CLI run pay it once.
Prints a Markdown table; the figure the issue asks for is the median "total" of the default row.
"""
from __future__ import annotations

import argparse
import platform
import statistics
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

import torch  # noqa: E402

from diffusion.checkpoints import load_card, load_model, resolve  # noqa: E402
from diffusion.group_ranking import group_predictor  # noqa: E402
from diffusion.evaluation import (reference_crystals, training_space_group_predictor,  # noqa: E402
                                  training_template_library, EvaluationConfig)
from diffusion.placement import retrieve, sample_setting  # noqa: E402
from diffusion.recommended import recommended  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--checkpoint", default="mp_20")
    parser.add_argument("--crystals", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--settings", nargs="+", choices=("default", "noise"), default=("default", "noise"))
    parser.add_argument("--precision", choices=("float32", "bfloat16"), default="float32")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    started = time.perf_counter()
    model = load_model(args.checkpoint)
    card = load_card(resolve(args.checkpoint))
    vote = training_space_group_predictor(card)
    library = training_template_library(card)
    setup = time.perf_counter() - started
    crystals = [c for c in reference_crystals(EvaluationConfig(checkpoint=args.checkpoint), card)
                if c.num_atoms == 20][: args.crystals]

    print(f"checkpoint {args.checkpoint}; {len(crystals)} validation crystals of 20 atoms, one at a time; "
          f"{platform.machine()}, torch {torch.__version__}, {args.threads} threads, {args.precision}; "
          f"set-up (model + training-crystal indexes) {setup:.1f} s\n")
    print("| setting | retrieval (median s) | sampling (median s) | total per crystal (median s) | max total (s) |")
    print("|---|---|---|---|---|")
    for label in args.settings:
        setting = recommended(card, None if label == "default" else "noise")
        if setting is None:
            raise SystemExit(f"{args.checkpoint}'s card has no recommended setting")
        predictor = group_predictor(setting.group_choice, vote, model, library)
        numbers = [c.atomic_numbers.tolist() for c in crystals]
        sample_setting(model, numbers[0], setting, [0], predictor, library, precision=args.precision)  # warm-up
        lookups, sampling = [], []
        for atoms in numbers:
            begin = time.perf_counter()
            retrieve(atoms, setting, predictor, library)   # the first time for this composition
            lookups.append(time.perf_counter() - begin)
            begin = time.perf_counter()
            # retrieves again, from the predictor's cache when the model chose the group (the vote is recomputed:
            # a few milliseconds), so this is the sampling
            sample_setting(model, atoms, setting, [0], predictor, library, precision=args.precision)
            sampling.append(time.perf_counter() - begin)
        totals = [r + s for r, s in zip(lookups, sampling)]   # what a user waits for a new composition
        print(f"| {label}: {setting.describe()} | {statistics.median(lookups):.3f} | "
              f"{statistics.median(sampling):.3f} | {statistics.median(totals):.3f} | {max(totals):.3f} |", flush=True)


if __name__ == "__main__":
    main()
