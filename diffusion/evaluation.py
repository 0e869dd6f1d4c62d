"""``python -m diffusion evaluate``: sample a checkpoint's validation split and score it."""
from __future__ import annotations

import sys
import time
from pathlib import Path

from .checkpoints import load_card, load_model, resolve, save_checkpoint, read_checkpoint, model_from_dict
from .data import load_dataset
from .device import resolve_device
from .metrics import aggregate_csp, csp_matcher, match_rms, score_csp
from .sampling import SampleRequest, SamplingConfig, sample
from .train import TrainConfig, prepare_data


def reference_crystals(args, card: dict):
    """The checkpoint's own validation split (rebuilt from its card), or every row of --data."""
    if args.split == "val":
        saved = card.get("train_config")
        if not saved:
            raise ValueError("this checkpoint's card has no training config; use --split all with --data")
        fields = TrainConfig.__dataclass_fields__
        config = TrainConfig(**{k: (tuple(v) if k == "data" else v) for k, v in saved.items() if k in fields})
        if args.data:
            config = TrainConfig(**{**config.__dict__, "data": tuple(args.data)})
        _, _, val = prepare_data(config)
        return val
    if not args.data:
        raise ValueError("--split all needs --data")
    return [c for path in args.data for c in load_dataset(path).crystals]


def evaluate_checkpoint(args, command: str) -> dict:
    from tqdm import tqdm

    path = resolve(args.checkpoint)
    device = resolve_device(args.device)
    model = load_model(path, device)
    card = load_card(path)
    if model.process.task != "csp":
        raise ValueError("evaluate currently scores structure-prediction (csp) checkpoints")
    crystals = reference_crystals(args, card)
    known = set(model.normalization.elements)
    crystals = [c for c in crystals if c.num_atoms <= 100 and set(c.atomic_numbers.tolist()) <= known][: args.limit]
    if args.space_group == "csv" and not model.model_config.use_space_group:
        raise ValueError("this model was not trained with a space-group condition")
    config = SamplingConfig(sampler=args.sampler, steps=args.steps, guidance=args.guidance, step_lr=args.step_lr,
                            record="final")
    config.validate(model.num_steps)
    jobs = [(i, j) for j in range(args.num_samples) for i in range(len(crystals))]
    samples: dict[tuple[int, int], object] = {}
    start = time.time()
    bar = tqdm(total=len(jobs), desc="sampling", unit="crystal", file=sys.stderr, mininterval=2)
    for offset in range(0, len(jobs), args.batch_size):
        chunk = jobs[offset:offset + args.batch_size]
        request = SampleRequest(
            num_atoms=tuple(crystals[i].num_atoms for i, _ in chunk),
            seeds=tuple(args.seed + j * 100_000 + i for i, j in chunk),
            atomic_numbers=tuple(tuple(crystals[i].atomic_numbers.tolist()) for i, _ in chunk),
            space_group=tuple(crystals[i].space_group for i, _ in chunk) if args.space_group == "csv" else None)
        trajectory = sample(model, request, config)
        for b, job in enumerate(chunk):
            samples[job] = trajectory.structure(frame=trajectory.num_frames - 1, crystal=b)
        bar.update(len(chunk))
    bar.close()
    sampling_seconds = time.time() - start
    matcher = csp_matcher()
    scores, raw = [], []
    for i, crystal in enumerate(tqdm(crystals, desc="matching", unit="crystal", file=sys.stderr, mininterval=2)):
        truth = crystal.to_structure()
        requested = crystal.space_group if args.space_group == "csv" else 0
        scores.append([score_csp(samples[(i, j)], truth, requested, matcher) for j in range(args.num_samples)])
        raw.append(match_rms(samples[(i, 0)], truth, matcher) is not None)
    metrics = aggregate_csp(scores, raw).to_dict()
    results = {
        "checkpoint": path.stem, "checkpoint_steps": card.get("steps"), "split": args.split, "n": len(crystals), "k": args.num_samples,
        "sampler": args.sampler, "steps": args.steps or model.num_steps, "space_group": args.space_group,
        "guidance": args.guidance, "seed": args.seed, "device": str(device),
        "sampling_seconds": round(sampling_seconds, 1),
        "seconds_per_structure": round(sampling_seconds / max(1, len(jobs)), 4),
        "metrics": metrics, "command": command,
    }
    if args.update_card:
        data = read_checkpoint(path)
        card = data.get("card") or card
        key = f"{args.sampler}_{results['steps']}_sg-{args.space_group}_k{args.num_samples}"
        card.setdefault("metrics", {})[key] = results
        save_checkpoint(model_from_dict(data, path.name), path, card)
    return results
