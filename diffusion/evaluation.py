"""``python -m diffusion evaluate``: sample a checkpoint's validation split and score it."""
from __future__ import annotations

import hashlib
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from .checkpoints import load_card, load_model, resolve, save_checkpoint, read_checkpoint, model_from_dict
from .data import cache_dir, load_dataset, resolve_data_file
from .device import resolve_device
from .generation_metrics import COVERAGE_CUTOFFS, Fingerprints, fingerprints, score_generation
from .formula_units import FormulaUnitsAdvisor
from .group_ranking import group_predictor
from .metrics import aggregate_csp, csp_matcher, match_rms, score_csp
from .polymorph_metrics import polymorph_metrics
from .recommended import resolve_sampling_args
from .placement import Starts, build_request, sample_placed, usable_cells, wyckoff_cells
from .sampling import SamplingConfig, resolved_step_lr, sample
from .space_group_prediction import SpaceGroupPredictor
from .templates import TemplateLibrary
from .tolerances import NO_SPACE_GROUP_CONDITION
from .train import TrainConfig, prepare_data


@dataclass(frozen=True)
class EvaluationConfig:
    """What ``evaluate`` scores and how (the CLI's flags, typed; see docs/cli.md#evaluate).

    data: files replacing the card's (None = the checkpoint's own); split: "val" (the card's validation split)
    or "all" (every row of ``data``); space_group: "none", "csv" (true group) or "predicted" (the vote);
    template_step: start from a template noised to this step (None = from noise); symmetry: "wyckoff" keeps
    each crystal inside the Wyckoff positions of its template in the asked group ("none" = free); cutoffs: coverage cutoffs
    (structure, composition) for ab initio models (None = CDVAE's for the dataset). Sampling fields left None
    (sampler, space_group, guidance, ...) come from the card's recommended setting (``with_setting``).
    """

    checkpoint: str
    data: tuple[str, ...] | None = None
    split: str = "val"
    limit: int | None = None
    num_samples: int = 1
    sampler: str | None = None
    steps: int | None = None
    step_lr: float | None = None
    space_group: str | None = None
    guidance: float | None = None
    template_step: int | None = None
    start: str | None = None
    symmetry: str | None = None
    group_choice: str | None = None
    seed: int = 0
    batch_size: int = 128
    precision: str = "float32"
    device: str = "auto"
    update_card: bool = False
    num_generated: int = 500
    cutoffs: tuple[float, float] | None = None
    novelty: bool = True

    @classmethod
    def from_args(cls, args) -> "EvaluationConfig":
        """From the parsed ``evaluate`` command line (extra attributes such as --json are ignored)."""
        values = {name: getattr(args, name) for name in cls.__dataclass_fields__ if hasattr(args, name)}
        for name in ("data", "cutoffs"):
            if values.get(name) is not None:
                values[name] = tuple(values[name])
        return cls(**values)


def with_setting(config: EvaluationConfig, card: dict) -> EvaluationConfig:
    """``config`` with the sampling fields left None filled from the card's recommendation (else the defaults)."""
    setting = resolve_sampling_args(config, card)
    return replace(config, sampler=setting.sampler, steps=setting.steps, guidance=setting.guidance,
                   template_step=setting.template_step, step_lr=setting.step_lr,
                   space_group=config.space_group or setting.space_group, symmetry=setting.symmetry,
                   group_choice=setting.group_choice)


def training_config(card: dict, otherwise: str, data: tuple[str, ...] | None = None) -> TrainConfig:
    """The checkpoint's training config from its card (``data`` replacing its files when given)."""
    saved = card.get("train_config")
    if not saved:
        raise ValueError(f"this checkpoint's card has no training config; {otherwise}")
    fields = TrainConfig.__dataclass_fields__
    config = TrainConfig(**{k: (tuple(v) if k == "data" else v) for k, v in saved.items() if k in fields})
    if data:
        config = replace(config, data=tuple(data))
    return config


def reference_crystals(args: EvaluationConfig, card: dict):
    """The checkpoint's own validation split (rebuilt from its card), or every row of --data."""
    if args.split == "val":
        _, _, val = prepare_data(training_config(card, "use --split all with --data", args.data))
        return val
    if not args.data:
        raise ValueError("--split all needs --data")
    return [c for path in args.data for c in load_dataset(path).crystals]


def evaluate_checkpoint(args: EvaluationConfig, command: str) -> dict:
    from tqdm import tqdm

    path = resolve(args.checkpoint)
    device = resolve_device(args.device)
    model = load_model(path, device)
    card = load_card(path)
    if getattr(model, "family", "diffusion") == "cdvae":
        return _finish(args, path, _evaluate_cdvae(args, model, card, device), command)
    args = with_setting(args, card if model.process.task == "csp" else {})
    if model.process.task == "gen":
        if args.template_step is not None:
            raise ValueError("--template-step needs a structure-prediction (csp) model: ab initio models choose "
                             "their own atoms, so there is no composition to take a template for")
        return _finish(args, path, evaluate_generation(args, model, card, device), command)
    crystals = reference_crystals(args, card)
    known = set(model.normalization.elements)
    crystals = [c for c in crystals if c.num_atoms <= 100 and set(c.atomic_numbers.tolist()) <= known][: args.limit]
    if args.space_group != "none" and not model.model_config.use_space_group:
        raise ValueError(NO_SPACE_GROUP_CONDITION)
    requested = [c.space_group if args.space_group == "csv" else 0 for c in crystals]
    predicted = None
    if args.space_group == "predicted":
        predictor = training_group_predictor(card, args.group_choice or "vote", model)
        slow = (args.group_choice or "vote") == "model"   # a batch of network evaluations per composition
        guesses = [predictor.predict(c.atomic_numbers.tolist())
                   for c in tqdm(crystals, desc="choosing groups", unit="crystal", file=sys.stderr, mininterval=2,
                                 disable=not slow)]
        requested = [g.space_group if g else 0 for g in guesses]
        predicted = {"predicted": sum(g is not None for g in guesses),
                     "correct": sum(r == c.space_group for r, c in zip(requested, crystals) if r)}
    templates = cells = None
    if args.symmetry == "wyckoff":
        if args.space_group == "none":
            raise ValueError("--symmetry wyckoff needs a space group: --space-group csv or predicted")
        atoms = [tuple(c.atomic_numbers.tolist()) for c in crystals]
        cells = usable_cells(wyckoff_cells(training_template_library(card), atoms, requested), atoms, requested)
    elif args.template_step is not None:
        library = training_template_library(card)
        templates = [library.template(c.atomic_numbers.tolist(), requested[i] or None) for i, c in enumerate(crystals)]
    config = SamplingConfig(sampler=args.sampler, steps=args.steps, guidance=args.guidance, step_lr=args.step_lr,
                            record="final", precision=args.precision)
    config.validate(model.num_steps)
    jobs = [(i, j) for j in range(args.num_samples) for i in range(len(crystals))]
    samples: dict[tuple[int, int], object] = {}
    start = time.time()
    bar = tqdm(total=len(jobs), desc="sampling", unit="crystal", file=sys.stderr, mininterval=2)
    for offset in range(0, len(jobs), args.batch_size):
        chunk = jobs[offset:offset + args.batch_size]
        request = build_request(
            [args.seed + j * 100_000 + i for i, j in chunk], atoms=[crystals[i].atomic_numbers.tolist() for i, _ in chunk],
            space_groups=[requested[i] for i, _ in chunk] if args.space_group != "none" else None)
        starts = Starts(templates=None if templates is None else [templates[i] for i, _ in chunk],
                        cells=None if cells is None else [cells[i] for i, _ in chunk], template_step=args.template_step)
        for job, result in zip(chunk, sample_placed(model, request, config, starts)):
            samples[job] = result.structure()
        bar.update(len(chunk))
    bar.close()
    sampling_seconds = time.time() - start
    matcher = csp_matcher()
    scores, raw = [], []
    for i, crystal in enumerate(tqdm(crystals, desc="matching", unit="crystal", file=sys.stderr, mininterval=2)):
        truth = crystal.to_structure()
        scores.append([score_csp(samples[(i, j)], truth, requested[i], matcher) for j in range(args.num_samples)])
        raw.append(match_rms(samples[(i, 0)], truth, matcher) is not None)
    metrics = aggregate_csp(scores, raw).to_dict()
    # METRe / cRMSE (Martirossyan et al. 2025): a sample may match any validation polymorph of its composition,
    # each reference counts once, and a miss costs the matcher's stol in the RMSE
    references = [c.to_structure() for c in crystals]
    generated = [[samples[(i, j)] for j in range(args.num_samples)] for i in range(len(crystals))]
    metrics["polymorphs"] = polymorph_metrics(generated, references, matcher).to_dict()
    results = {
        "checkpoint": path.stem, "task": "csp", "checkpoint_steps": card.get("steps"), "split": args.split, "n": len(crystals), "k": args.num_samples,
        "sampler": args.sampler, "precision": args.precision, "steps": args.steps or model.num_steps, "space_group": args.space_group,
        "group_choice": (args.group_choice or "vote") if args.space_group == "predicted" else None,
        "step_lr": resolved_step_lr(model, config),
        "template_step": args.template_step, "symmetry": args.symmetry or "none",
        "guidance": args.guidance, "seed": args.seed, "device": str(device),
        "sampling_seconds": round(sampling_seconds, 1),
        "seconds_per_structure": round(sampling_seconds / max(1, len(jobs)), 4),
        "metrics": metrics,
    }
    # per crystal, for looking into which ones fail (first sample; matched = valid and within the matcher)
    results["crystals"] = [
        {"material_id": crystal.material_id, "true_space_group": crystal.space_group,
         "requested_space_group": requested[i], "valid": row[0].valid,
         "rms": None if row[0].rms is None else round(row[0].rms, 5), "sample_space_group": row[0].space_group or None}
        for i, (crystal, row) in enumerate(zip(crystals, scores))]
    if templates is not None:
        results["templates"] = {"found": sum(t is not None for t in templates), "n": len(crystals),
                                "same_space_group": sum(t is not None and c.space_group > 0 and
                                                        t.source.space_group == c.space_group
                                                        for t, c in zip(templates, crystals))}
    if cells is not None:
        results["symmetry_cells"] = {"constrained": sum(c is not None for c in cells), "n": len(crystals)}
    if predicted is not None:
        # how often the vote named the crystal's true group: the ceiling on what it can add
        results["space_group_prediction"] = {**predicted, "n": len(crystals),
                                             "accuracy": round(predicted["correct"] / max(1, len(crystals)), 4)}
    return _finish(args, path, results, command)


def _card_split(card: dict, why: str) -> tuple[list, list]:
    """A checkpoint's own (training, validation) split, rebuilt from the files its card names."""
    config = training_config(card, f"its crystals are needed {why}")   # the card's own files
    missing = [path for path in config.data if not resolve_data_file(path).exists()]
    if missing:
        raise ValueError(f"the data {', '.join(missing)} is not here (it is needed {why})")
    _, train, val = prepare_data(config)
    return train, val


def _training_crystals(card: dict, why: str) -> list:
    """A checkpoint's own training split."""
    return _card_split(card, why)[0]


def validation_crystals(card: dict) -> list:
    """A checkpoint's own validation split (the Latent space map)."""
    return _card_split(card, "for its validation crystals")[1]


def training_space_group_predictor(card: dict) -> SpaceGroupPredictor:
    """The space-group vote over a checkpoint's own training split."""
    return SpaceGroupPredictor(_training_crystals(card, "to predict space groups"))


def training_group_predictor(card: dict, choice: str, model=None):
    """The group predictor of ``--space-group predicted`` over a checkpoint's own training split: the vote, or
    (``choice="model"``) the model's choice among the nearest crystals' groups (``group_ranking.py``)."""
    train = _training_crystals(card, "to predict space groups")   # read once for the vote and the templates
    return group_predictor(choice, SpaceGroupPredictor(train), model, TemplateLibrary(train) if choice == "model" else None)


def training_formula_units(card: dict) -> FormulaUnitsAdvisor:
    """Formula-unit statistics of a checkpoint's own training split."""
    return FormulaUnitsAdvisor(_training_crystals(card, "to propose formula units"))


def training_template_library(card: dict) -> TemplateLibrary:
    """Structure templates from a checkpoint's own training split."""
    return TemplateLibrary(_training_crystals(card, "for structure templates"))


def _evaluate_cdvae(args: EvaluationConfig, model, card: dict, device) -> dict:
    """Reconstruction of the validation split and generation from the prior (``cdvae/evaluation.py``)."""
    from .cdvae.evaluation import evaluate_cdvae

    if args.space_group not in (None, "none") or args.template_step is not None or args.symmetry not in (None, "none"):
        raise ValueError("a CDVAE checkpoint takes no space group, template or symmetry setting")
    _, train_crystals, val_crystals = prepare_data(training_config(card, "cannot rebuild its splits", args.data))
    reference = (val_crystals if args.split == "val" else train_crystals + val_crystals)[: args.limit]
    cutoffs = coverage_cutoffs(args, card) if args.num_generated else None
    fps = _reference_fingerprints(reference) if args.num_generated else None
    return evaluate_cdvae(args, model, card, device, reference, train_crystals, cutoffs, fps,
                          _lazy_fingerprints(train_crystals))


def _finish(args: EvaluationConfig, path: Path, results: dict, command: str) -> dict:
    """Add the command; store the results in the model card when asked."""
    results["command"] = command
    if args.update_card:
        data = read_checkpoint(path)
        card = data.get("card") or load_card(path)
        if results.get("family") == "cdvae":
            key = f"cdvae_langevin_{results['levels']}x{results['steps_per_level']}_n{results['n']}"
        elif results.get("task") == "gen":
            key = f"gen_{args.sampler}_{results['steps']}_n{results['n']}"
        else:
            key = f"{args.sampler}_{results['steps']}_sg-{args.space_group}_k{args.num_samples}"
            if args.guidance:
                key += f"_w{args.guidance:g}"
            if args.template_step is not None:
                key += f"_template{args.template_step}"
            if args.symmetry == "wyckoff":
                key += "_wyckoff"
            if args.space_group == "predicted" and args.group_choice == "model":
                key += "_model-group"
        if results.get("step_lr") is not None:
            key += f"_lr{results['step_lr']:g}"
        if args.precision != "float32":
            key += f"_{args.precision}"
        # the card keeps the summary; the per-crystal list stays in --json (it would grow the card by ~0.5 MB)
        card.setdefault("metrics", {})[key] = {k: v for k, v in results.items() if k != "crystals"}
        save_checkpoint(model_from_dict(data, path.name), path, card)
    return results


def coverage_cutoffs(args: EvaluationConfig, card: dict) -> tuple[float, float]:
    """--cutoffs, else CDVAE's cutoffs for the dataset the model was trained on."""
    if args.cutoffs:
        return tuple(args.cutoffs)
    files = " ".join(str(d.get("file", "")) for d in card.get("data", []))
    for name, cutoffs in COVERAGE_CUTOFFS.items():
        if name in files:
            return cutoffs
    raise ValueError("no coverage cutoffs known for this dataset; give --cutoffs STRUCTURE COMPOSITION")


def _reference_fingerprints(crystals) -> Fingerprints:
    """Fingerprints of the reference split, cached on disk (they take ~0.2 s per crystal)."""
    key = hashlib.sha256("\n".join(c.material_id for c in crystals).encode()).hexdigest()[:16]
    path = cache_dir() / f"fingerprints-{key}.npz"
    if path.is_file():
        saved = np.load(path)
        return Fingerprints(saved["structure"], saved["composition"])
    from tqdm import tqdm

    bar = tqdm(total=len(crystals), desc="reference fingerprints", unit="crystal", file=sys.stderr, mininterval=2)
    fps = fingerprints([c.to_structure() for c in crystals], lambda i, n: bar.update(1))
    bar.close()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, structure=fps.structure, composition=fps.composition)
    tmp.replace(path)
    return fps


def _lazy_fingerprints(crystals):
    """j -> structure fingerprint of crystals[j]; the first call computes (or loads from the disk
    cache) all of them at once. Only formulas with many training crystals (carbon) ask for any."""
    table: list[np.ndarray] = []

    def get(j: int) -> np.ndarray:
        if not table:
            table.append(_reference_fingerprints(crystals).structure)
        return table[0][j]
    return get


def evaluate_generation(args: EvaluationConfig, model, card: dict, device) -> dict:
    """Sample ``--num-generated`` crystals (atom counts drawn from training) and score them."""
    import torch
    from tqdm import tqdm

    from .api import sample_num_atoms

    if not 1 <= args.num_generated <= 10_000:
        raise ValueError(f"--num-generated must be at least 1 and at most 10000, got {args.num_generated}")
    if args.space_group != "none":
        raise ValueError("--space-group applies to structure-prediction checkpoints only")
    _, train_crystals, val_crystals = prepare_data(training_config(card, "cannot rebuild its splits", args.data))
    reference = (val_crystals if args.split == "val" else train_crystals + val_crystals)[: args.limit]
    cutoffs = coverage_cutoffs(args, card)
    sampling = SamplingConfig(sampler=args.sampler, steps=args.steps, guidance=0.0, step_lr=args.step_lr,
                              record="final", precision=args.precision)
    sampling.validate(model.num_steps)
    counts = sample_num_atoms(model, args.num_generated, torch.Generator().manual_seed(args.seed))
    structures = []
    start = time.time()
    bar = tqdm(total=len(counts), desc="sampling", unit="crystal", file=sys.stderr, mininterval=2)
    for offset in range(0, len(counts), args.batch_size):
        chunk = counts[offset:offset + args.batch_size]
        request = build_request([args.seed + offset + i for i in range(len(chunk))], num_atoms=chunk)
        trajectory = sample(model, request, sampling)
        structures += [trajectory.structure(frame=trajectory.num_frames - 1, crystal=b) for b in range(len(chunk))]
        bar.update(len(chunk))
    bar.close()
    sampling_seconds = time.time() - start
    reference_fps = _reference_fingerprints(reference)
    bar = tqdm(total=len(structures), desc="fingerprints", unit="crystal", file=sys.stderr, mininterval=2)
    training = [c.to_structure() for c in train_crystals] if args.novelty else None
    metrics = score_generation(structures, [c.to_structure() for c in reference], cutoffs, training=training,
                               reference_fps=reference_fps, training_fingerprint=_lazy_fingerprints(train_crystals),
                               progress=lambda i, n: bar.update(1))
    bar.close()
    return {
        "checkpoint": card.get("name"), "task": "gen", "checkpoint_steps": card.get("steps"), "split": args.split,
        "n": len(structures), "n_reference": len(reference), "sampler": args.sampler, "precision": args.precision,
        "steps": args.steps or model.num_steps, "seed": args.seed, "device": str(device),
        "step_lr": resolved_step_lr(model, sampling),
        "sampling_seconds": round(sampling_seconds, 1),
        "seconds_per_structure": round(sampling_seconds / max(1, len(structures)), 4),
        "scoring_seconds": round(time.time() - start - sampling_seconds, 1),
        "metrics": metrics.to_dict(),
    }
