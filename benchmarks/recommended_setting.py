"""Choose a checkpoint's recommended composition-only setting from its validation measurements (issue #17).

Run:  .venv/bin/python benchmarks/recommended_setting.py --checkpoint mp_20 [--apply]

Reads the rows that `crystal-diffusion evaluate --update-card` stored in the model card, keeps those that use
the composition alone (--space-group none or predicted), one sample per crystal and the whole validation
split, and ranks them by match rate (diffusion/recommended.py). Prints the table, writes it to
benchmarks/results/recommended_setting_<checkpoint>.json, and with --apply stores the best row as the card's
`recommended` setting (and the best that starts from noise as its `--start noise` setting): what `sample`,
`evaluate` and the app use when no sampling flag is given. Nothing is sampled here; to add a candidate, run
`evaluate --update-card` with its flags first.
"""
from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

from diffusion.checkpoints import load_card, resolve
from diffusion.recommended import SamplingSetting, choose, write_recommendation

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--apply", action="store_true", help="store the choice in the model card")
    args = parser.parse_args(argv)
    path = resolve(args.checkpoint)
    card = load_card(path)
    entry = choose(card)
    if entry is None:
        print(f"{path.stem}: no composition-only measurement on the whole validation split in its card", file=sys.stderr)
        return 1
    print(f"{path.stem} (at step {card.get('steps')}): composition-only rows, whole validation split, k = 1\n")
    print("| rank | setting | match rate | card key |\n|---|---|---|---|")
    for rank, row in enumerate(entry["table"], 1):
        setting = SamplingSetting.from_dict(row)
        print(f"| {rank} | {setting.describe().split(';')[0]} | {setting.match_rate:.1%} | `{setting.key}` |")
    noise = entry["noise"]
    print(f"\nrecommended: {entry['default']['key']}; from noise: {noise['key'] if noise else 'none measured'}")
    out = ROOT / "benchmarks" / "results" / f"recommended_setting_{path.stem}.json"
    out.write_text(json.dumps({"checkpoint": path.stem, "checkpoint_steps": card.get("steps"), **entry}, indent=1) + "\n")
    if args.apply:
        command = "python benchmarks/recommended_setting.py " + shlex.join(sys.argv[1:] if argv is None else argv)
        write_recommendation(path, entry, command)
        print(f"stored in {path.with_suffix('.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
