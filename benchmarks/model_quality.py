"""Quality of the shipped checkpoints on their own validation splits (issue 3). Prints a table.

Run:  .venv/bin/python benchmarks/model_quality.py [--checkpoints NAME ...] [--limit N] [--threads 2]
          [--sampler pc --steps 100] [--precision bfloat16] [--update-cards]

For each CSP checkpoint in checkpoints/: composition-only match rate / RMSE (1000-step
DDPM by default, k=1), and where the model takes a space group also with the true group and
with the group voted from the composition by its training crystals (`--space-group predicted`,
still composition only); --guidance sets w for those two. The validation split is rebuilt from
each model card (same files, fraction and seed as training).
With --templates also the template-based rows (composition only): the chemically nearest training
crystal of the same prototype with the query's elements, as it is (t0 = 0) and as the starting point
of the reverse process noised to --template-step (with the predicted group where the model takes one).
The mp_20 figures of docs/experiments.md#mp_20-and-the-34-target: --checkpoints mp_20 --sampler pc --steps 100 --guidance 2 --precision bfloat16
(pc with the checkpoint's own corrector step size, chosen by benchmarks/corrector_step.py), and the earlier
DDIM rows with --sampler ddim --steps 100 --guidance 2 --templates.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

from diffusion.checkpoints import list_checkpoints  # noqa: E402
from diffusion.cli import build_parser  # noqa: E402
from diffusion.evaluation import EvaluationConfig, evaluate_checkpoint  # noqa: E402
from diffusion.precision import PRECISIONS  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--sampler", default="ddpm")
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--guidance", type=float, default=0.0)
    parser.add_argument("--precision", choices=PRECISIONS, default="float32")
    parser.add_argument("--checkpoints", nargs="+", default=None, help="only these checkpoints (default: every CSP one)")
    parser.add_argument("--update-cards", action="store_true")
    parser.add_argument("--templates", action="store_true",
                        help="also start from templates: as they are (t0 = 0) and noised to --template-step")
    parser.add_argument("--template-step", type=int, default=300)
    args = parser.parse_args()
    import torch
    torch.set_num_threads(args.threads)
    print("| model | split | n | sampler | condition | match rate | RMSE | validity | volume error | in asked group | wall time |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for info in list_checkpoints():
        if info.card.get("task") != "csp" or (args.checkpoints and info.name not in args.checkpoints):
            continue
        # (space-group mode, template step or None): from noise, then from a template (as is, and noised to t0)
        has_group = bool(info.card.get("conditions", {}).get("space_group"))
        modes = [("none", None)] + ([("csv", None), ("predicted", None)] if has_group else [])
        if args.templates:
            modes += [("none", 0), ("predicted" if has_group else "none", args.template_step)]
        for mode, template_step in modes:
            argv = ["evaluate", "--checkpoint", info.name, "--sampler", args.sampler, "--space-group", mode,
                    "--precision", args.precision]
            if args.steps:
                argv += ["--steps", str(args.steps)]
            if mode != "none" and args.guidance:
                argv += ["--guidance", str(args.guidance)]
            if template_step is not None:
                argv += ["--template-step", str(template_step)]
            if args.limit:
                argv += ["--limit", str(args.limit)]
            if args.update_cards:
                argv.append("--update-card")
            start = time.time()
            config = EvaluationConfig.from_args(build_parser().parse_args(argv))
            r = evaluate_checkpoint(config, "python -m diffusion " + " ".join(argv))
            m = r["metrics"]
            pct = lambda v: "n/a" if v is None else f"{v:.1%}"
            rmse = "n/a" if m["rmse"] is None else f"{m['rmse']:.4f}"
            condition = {"none": "composition", "csv": "composition + true space group",
                         "predicted": "composition (+ predicted space group)"}[mode]
            if template_step == 0:
                condition = "composition: the template alone (nearest training crystal, substituted)"
            elif template_step is not None:
                condition += f", from the template noised to t0 = {template_step}"
            sampler = f"{r['sampler']} {r['steps']}" + (f", step size {r['step_lr']:g}" if r.get("step_lr") else "")
            sampler += "" if args.precision == "float32" else f", {args.precision}"
            print(f"| {info.name} | own validation | {m['n']} | {sampler} | {condition} | {pct(m['match_rate'])} | {rmse} | "
                  f"{pct(m['validity'])} | {m['volume_error']:.3f} | {pct(m['space_group_rate'])} | "
                  f"{time.time() - start:.0f} s |", flush=True)


if __name__ == "__main__":
    main()
