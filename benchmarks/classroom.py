"""A classroom at once: N sessions press Generate together on one shared model (issue #23). Prints Markdown tables.

Run:  .venv/bin/python benchmarks/classroom.py [--sessions 30] [--checkpoint mp_20] [--sampler ddim] [--steps 100]
          [--threads 2] [--repeats 3] [--out benchmarks/results/classroom.md]

Each session is a thread that calls what the Generate page calls (``diffusion.api.generate`` with every frame
recorded, one crystal, its own formula and seed) at the same moment (a barrier), on one model object, as
Streamlit's sessions share the cached model. Two ways are timed in the same run, alternately:

- alone: every session runs its own ``sampling.sample`` (the app before ``SharedSampler``): the threads share
  the cores and the interpreter, so each waits for nearly all of them;
- shared: the sessions go through one ``SharedSampler`` (what the app does now): requests that arrive together
  run as one batch, each crystal with its own seed.

The wait of each session is from the barrier to its own trajectory; the table gives the median, the 95th
percentile and the slowest over all sessions of all repeats. Identity: every shared result against the same
request run alone in a quiet process (largest difference in fractional coordinates and lattice, and whether
the final structures have the same space group).
"""
from __future__ import annotations

import argparse
import datetime
import statistics
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from diffusion.api import SharedSampler, generate, load_model, sample, space_group_number  # noqa: E402

# what a class types: the Generate page's one-click examples and textbook formulas (cells of 1-20 atoms)
CLASS_FORMULAS = ("NaCl", "Si2", "SrTiO3", "Ti2O4", "Ga2N2", "Zn2O2", "GaAs", "CaF2", "CsCl", "MgO", "LiF", "Cu",
                  "Fe", "BaTiO3", "KMgF3", "Li4Fe4P4O16", "Fe4O6", "C2", "Ge2", "BaZrO3")


def one_class(model, sessions: int, run, sampler: str, steps: int, guidance: float) -> tuple[list[float], list, list]:
    """(seconds each session waited, trajectories, errors) for ``sessions`` threads started together."""
    waits, results, errors = [0.0] * sessions, [None] * sessions, [None] * sessions
    barrier = threading.Barrier(sessions)

    def session(i: int) -> None:
        barrier.wait()
        started = time.perf_counter()
        try:
            results[i] = generate(model, composition=CLASS_FORMULAS[i % len(CLASS_FORMULAS)], sampler=sampler,
                                  steps=steps, seed=i, guidance=guidance, record="all", run=run)
        except Exception as error:  # counted and shown: a benchmark must not hide a failure
            errors[i] = error
        waits[i] = time.perf_counter() - started

    threads = [threading.Thread(target=session, args=(i,)) for i in range(sessions)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return waits, results, errors


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sessions", type=int, default=30)
    parser.add_argument("--checkpoint", default="mp_20")
    parser.add_argument("--sampler", default="ddim")
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--guidance", type=float, default=0.0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=None, help="also write the tables to this file")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = load_model(args.checkpoint, "cpu")
    generate(model, composition="NaCl", sampler=args.sampler, steps=args.steps)   # traces and caches warm

    waits = {"alone": [], "shared": []}
    errors = {"alone": 0, "shared": 0}
    runs, shared_results = [], None
    for _ in range(args.repeats):
        for mode in ("alone", "shared"):
            shared = SharedSampler()
            got, results, failed = one_class(model, args.sessions, sample if mode == "alone" else shared.sample,
                                             args.sampler, args.steps, args.guidance)
            waits[mode] += got
            errors[mode] += sum(e is not None for e in failed)
            if mode == "shared":
                runs.append(shared.stats.runs)
                shared_results = results

    # identity: each shared result against the same request alone
    worst, same_group = 0.0, 0
    for i, result in enumerate(shared_results):
        if result is None:
            continue
        lone = generate(model, composition=CLASS_FORMULAS[i % len(CLASS_FORMULAS)], sampler=args.sampler,
                        steps=args.steps, seed=i, guidance=args.guidance, record="all")
        worst = max(worst, float((lone.frac_coords - result.frac_coords).abs().max()),
                    float((lone.lattice - result.lattice).abs().max()))
        same_group += space_group_number(lone.final_structures()[0]) == space_group_number(result.final_structures()[0])

    lines = [
        f"Run: `.venv/bin/python benchmarks/classroom.py --sessions {args.sessions} --checkpoint {args.checkpoint} "
        f"--sampler {args.sampler} --steps {args.steps} --guidance {args.guidance} --threads {args.threads} "
        f"--repeats {args.repeats}` ({datetime.date.today()}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, one model object shared by all sessions)",
        "",
        f"{args.sessions} sessions press Generate at the same moment ({args.checkpoint}, {args.sampler} {args.steps} "
        f"steps, every frame recorded, one crystal each, formulas of 1-20 atoms); seconds each session waits, "
        f"over {args.repeats} classes:",
        "",
        "| sampling | median | 95th percentile | slowest | errors | network batches per class |",
        "|---|---|---|---|---|---|",
    ]
    for mode in ("alone", "shared"):
        w = waits[mode]
        batches = f"{args.sessions}" if mode == "alone" else "/".join(str(r) for r in runs)
        lines.append(f"| {mode} | {statistics.median(w):.2f} s | {percentile(w, 0.95):.2f} s | {max(w):.2f} s | "
                     f"{errors[mode]} | {batches} |")
    lines += ["", f"Identity: the {sum(r is not None for r in shared_results)} shared results of the last class against "
              f"the same requests run alone: largest difference {worst:.1e} (fractional coordinates and lattice "
              f"vectors, every frame); same final space group for {same_group} of them."]
    text = "\n".join(lines)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
