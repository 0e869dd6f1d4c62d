"""Textbook crystals from their formula alone (issue 3). Prints a table.

Run:  .venv/bin/python benchmarks/textbook.py [--checkpoint mp_20] [--samples 8] [--sampler ddim --steps 100]
      .venv/bin/python benchmarks/textbook.py --settings default noise   # the card's recommended settings

With --settings, each crystal gets one row per named setting of the model card (``default``: the recommended
setting, as `sample` runs it with no flags; ``noise``: its best setting from noise, `sample --start noise`),
from the formula alone: the voted group, template and Wyckoff sites are retrieved as `sample` retrieves them.

For each crystal of diffusion/textbook.py the model is given the primitive cell's formula
(and, in a second row, the experimental space group when the model takes one; in a third, the
group its training crystals vote for from the formula alone, `--space-group predicted`; with
--templates, two more starting from the template noised to --template-step, without and with the
experimental group, which also picks the template), samples
--samples structures with seeds 0..k-1, and the table reports how many reproduce the
experimental structure (StructureMatcher as for the match rate), the best RMS, the median
error of the lattice constant over the samples (volume per atom, cube root), and whether the
most common spglib space group of the samples is the experimental one.
"""
from __future__ import annotations

import argparse
import statistics
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

import torch  # noqa: E402

from diffusion.api import generate  # noqa: E402
from diffusion.checkpoints import load_card, load_model, resolve  # noqa: E402
from diffusion.evaluation import training_space_group_predictor, training_template_library  # noqa: E402
from diffusion.group_ranking import group_predictor  # noqa: E402
from diffusion.formula import FormulaError  # noqa: E402
from diffusion.placement import sample_setting  # noqa: E402
from diffusion.recommended import recommended  # noqa: E402
from diffusion.textbook import TEXTBOOK, score_against_textbook  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--checkpoint", default="mp_20")
    parser.add_argument("--samples", type=int, default=8)
    parser.add_argument("--sampler", default="ddim")
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--guidance", type=float, default=0.0, help="guidance weight w of the rows with a group")
    parser.add_argument("--templates", action="store_true",
                        help="also rows that start from the template (nearest training crystal of the same "
                             "prototype, in the given group when there is one) noised to --template-step")
    parser.add_argument("--template-step", type=int, default=300)
    parser.add_argument("--precision", choices=("float32", "bfloat16"), default="float32")
    parser.add_argument("--settings", nargs="+", choices=("default", "noise"), default=None,
                        help="instead of the rows above: the card's recommended setting(s), composition only")
    parser.add_argument("--crystals", nargs="+", default=None, metavar="NAME",
                        help="only these rows, by a word of their name (e.g. SrTiO3 rutile)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = load_model(args.checkpoint)
    with_group = model.model_config.use_space_group
    predictor = training_space_group_predictor(load_card(resolve(args.checkpoint))) if with_group else None
    library = training_template_library(load_card(resolve(args.checkpoint))) if args.templates else None
    print(f"checkpoint {args.checkpoint}; {args.samples} samples per row, {args.sampler} {args.steps} steps, "
          f"guidance {args.guidance:g} with a group; torch {torch.__version__}, {args.threads} threads\n")
    print("| crystal | formula given | space group given | reproduced | best RMS | median lattice-constant error "
          "| most common space group | wall time |")
    print("|---|---|---|---|---|---|---|---|")
    chosen = [e for e in TEXTBOOK if args.crystals is None
              or any(word.lower() in e.name.lower().split() for word in args.crystals)]
    if not chosen:
        parser.error(f"no textbook crystal named {' or '.join(args.crystals)}")
    if args.settings:
        return recommended_rows(model, chosen, args)
    for entry in chosen:
        # (group, its label, whether to start from the template noised to --template-step)
        rows: list[tuple[int | None, str, bool]] = [(None, "-", False)]
        if with_group:
            rows.append((entry.space_group, str(entry.space_group), False))
            guess = predictor.predict(entry.structure().atomic_numbers)
            if guess is not None:
                rows.append((guess.space_group, f"{guess.space_group} predicted", False))
        if library is not None:
            rows.append((None, "-", True))
            if with_group:
                rows.append((entry.space_group, str(entry.space_group), True))
        for group, group_text, from_template in rows:
            start = time.time()
            start_from = {}
            if from_template:
                template = library.template(entry.structure().atomic_numbers, group)
                if template is None:
                    print(f"| {entry.name} | {entry.formula} | {group_text}, template | no template | | | | |")
                    continue
                start_from = dict(start=template.crystal, start_step=args.template_step)
                group_text += f", template {template.describe()}, t0 = {args.template_step}"
            try:
                trajectory = generate(model, entry.formula, num_samples=args.samples, sampler=args.sampler,
                                      steps=args.steps, seed=0, space_group=group, record="final",
                                      guidance=args.guidance if group else 0.0, **start_from)
            except (FormulaError, ValueError) as exc:
                print(f"| {entry.name} | {entry.formula} | {group_text} | not offered: {exc} | | | | |")
                continue
            scores = [score_against_textbook(trajectory.structure(frame=-1, crystal=b), entry)
                      for b in range(args.samples)]
            matched = [s.rms for s in scores if s.matched]
            errors = statistics.median(s.length_error for s in scores)
            common, _ = Counter(s.space_group for s in scores).most_common(1)[0]
            mark = "yes" if common == entry.space_group else "no"
            print(f"| {entry.name} | {entry.formula} | {group_text} | {len(matched)}/{args.samples} | "
                  f"{min(matched):.3f} | {errors:+.1%} | {common} ({mark}) | {time.time() - start:.1f} s |"
                  if matched else
                  f"| {entry.name} | {entry.formula} | {group_text} | 0/{args.samples} | - | {errors:+.1%} | "
                  f"{common} ({mark}) | {time.time() - start:.1f} s |", flush=True)


def recommended_rows(model, chosen, args) -> None:
    """One row per crystal and card setting, sampled as ``sample`` samples it (``placement.sample_setting``)."""
    card = load_card(resolve(args.checkpoint))
    vote = training_space_group_predictor(card) if model.model_config.use_space_group else None
    library = training_template_library(card)
    for label in args.settings:
        setting = recommended(card, None if label == "default" else "noise")
        if setting is None:
            raise SystemExit(f"{args.checkpoint}'s card has no recommended setting")
        predictor = vote and group_predictor(setting.group_choice, vote, model, library)
        print(f"\n{label}: {setting.describe()}\n")
        print("| crystal | formula given | retrieved | reproduced | best RMS | median lattice-constant error "
              "| most common space group | wall time |")
        print("|---|---|---|---|---|---|---|---|")
        for entry in chosen:
            start = time.time()
            numbers = entry.structure().atomic_numbers
            try:
                placed, got = sample_setting(model, numbers, setting, list(range(args.samples)), predictor, library,
                                             precision=args.precision)
            except (FormulaError, ValueError) as exc:
                print(f"| {entry.name} | {entry.formula} | | not offered: {exc} | | | | |")
                continue
            parts = [f"group {got.space_group}" if got.space_group else "no group"]
            if got.cell is not None:
                parts.append("Wyckoff sites")
            if got.template is not None and (setting.template_step is not None or got.cell is not None):
                parts.append(f"from {got.template.source.material_id}")
            scores = [score_against_textbook(p.structure(), entry) for p in placed]
            print(_row(entry, ", ".join(parts + list(got.notes)), scores, time.time() - start), flush=True)


def _row(entry, retrieved: str, scores, seconds: float) -> str:
    matched = [s.rms for s in scores if s.matched]
    errors = statistics.median(s.length_error for s in scores)
    common, _ = Counter(s.space_group for s in scores).most_common(1)[0]
    mark = "yes" if common == entry.space_group else "no"
    best = f"{min(matched):.3f}" if matched else "-"
    return (f"| {entry.name} | {entry.formula} | {retrieved} | {len(matched)}/{len(scores)} | {best} | {errors:+.1%} | "
            f"{common} ({mark}) | {seconds:.1f} s |")


if __name__ == "__main__":
    main()
