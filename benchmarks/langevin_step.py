"""Choose a CDVAE checkpoint's Langevin step size and steps per level on its validation split (issue 20).

Run:  .venv/bin/python benchmarks/langevin_step.py --checkpoint checkpoints/perov_5_cdvae.pt \\
          --etas 0.1 0.3 1.0 --steps-per-level 10 [--limit N] [--threads 2] [--apply]

Each (eta, steps per level) pair is one `python -m diffusion evaluate --num-generated 0 --step-lr ETA --steps N`
run: the validation crystals are encoded and decoded by annealed Langevin dynamics with the same seeds, and the
reconstruction match rate is the score (CDVAE's reconstruction metric). Prints a Markdown table and writes
benchmarks/results/langevin_step_<checkpoint>.json. With --apply the best pair becomes the checkpoint's default
(what `sample`, `evaluate` and the app use when no --step-lr / --steps is given; weights unchanged); every row is
stored in the card's metrics and the table in its `langevin_choice`.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from diffusion.checkpoints import load_card, resolve, set_langevin_defaults  # noqa: E402
from diffusion.cli import build_parser  # noqa: E402
from diffusion.evaluation import EvaluationConfig, evaluate_checkpoint  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--etas", nargs="+", type=float, default=[0.1, 0.3, 1.0])
    parser.add_argument("--steps-per-level", nargs="+", type=int, default=[10])
    parser.add_argument("--limit", type=int, default=None, help="first N validation crystals (default: all)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--apply", action="store_true", help="store the best pair in the checkpoint")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    path = resolve(args.checkpoint)
    command = "python benchmarks/langevin_step.py " + " ".join(sys.argv[1:])
    rows = []
    for n in args.steps_per_level:
        for eta in args.etas:
            argv = ["evaluate", "--checkpoint", str(path), "--num-generated", "0", "--step-lr", f"{eta:g}",
                    "--steps", str(n)] + (["--limit", str(args.limit)] if args.limit else []) + (
                    ["--update-card"] if args.apply else [])
            result = evaluate_checkpoint(EvaluationConfig.from_args(build_parser().parse_args(argv)), command)
            recon = result["reconstruction"]
            rows.append({"step_lr": eta, "steps_per_level": n, "match_rate": recon["match_rate"], "rmse": recon["rmse"],
                         "structural_validity": recon["structural_validity"],
                         "seconds_per_structure": recon["seconds_per_structure"]})
            print(f"eta {eta:g}, {n} steps per level: match {recon['match_rate']}", file=sys.stderr, flush=True)
    n_crystals = result["n"]
    lines = [f"{path.stem} at step {result['checkpoint_steps']}: reconstruction of {n_crystals} validation crystals",
             "", "| eta | steps per level | match rate | RMSE | struct. validity | s per crystal |", "|---|---|---|---|---|---|"]
    lines += [f"| {r['step_lr']:g} | {r['steps_per_level']} | {r['match_rate']} | {r['rmse']} | {r['structural_validity']} | "
              f"{r['seconds_per_structure']} |" for r in rows]
    best = max(rows, key=lambda r: (r["match_rate"], -(r["rmse"] or 1.0), -r["seconds_per_structure"]))
    lines += ["", f"best: eta {best['step_lr']:g}, {best['steps_per_level']} steps per level"]
    print("\n".join(lines))
    out = ROOT / "benchmarks" / "results" / f"langevin_step_{path.stem}.json"
    out.write_text(json.dumps({"command": command, "n": n_crystals, "at_step": result["checkpoint_steps"], "rows": rows,
                               "chosen": best}, indent=2) + "\n")
    if args.apply:
        set_langevin_defaults(path, best["step_lr"], best["steps_per_level"],
                              {"command": command, "n": n_crystals, "at_step": result["checkpoint_steps"], "rows": rows,
                               "chosen": {"step_lr": best["step_lr"], "steps_per_level": best["steps_per_level"]}})
        print(f"stored in {path}: eta {best['step_lr']:g}, {best['steps_per_level']} steps per level "
              f"({load_card(path)['process']['langevin_step']:g} in its card)")


if __name__ == "__main__":
    main()
