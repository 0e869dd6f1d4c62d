"""Match rate with and without the Wyckoff constraint (symmetry-constrained sampling, issue #17 item 3).

Run:  .venv/bin/python benchmarks/symmetry_constrained.py --checkpoint mp_20 --limit 100 --sampler ddim --steps 100 \
          --space-group predicted --guidance 2 [--threads 1] [--json FILE]

The first --limit crystals of the checkpoint's own validation split (as `evaluate` takes them), sampled from noise
twice with the same seeds (k = 1): plain, and with every frame projected into the group and the Wyckoff positions
of the template in the asked group (``diffusion/wyckoff.py``); crystals without such a template are sampled plain
in both runs. Scored as `evaluate` scores (StructureMatcher, validity, spglib group at 0.1 A).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from diffusion.checkpoints import load_card, load_model, resolve  # noqa: E402
from diffusion.evaluation import (EvaluationConfig, reference_crystals, training_space_group_predictor,  # noqa: E402
                                  training_template_library)
from diffusion.metrics import aggregate_csp, csp_matcher, match_rms, score_csp  # noqa: E402
from diffusion.sampling import SampleRequest, SamplingConfig, sample  # noqa: E402
from diffusion.wyckoff import constraint_from_template  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default="mp_20")
    parser.add_argument("--limit", type=int, default=100)
    parser.add_argument("--sampler", default="ddim", choices=("ddpm", "pc", "ddim"))
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--space-group", default="predicted", choices=("predicted", "csv"))
    parser.add_argument("--guidance", type=float, default=2.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    path = resolve(args.checkpoint)
    model, card = load_model(path, "cpu"), load_card(path)
    known = set(model.normalization.elements)
    crystals = [c for c in reference_crystals(EvaluationConfig(checkpoint=args.checkpoint), card)
                if c.num_atoms <= 100 and set(c.atomic_numbers.tolist()) <= known][: args.limit]
    if args.space_group == "predicted":
        predictor = training_space_group_predictor(card)
        groups = [(g.space_group if g else 0) for g in (predictor.predict(c.atomic_numbers.tolist()) for c in crystals)]
    else:
        groups = [c.space_group for c in crystals]
    library = training_template_library(card)
    cells, why = [], {}
    for crystal, group in zip(crystals, groups):
        cell = None
        if group:
            try:
                cell = constraint_from_template(library.template(crystal.atomic_numbers.tolist(), group), group)
            except ValueError as error:
                key = str(error).split(",")[0][:60]
                why[key] = why.get(key, 0) + 1
        cells.append(cell)
    config = SamplingConfig(sampler=args.sampler, steps=args.steps, guidance=args.guidance, record="final")
    seeds = [args.seed + i for i in range(len(crystals))]
    results = {"checkpoint": path.stem, "n": len(crystals), "sampler": args.sampler, "steps": args.steps,
               "space_group": args.space_group, "guidance": args.guidance, "seed": args.seed,
               "constrained": sum(c is not None for c in cells), "without_template": why,
               "command": "python benchmarks/symmetry_constrained.py " + " ".join(sys.argv[1:])}
    matcher = csp_matcher()
    for name in ("plain", "wyckoff"):
        start, structures = time.time(), []
        for offset in range(0, len(crystals), args.batch_size):
            rows = range(offset, min(offset + args.batch_size, len(crystals)))
            use = [name == "wyckoff" and cells[i] is not None for i in rows]
            atoms = [tuple(cells[i].constraint.atomic_numbers.tolist()) if u else tuple(crystals[i].atomic_numbers.tolist())
                     for i, u in zip(rows, use)]
            request = SampleRequest(num_atoms=tuple(len(a) for a in atoms), seeds=tuple(seeds[i] for i in rows),
                                    atomic_numbers=tuple(atoms), space_group=tuple(groups[i] for i in rows),
                                    symmetry=tuple(cells[i].constraint if u else None for i, u in zip(rows, use))
                                    if any(use) else None)
            trajectory = sample(model, request, config)
            structures += [trajectory.structure(frame=trajectory.num_frames - 1, crystal=b) for b in range(len(rows))]
        seconds = time.time() - start
        scores, raw = [], []
        for crystal, structure, group in zip(crystals, structures, groups):
            truth = crystal.to_structure()
            scores.append([score_csp(structure, truth, group, matcher)])
            raw.append(match_rms(structure, truth, matcher) is not None)
        metrics = aggregate_csp(scores, raw).to_dict()
        subset = [i for i, c in enumerate(cells) if c is not None]
        matched = sum(scores[i][0].rms is not None for i in subset)
        results[name] = {"sampling_seconds": round(seconds, 1), "metrics": metrics,
                         "match_rate_constrained_subset": round(matched / max(1, len(subset)), 4),
                         # constrained crystals whose sample spglib (0.1 A) puts in another group: which one
                         "other_group": [[crystals[i].material_id, groups[i], scores[i][0].space_group] for i in subset
                                         if scores[i][0].space_group != groups[i]]}
        print(f"{name}: match {metrics['match_rate']:.3f} (on the {len(subset)} with a Wyckoff template "
              f"{matched / max(1, len(subset)):.3f}), valid {metrics['validity']:.3f}, in the asked group "
              f"{metrics['space_group_rate']}, {seconds:.0f} s", file=sys.stderr)
    text = json.dumps(results, indent=2)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n")


if __name__ == "__main__":
    main()
