"""The Train page in class (issue 24): how often *Sample now* rebuilds a training crystal. Prints a table.

Run:  .venv/bin/python benchmarks/live_training.py [--train-seeds 0 1 2] [--sample-seeds 10]
          [--entries 9 52] [--steps 5000] [--replicas 16] [--lr 0.002] [--T 200] [--out FILE.md]

Defaults are the page's (explorer/live_training.py: crystals, optimizer steps, T, learning rate, sampler,
``LiveConfig``'s replicas); a flag changes one of them. For each training seed a ``LiveTrainer`` trains in
its background thread (one torch thread, as on the page), then *Sample now* is run with sample seeds
0..N-1 on each training crystal (the page's sampler over all T steps) and counted as rebuilt when
StructureMatcher (the CSP tolerances) matches the sample to that crystal. ``train s`` is the trainer's
wall time.
"""
from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from diffusion.api import LiveConfig, LiveTrainer, composition_text, generate, load_csv, match_rms  # noqa: E402
from diffusion.live import replicas_for  # noqa: E402
from explorer.live_training import DEFAULT_ENTRIES, DEFAULTS  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--train-seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--sample-seeds", type=int, default=10)
    parser.add_argument("--entries", type=int, nargs="+", default=list(DEFAULT_ENTRIES),
                        help="0-based rows of data/perov_5/val.csv.gz")
    parser.add_argument("--steps", type=int, default=DEFAULTS["train.steps"])
    parser.add_argument("--replicas", type=int, default=LiveConfig().replicas)
    parser.add_argument("--lr", type=float, default=DEFAULTS["train.lr"])
    parser.add_argument("--T", type=int, default=DEFAULTS["train.T"])
    parser.add_argument("--out", default="", help="also write the table to this Markdown file")
    args = parser.parse_args()

    data = load_csv(ROOT / "data" / "perov_5" / "val.csv.gz")
    crystals = [data.crystals[i] for i in args.entries]
    sampler = DEFAULTS["train.sampler"]
    lines = [f"Train page: {len(crystals)} crystals ({', '.join(composition_text(c) for c in crystals)}; "
             f"perov_5/val rows {args.entries}), {args.steps} steps, {replicas_for(crystals, LiveConfig(replicas=args.replicas))} "
             f"copies each per step, lr {args.lr:g} (cosine to 0), T = {args.T}; Sample now: {sampler}, all T steps, "
             f"seeds 0-{args.sample_seeds - 1}",
             f"machine: {platform.machine()}, {platform.system()}; the trainer uses one torch thread",
             "", "| training seed | train s | " + " | ".join(composition_text(c) for c in crystals) + " | all |",
             "|---|---|" + "---|" * (len(crystals) + 1)]
    total = shown = 0
    for train_seed in args.train_seeds:
        config = LiveConfig(steps=args.steps, num_steps=args.T, lr=args.lr, seed=train_seed, replicas=args.replicas,
                            max_seconds=600.0)
        trainer = LiveTrainer(crystals, config)
        trainer.start()
        trainer.join()
        if trainer.status != "finished":
            raise SystemExit(f"training ended with '{trainer.status}'")
        seconds = trainer.history[-1].seconds
        model = trainer.snapshot()
        counts = []
        for target in crystals:
            rebuilt = 0
            for seed in range(args.sample_seeds):
                trajectory = generate(model, composition=composition_text(target), sampler=sampler, steps=args.T, seed=seed)
                final = trajectory.structure(frame=trajectory.num_frames - 1)
                rebuilt += match_rms(final, target.to_structure()) is not None
            counts.append(rebuilt)
        total, shown = total + sum(counts), shown + args.sample_seeds * len(crystals)
        lines.append(f"| {train_seed} | {seconds:.0f} | " + " | ".join(f"{c} of {args.sample_seeds}" for c in counts)
                     + f" | {sum(counts)} of {args.sample_seeds * len(crystals)} |")
        print(lines[-1], flush=True)
    lines += ["", f"rebuilt in {total} of {shown} presses ({100 * total / shown:.0f} %)"]
    text = "\n".join(lines)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
