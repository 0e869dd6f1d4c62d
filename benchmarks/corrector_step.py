"""Choose a checkpoint's predictor-corrector step size on its validation split (issue 3).

Run:  .venv/bin/python benchmarks/corrector_step.py --checkpoint mp_20 --steps 100 --values 5e-6 1e-5 2e-5 \
          [--space-group predicted --guidance 2] [--precision bfloat16] [--limit N] [--threads 2] [--apply]

Each value is one `python -m diffusion evaluate --sampler pc --step-lr VALUE` run on the same crystals with
the same seeds (one sample each, k = 1), after a DDIM row for reference. Prints a Markdown table and writes
benchmarks/results/corrector_step_<checkpoint>.json. With --apply, the value with the highest match rate
becomes the checkpoint's default (ProcessConfig.corrector_step_lr: what `sample`, `evaluate` and the app use
for pc when no --step-lr is given); the weights are unchanged, every row is stored in the model card's
metrics (as `evaluate --update-card` does) and the table in its `corrector_step_lr_choice`.
DiffCSP recommends 5e-7 for Perov-5 and 1e-5 for MP-20 structure prediction (its released evaluation
settings); this script measures it for our own models instead of assuming it.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

from diffusion.checkpoints import resolve, set_corrector_step_lr  # noqa: E402
from diffusion.cli import build_parser  # noqa: E402
from diffusion.evaluation import EvaluationConfig, evaluate_checkpoint  # noqa: E402
from diffusion.precision import PRECISIONS  # noqa: E402
from diffusion.sampling import check_step_lr  # noqa: E402


def _step_size(text: str) -> float:
    try:
        return check_step_lr(float(text), "a step size")
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default="mp_20")
    parser.add_argument("--values", nargs="+", type=_step_size, default=[5e-6, 1e-5, 2e-5])
    parser.add_argument("--steps", type=int, default=100, help="network steps of the pc grid (each does two evaluations)")
    parser.add_argument("--space-group", choices=("none", "csv", "predicted"), default="none")
    parser.add_argument("--guidance", type=float, default=0.0)
    parser.add_argument("--limit", type=int, default=None, help="first N validation crystals (default: all)")
    parser.add_argument("--precision", choices=PRECISIONS, default="float32")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--apply", action="store_true", help="store the best value in the checkpoint")
    parser.add_argument("--results", default=None, help="where to write the JSON rows "
                                                        "(default benchmarks/results/corrector_step_<checkpoint>.json)")
    args = parser.parse_args()
    import torch
    torch.set_num_threads(args.threads)

    common = ["--checkpoint", args.checkpoint, "--steps", str(args.steps), "--space-group", args.space_group,
              "--guidance", str(args.guidance), "--precision", args.precision, "--device", args.device]
    if args.limit:
        common += ["--limit", str(args.limit)]
    runs = [("ddim", None)] + [("pc", v) for v in args.values]
    rows = []
    print(f"{args.checkpoint}, validation split, {args.steps} steps, space group {args.space_group}, "
          f"w = {args.guidance:g}, {args.precision}, k = 1")
    print("| sampler | step size | match rate | RMSE | validity | in asked group | seconds / structure |")
    print("|---|---|---|---|---|---|---|")
    for sampler, value in runs:
        argv = ["evaluate", *common, "--sampler", sampler] + (["--step-lr", f"{value:g}"] if value else [])
        argv += ["--update-card"] if args.apply else []
        config = EvaluationConfig.from_args(build_parser().parse_args(argv))
        result = evaluate_checkpoint(config, "python -m diffusion " + " ".join(argv))
        m = result["metrics"]
        fmt = lambda v, spec: "n/a" if v is None else format(v, spec)
        print(f"| {sampler} | {value or '-'} | {fmt(m['match_rate'], '.1%')} | {fmt(m['rmse'], '.4f')} | "
              f"{fmt(m['validity'], '.1%')} | {fmt(m.get('space_group_rate'), '.1%')} | "
              f"{result['seconds_per_structure']:.3f} |", flush=True)
        rows.append({"sampler": sampler, "step_lr": value, "n": m["n"], "match_rate": m["match_rate"],
                     "rmse": m["rmse"], "validity": m["validity"], "checkpoint_steps": result["checkpoint_steps"],
                     "seconds_per_structure": result["seconds_per_structure"], "command": result["command"]})
    out = Path(args.results or ROOT / "benchmarks" / "results" / f"corrector_step_{args.checkpoint}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(rows, indent=2) + "\n")
    pc_rows = [r for r in rows if r["sampler"] == "pc"]
    best = max(pc_rows, key=lambda r: (r["match_rate"] or 0.0, -(r["rmse"] or 1.0)))
    print(f"best: step size {best['step_lr']:g} ({(best['match_rate'] or 0.0):.1%}); results in {out}")
    if args.apply:
        command = "python benchmarks/corrector_step.py " + " ".join(sys.argv[1:])
        set_corrector_step_lr(resolve(args.checkpoint), best["step_lr"], {
            "command": command, "at_step": best["checkpoint_steps"], "chosen": best["step_lr"],
            "rows": [{k: r[k] for k in ("sampler", "step_lr", "n", "match_rate", "rmse")} for r in rows]})
        print(f"stored in {args.checkpoint}: pc now uses step size {best['step_lr']:g} unless --step-lr is given")


if __name__ == "__main__":
    main()
