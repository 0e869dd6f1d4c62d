"""Command line: ``python -m diffusion train | sample | evaluate | render | inspect | download``.

Every expected failure (bad formula, missing file, corrupt checkpoint...) ends with one
line on stderr and exit status 2, never a traceback.
"""
from __future__ import annotations

import argparse
import math
import shlex
import sys

from .checkpoints import CheckpointError
from .crystal import CrystalError
from .data import DOWNLOAD_DIR, DatasetError
from .formula import FormulaError
from .group_ranking import GROUP_CHOICES
from .precision import PRECISIONS

EXIT_USAGE = 2
KNOWN_ERRORS = (ValueError, FileNotFoundError, PermissionError, IsADirectoryError, CheckpointError, CrystalError,
                DatasetError, FormulaError)


def _whole_number(text: str, minimum: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got '{text}'") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"expected a number >= {minimum}, got {value}")
    return value


def positive_int(text: str) -> int:
    return _whole_number(text, 1)


def nonnegative_int(text: str) -> int:
    return _whole_number(text, 0)


def finite_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got '{text}'") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got '{text}'")
    return value


def probability(text: str) -> float:
    value = finite_float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a probability between 0 and 1, got {value}")
    return value


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        sys.exit(EXIT_USAGE)


PRECISION_HELP = ("bfloat16: the network's matrix products in bfloat16, faster on CPUs with AVX512-BF16 and on "
                  "GPUs; the state, schedule and sums stay float32 (default float32)")
STEP_LR_HELP = ("the pc sampler's Langevin corrector step size (default: the model's own, chosen on its "
                "validation split; see its card)")
DEFAULT_HELP = " (default: the model card's recommended setting, else {})"
START_HELP = ("noise: the positions come from noise (the card's best such setting); template: start from the "
              "nearest known crystal (default: whichever the card recommends)")
TEMPLATE_HELP = ("start from a template instead of noise (composition only): the chemically nearest training "
                 "crystal with the same atom counts, its elements replaced by yours, noised to step T0 "
                 "(0 = the template itself, T = forget it); compositions without one start from noise")

GROUP_CHOICE_HELP = ("with --space-group predicted: who picks the group among the chemically nearest training "
                     "crystals: 'vote' (they vote by count) or 'model' (the model scores each group's nearest crystal "
                     "by how well it denoises it; docs/cli.md#group-choice) (default: the model card's recommended "
                     "setting, else vote)")
SYMMETRY_HELP = ("wyckoff: keep every step of the trajectory in the space group (--space-group N, predicted or csv) "
                 "with the Wyckoff positions of the nearest training crystal in that group (its primitive cell); "
                 "with --template-step, start from that crystal's ideal cell" + DEFAULT_HELP.format("none"))


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m diffusion", description="Diffusion models for periodic crystals.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    t = sub.add_parser("train", help="train a model (resumable)")
    t.add_argument("--data", nargs="+", required=True, help="CDVAE-format CSV file(s) or a folder of CIFs")
    t.add_argument("--out", required=True, help="checkpoint to write, e.g. checkpoints/perov_5.pt")
    t.add_argument("--task", choices=("csp", "gen"), default="csp")
    t.add_argument("--family", choices=("diffusion", "cdvae"), default="diffusion",
                   help="diffusion: the DiffCSP-style denoiser; cdvae: a crystal VAE with a score decoder (CDVAE)")
    t.add_argument("--latent-dim", type=positive_int, default=128, help="cdvae: size of the latent z")
    t.add_argument("--encoder-layers", type=positive_int, default=3, help="cdvae: message layers of the encoder")
    t.add_argument("--num-levels", type=positive_int, default=50, help="cdvae: noise levels of the score decoder")
    t.add_argument("--kl-weight", type=finite_float, default=0.01, help="cdvae: weight of the KL term")
    t.add_argument("--property", dest="property_name", default=None, help="property column to condition on")
    t.add_argument("--space-group", dest="use_space_group", action="store_true", help="condition on spacegroup.number")
    t.add_argument("--val-fraction", type=finite_float, default=0.1)
    t.add_argument("--split-seed", type=nonnegative_int, default=0)
    t.add_argument("--max-atoms", type=positive_int, default=20)
    t.add_argument("--hidden", type=positive_int, default=256)
    t.add_argument("--layers", type=positive_int, default=4)
    t.add_argument("--frequencies", type=positive_int, default=32)
    t.add_argument("--num-steps", type=positive_int, default=1000, help="diffusion steps T")
    t.add_argument("--schedule", default="cosine")
    t.add_argument("--batch-size", type=positive_int, default=256)
    t.add_argument("--lr", type=finite_float, default=1e-3)
    t.add_argument("--weight-decay", type=finite_float, default=0.0, help="AdamW decoupled weight decay (0 = Adam)")
    t.add_argument("--augment", type=probability, default=0.0,
                   help="probability of showing a training crystal in an equivalent cell (relabelled axes, supercell)")
    t.add_argument("--warmup-steps", type=nonnegative_int, default=500,
                   help="after resuming trained weights with a fresh optimizer, ramp the learning rate up over this many steps")
    t.add_argument("--drop-probability", type=probability, default=0.1,
                   help="classifier-free guidance: chance a training crystal's conditions are hidden")
    t.add_argument("--space-group-drop", type=probability, default=None,
                   help="the same for the space group alone (default: --drop-probability); larger values "
                        "train the composition-only mode of a space-group model harder")
    t.add_argument("--max-steps", type=positive_int, default=10_000)
    t.add_argument("--max-minutes", type=finite_float, default=0.0, help="stop (and save) after this wall time")
    t.add_argument("--checkpoint-every", type=positive_int, default=200)
    t.add_argument("--val-every", type=positive_int, default=200)
    t.add_argument("--seed", type=nonnegative_int, default=0)
    t.add_argument("--device", default="auto")
    t.add_argument("--threads", type=positive_int, default=None, help="CPU threads for torch")
    t.add_argument("--run-dir", default="", help="where the resumable training state lives (default runs/<name>)")
    t.add_argument("--quiet", action="store_true")

    s = sub.add_parser("sample", help="generate structures and write CIFs")
    s.add_argument("--checkpoint", required=True, help="shipped name (e.g. perov_5) or path to a .pt file")
    what = s.add_mutually_exclusive_group(required=True)
    what.add_argument("--composition", help="formula of the cell, e.g. SrTiO3 or Ti2O4")
    what.add_argument("--from-csv", help="predict every row's structure from its composition")
    what.add_argument("--num-atoms", type=positive_int, help="atoms per cell (ab initio models)")
    what.add_argument("--random-num-atoms", action="store_true", help="draw atoms per cell from the training data (ab initio)")
    s.add_argument("--formula-units", default=None, metavar="N|auto",
                   help="with --composition: read it as a formula (TiO2 = Ti2O4) and build a cell of N formula units; "
                        "auto: the number most common for this formula (else its family) in the training crystals")
    s.add_argument("--limit", type=positive_int, default=None, help="with --from-csv: first N rows")
    s.add_argument("--num-samples", type=positive_int, default=1)
    s.add_argument("--start", choices=("noise", "template"), default=None, help=START_HELP)
    s.add_argument("--sampler", choices=("ddpm", "pc", "ddim"), default=None, help=DEFAULT_HELP.format("ddpm"))
    s.add_argument("--steps", type=positive_int, default=None, help="network evaluations" + DEFAULT_HELP.format("all T"))
    s.add_argument("--step-lr", type=finite_float, default=None, help=STEP_LR_HELP)
    s.add_argument("--seed", type=nonnegative_int, default=0)
    s.add_argument("--space-group", default=None,
                   help="1-230; 'csv' to take each row's spacegroup.number; 'predicted' for the group voted by "
                        "the model's training crystals of the same prototype (composition only); 'none'"
                        + DEFAULT_HELP.format("none"))
    s.add_argument("--property", dest="prop", type=finite_float, default=None, help="target property value")
    s.add_argument("--guidance", type=finite_float, default=None,
                   help="classifier-free guidance weight w" + DEFAULT_HELP.format("0"))
    s.add_argument("--template-step", type=nonnegative_int, default=None, metavar="T0", help=TEMPLATE_HELP)
    s.add_argument("--symmetry", choices=("none", "wyckoff"), default=None, help=SYMMETRY_HELP)
    s.add_argument("--group-choice", choices=GROUP_CHOICES, default=None, help=GROUP_CHOICE_HELP)
    s.add_argument("--batch-size", type=positive_int, default=64, help="crystals per sampling batch")
    s.add_argument("--precision", choices=PRECISIONS, default="float32", help=PRECISION_HELP)
    s.add_argument("--device", default="auto")
    s.add_argument("--threads", type=positive_int, default=None)
    s.add_argument("--out", required=True, help="output folder")
    s.add_argument("--trajectory", action="store_true", help="also write a multi-frame extended XYZ per sample")

    e = sub.add_parser("evaluate", help="score samples with the field's standard metrics")
    e.add_argument("--checkpoint", required=True)
    e.add_argument("--data", nargs="+", default=None,
                   help="reference CSV(s); default: the files named in the checkpoint's card")
    e.add_argument("--split", choices=("val", "all"), default="val",
                   help="'val': the checkpoint's own validation split of --data; 'all': every row")
    e.add_argument("--limit", type=positive_int, default=None)
    e.add_argument("--num-samples", type=positive_int, default=1, help="samples per structure (k for best-of-k)")
    e.add_argument("--start", choices=("noise", "template"), default=None, help=START_HELP)
    e.add_argument("--sampler", choices=("ddpm", "pc", "ddim"), default=None, help=DEFAULT_HELP.format("ddpm"))
    e.add_argument("--steps", type=positive_int, default=None, help=DEFAULT_HELP.format("all T").strip(" ()"))
    e.add_argument("--step-lr", type=finite_float, default=None, help=STEP_LR_HELP)
    e.add_argument("--space-group", choices=("none", "csv", "predicted"), default=None,
                   help="none: composition only; csv: each crystal's true group; predicted: composition only, "
                        "with the group voted by the training crystals of the same prototype"
                        + DEFAULT_HELP.format("none"))
    e.add_argument("--guidance", type=finite_float, default=None, help=DEFAULT_HELP.format("0").strip(" ()"))
    e.add_argument("--template-step", type=nonnegative_int, default=None, metavar="T0",
                   help=TEMPLATE_HELP)
    e.add_argument("--symmetry", choices=("none", "wyckoff"), default=None, help=SYMMETRY_HELP)
    e.add_argument("--group-choice", choices=GROUP_CHOICES, default=None, help=GROUP_CHOICE_HELP)
    e.add_argument("--seed", type=nonnegative_int, default=0)
    e.add_argument("--batch-size", type=positive_int, default=128)
    e.add_argument("--precision", choices=PRECISIONS, default="float32", help=PRECISION_HELP)
    e.add_argument("--device", default="auto")
    e.add_argument("--threads", type=positive_int, default=None)
    e.add_argument("--json", default=None, help="write the metrics to this file")
    e.add_argument("--update-card", action="store_true", help="store the metrics in the checkpoint's model card")
    e.add_argument("--num-generated", type=nonnegative_int, default=500,
                   help="ab initio checkpoints: how many crystals to generate and score (CDVAE: 0 scores reconstruction only)")
    e.add_argument("--cutoffs", type=finite_float, nargs=2, default=None, metavar=("STRUCTURE", "COMPOSITION"),
                   help="coverage fingerprint-distance cutoffs (default: CDVAE's for the model's dataset)")
    e.add_argument("--no-novelty", dest="novelty", action="store_false",
                   help="skip novelty (matching samples against the training crystals)")

    r = sub.add_parser("render", help="sample one crystal and draw its trajectory as a GIF or a PNG strip")
    r.add_argument("--checkpoint", default=None,
                   help="shipped name (e.g. perov_5) or path to a .pt file (required unless --trajectory-file)")
    r.add_argument("--trajectory-file", default=None, metavar="PATH",
                   help="draw a sample of this file instead of sampling a model: another model's trajectory "
                        "(MatterGen, CDVAE, DiffCSP, extxyz, ASE .traj, a zip or folder of CIFs; docs/formats.md)")
    r.add_argument("--sample", type=nonnegative_int, default=None, metavar="I",
                   help="with --trajectory-file: which sample of the file (default 0)")
    what = r.add_mutually_exclusive_group()
    what.add_argument("--composition", help="formula of the cell, e.g. SrTiO3 or Ti2O4")
    what.add_argument("--num-atoms", type=positive_int, help="atoms per cell (ab initio models; default: drawn)")
    r.add_argument("--sampler", choices=("ddpm", "pc", "ddim"), default="ddim")
    r.add_argument("--steps", type=positive_int, default=None,
                   help="network evaluations, at most T (default: 100 for ddim, all T for ddpm and pc); for a CDVAE "
                        "checkpoint: Langevin steps per noise level (default: its card's)")
    r.add_argument("--seed", type=nonnegative_int, default=0)
    r.add_argument("--space-group", type=positive_int, default=None, help="1-230")
    r.add_argument("--property", dest="prop", type=finite_float, default=None, help="target property value")
    r.add_argument("--guidance", type=finite_float, default=0.0, help="classifier-free guidance weight w")
    r.add_argument("--template-step", type=nonnegative_int, default=None, metavar="T0", help=TEMPLATE_HELP)
    r.add_argument("--frames", type=positive_int, default=None,
                   help="recorded steps drawn, evenly spaced from T to 0 (default 20 for a GIF, 6 for a PNG)")
    r.add_argument("--size", type=positive_int, default=None, help="pixels per frame (default 480 GIF, 320 PNG)")
    r.add_argument("--device", default="auto")
    r.add_argument("--precision", choices=PRECISIONS, default="float32", help=PRECISION_HELP)
    r.add_argument("--threads", type=positive_int, default=None)
    r.add_argument("--out", required=True, help="FILE.gif (animation) or FILE.png (strip of frames)")

    i = sub.add_parser("inspect", help="list the samples of a trajectory file (MatterGen, CDVAE, DiffCSP, extxyz...)")
    i.add_argument("path", metavar="PATH", help="a trajectory file, or a folder of CIFs (docs/formats.md)")
    i.add_argument("--json", action="store_true", help="print JSON: the format and each sample's frames, "
                                                      "formula and space group")

    d = sub.add_parser("download", help="fetch the public CDVAE/DiffCSP CSV files")
    d.add_argument("name", choices=("perov_5", "carbon_24", "mp_20"))
    d.add_argument("--dest", default=str(DOWNLOAD_DIR),
                   help="folder for <name>/<split>.csv (default data/downloads, where the loader looks)")
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    try:
        if getattr(args, "threads", None):
            import torch
            torch.set_num_threads(args.threads)
        from . import commands
        return getattr(commands, f"run_{args.command}")(args, "python -m diffusion " + shlex.join(argv))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except KNOWN_ERRORS as exc:
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"error: {message}", file=sys.stderr)
        return EXIT_USAGE
