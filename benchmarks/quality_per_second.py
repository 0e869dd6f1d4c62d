"""Quality per second: match rate on the validation split against seconds per structure, one point per sampler and
step count, with DiffCSP's published match rates for reference (issue #23). Draws a figure from stored results.

Run:  .venv/bin/python benchmarks/quality_per_second.py [--out docs/images/quality_per_second.png]

Reads the evaluation results the other benchmarks stored in benchmarks/results/ (no sampling here):
fast_sampler_perov_5.json, fast_sampler_perov_5_small_n400.json (all 379 perov_5 validation crystals, batches of
128), fast_sampler_mp_20_*.json (first 200 mp_20 validation crystals, composition only, bfloat16),
corrector_step_mp_20.json (all 1,110, voted group) and recommended_setting_mp_20.json with
default_setting_speed_mp_20.md (the card's two recommended settings; their seconds are per 20-atom crystal
sampled alone). The seconds come from different runs on a shared 2-core machine, so points of one series compare
with each other better than across series; docs/performance.md#quality-per-second says how each was run.
DiffCSP's figures are from Jiao et al., NeurIPS 2023, Table 1 (test splits, models trained on the full train
splits): Perov-5 52.02 %, MP-20 51.49 %.
"""
from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
ROOT = Path(__file__).resolve().parent.parent
DIFFCSP = {"perov_5": 0.5202, "mp_20": 0.5149}   # Jiao et al. 2023, Table 1 (test splits)


def label(row: dict) -> str:
    name = {"ddpm": "DDPM", "ddim": "DDIM", "pc": "PC"}[row["sampler"]]
    evaluations = row["steps"] * (2 if row["sampler"] == "pc" else 1)
    return f"{name} {row['steps']}" + (f" ({evaluations} evals)" if row["sampler"] == "pc" else "")


def evaluated(name: str) -> list[tuple[str, float, float]]:
    """(label, seconds per structure, match rate) for every row of a stored evaluation list."""
    rows = json.loads((RESULTS / name).read_text())
    return [(label(r), r["seconds_per_structure"], r["metrics"]["match_rate"]) for r in rows]


def recommended_points() -> list[tuple[str, float, float]]:
    """The card's default and --start noise settings: match rate on all 1,110, seconds per crystal alone."""
    table = (RESULTS / "default_setting_speed_mp_20.md").read_text()
    points = []
    for line in table.splitlines():
        found = re.match(r"\| (default|noise): .*?; ([\d.]+)% of the \d+ validation crystals right \| [\d.]+ \| [\d.]+ \| "
                         r"([\d.]+) \|", line)
        if found:
            kind, rate, seconds = found.groups()
            text = "default (template start)" if kind == "default" else "--start noise (Wyckoff)"
            points.append((text, float(seconds), float(rate) / 100))
    return points


def draw(out: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    perov = {"perov_5": evaluated("fast_sampler_perov_5.json"),
             "perov_5_small": evaluated("fast_sampler_perov_5_small_n400.json")}
    mp_file = next(RESULTS.glob("fast_sampler_mp_20_*.json"))
    corrector = json.loads((RESULTS / "corrector_step_mp_20.json").read_text())
    voted = [(("PC 100" if r["sampler"] == "pc" else "DDIM 100") + (f", step {r['step_lr']:g}" if r.get("step_lr") else ""),
              r["seconds_per_structure"], r["match_rate"]) for r in corrector]
    mp = {"composition only (first 200)": evaluated(mp_file.name), "voted group, from noise (all 1,110)": voted,
          "the card's settings (all 1,110; s per crystal alone)": recommended_points()}

    fig, axes = plt.subplots(1, 2, figsize=(12, 5.6))
    for ax, (title, series, reference) in zip(axes, (("perov_5 validation (379 crystals)", perov, "perov_5"),
                                                      ("mp_20 validation", mp, "mp_20"))):
        for (name, points), marker in zip(series.items(), "osD"):
            xs, ys = [p[1] for p in points], [100 * p[2] for p in points]
            ax.scatter(xs, ys, marker=marker, s=40, label=name)
            for text, x, y in points:
                ax.annotate(text, (x, 100 * y), textcoords="offset points", xytext=(4, 4), fontsize=7)
        ax.axhline(100 * DIFFCSP[reference], linestyle="--", color="grey")
        ax.text(0.02, 100 * DIFFCSP[reference], f"DiffCSP published ({100 * DIFFCSP[reference]:.1f} %, test split)",
                fontsize=8, color="grey", va="bottom", transform=ax.get_yaxis_transform())
        ax.set_xscale("log")
        ax.set_xlabel("seconds per structure (2 CPU cores; log scale)")
        ax.set_ylabel("match rate (%)")
        ax.set_title(title, fontsize=10)
        ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2, frameon=False)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    print(f"wrote {out}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images" / "quality_per_second.png")
    draw(parser.parse_args().out)


if __name__ == "__main__":
    main()
