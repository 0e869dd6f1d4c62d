"""Steps vs match rate vs time for the samplers on a checkpoint's validation split (issue 5).

Run:  .venv/bin/python benchmarks/fast_sampler.py --checkpoint perov_5 --limit 200 [--threads 2] [--precision bfloat16]

Each row is one `python -m diffusion evaluate` run (same crystals, same seeds); prints a
Markdown table and writes benchmarks/results/fast_sampler_<checkpoint>[_<precision>].json.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

from diffusion.cli import build_parser  # noqa: E402
from diffusion.evaluation import EvaluationConfig, evaluate_checkpoint  # noqa: E402
from diffusion.precision import PRECISIONS  # noqa: E402

SETTINGS = [("ddpm", None), ("pc", None), ("ddim", 200), ("ddim", 100), ("ddim", 50), ("ddim", 20), ("ddpm", 100)]


def _row(text: str) -> tuple[str, int | None]:
    """'ddim:50' -> ("ddim", 50); 'ddpm' -> ("ddpm", None): all T steps."""
    sampler, _, steps = text.partition(":")
    if sampler not in ("ddpm", "pc", "ddim") or (steps and not steps.isdigit()):
        raise argparse.ArgumentTypeError(f"'{text}' is not SAMPLER[:STEPS] with SAMPLER ddpm, pc or ddim")
    return sampler, int(steps) if steps else None


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--checkpoint", default="perov_5")
    parser.add_argument("--limit", type=int, default=200)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", choices=PRECISIONS, default="float32")
    parser.add_argument("--rows", nargs="+", default=None, metavar="SAMPLER[:STEPS]", type=_row,
                        help="rows to run, e.g. ddim:50 ddpm (default: " + " ".join(
                            f"{s}:{n}" if n else s for s, n in SETTINGS) + ")")
    args = parser.parse_args()
    settings = args.rows or SETTINGS
    import torch
    torch.set_num_threads(args.threads)
    rows = []
    print("| sampler | network steps | match rate | RMSE | validity | volume error | seconds / structure |")
    print("|---|---|---|---|---|---|---|")
    for sampler, steps in settings:
        argv = ["evaluate", "--checkpoint", args.checkpoint, "--limit", str(args.limit), "--sampler", sampler,
                "--device", args.device, "--precision", args.precision]
        if steps:
            argv += ["--steps", str(steps)]
        config = EvaluationConfig.from_args(build_parser().parse_args(argv))
        result = evaluate_checkpoint(config, "python -m diffusion " + " ".join(argv))
        m = result["metrics"]
        evaluations = result["steps"] * (2 if sampler == "pc" else 1)
        fmt = lambda v, spec: "n/a" if v is None else format(v, spec)
        print(f"| {sampler} | {evaluations} | {fmt(m['match_rate'], '.1%')} | {fmt(m['rmse'], '.4f')} | "
              f"{fmt(m['validity'], '.1%')} | {fmt(m['volume_error'], '.3f')} | {result['seconds_per_structure']:.3f} |",
              flush=True)
        rows.append(result)
    suffix = "" if args.precision == "float32" else f"_{args.precision}"
    if args.limit != 200 or args.rows:
        suffix += f"_n{args.limit}" + "".join(f"_{s}{n or ''}" for s, n in args.rows or [])
    out = ROOT / "benchmarks" / "results" / f"fast_sampler_{args.checkpoint}{suffix}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
