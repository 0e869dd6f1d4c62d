"""``evaluate`` for a CDVAE checkpoint: reconstruction of its validation crystals and generation from
the prior, with the field's metrics (CDVAE section 5; docs/architecture.md#evaluation).

- **Reconstruction**: each validation crystal is encoded (z = the mean of q(z | M)) and decoded by
  annealed Langevin dynamics; atom count, lattice, composition and positions all come from z. A
  reconstruction matches when StructureMatcher (the CSP tolerances) finds a mapping; the RMSE is over
  the matches, as CDVAE reports it.
- **Generation**: ``num_generated`` latents from N(0, I), decoded the same way and scored like the
  diffusion model's ab initio samples (validity, COV-R / COV-P, density and element-count distances).
"""
from __future__ import annotations

import sys
import time

import torch

from ..crystal import CrystalBatch
from ..generation_metrics import score_generation
from ..metrics import csp_matcher, match_rms, structural_validity
from .langevin import LangevinConfig, generate_from_prior, reconstruct
from .model import CDVAE


def langevin_config(args, model: CDVAE) -> LangevinConfig:
    """``--steps`` is the Langevin steps per level, ``--step-lr`` the step size eta (None: the card's)."""
    return LangevinConfig(steps_per_level=args.steps, step_size=args.step_lr, record_every=10**9, seed=args.seed)


def reconstruction_metrics(model: CDVAE, crystals, config: LangevinConfig, batch_size: int = 128) -> dict:
    """Match rate, RMSE, how often the heads got the atom count and composition, and seconds per crystal."""
    from tqdm import tqdm

    matcher = csp_matcher()
    rms, counts_right, composition_right, valid = [], 0, 0, 0
    start = time.time()
    bar = tqdm(total=len(crystals), desc="reconstructing", unit="crystal", file=sys.stderr, mininterval=2)
    for offset in range(0, len(crystals), batch_size):
        chunk = crystals[offset:offset + batch_size]
        run = reconstruct(model, CrystalBatch.from_crystals(chunk), LangevinConfig(**{**config.__dict__,
                                                                                        "seed": config.seed + offset}))
        for sample, truth in zip(run.trajectory.final_structures(), chunk):
            reference = truth.to_structure()
            counts_right += len(sample) == len(reference)
            composition_right += sample.composition.reduced_composition == reference.composition.reduced_composition
            ok = structural_validity(sample)
            valid += ok
            rms.append(match_rms(sample, reference, matcher) if ok else None)
        bar.update(len(chunk))
    bar.close()
    seconds = time.time() - start
    matched = [r for r in rms if r is not None]
    n = max(1, len(crystals))
    return {"n": len(crystals), "match_rate": round(len(matched) / n, 4),
            "rmse": round(sum(matched) / len(matched), 4) if matched else None,
            "structural_validity": round(valid / n, 4), "num_atoms_right": round(counts_right / n, 4),
            "composition_right": round(composition_right / n, 4), "seconds_per_structure": round(seconds / n, 4)}


def generation_metrics(model: CDVAE, reference, training, num: int, cutoffs, config: LangevinConfig,
                       batch_size: int = 128, reference_fps=None, training_fingerprint=None) -> dict:
    """Decode ``num`` prior samples and score them against ``reference`` (structures)."""
    structures, start = [], time.time()
    for offset in range(0, num, batch_size):
        run = generate_from_prior(model, min(batch_size, num - offset),
                                  LangevinConfig(**{**config.__dict__, "seed": config.seed + offset}))
        structures += run.trajectory.final_structures()
    seconds = time.time() - start
    metrics = score_generation(structures, reference, cutoffs, training=training, reference_fps=reference_fps,
                               training_fingerprint=training_fingerprint)
    return {"n": len(structures), "seconds_per_structure": round(seconds / max(1, len(structures)), 4),
            **metrics.to_dict()}


def evaluate_cdvae(args, model: CDVAE, card: dict, device, reference_crystals, train_crystals, cutoffs,
                   reference_fps=None, training_fingerprint=None) -> dict:
    """The ``evaluate`` results of a CDVAE checkpoint (see the module docstring)."""
    config = langevin_config(args, model)
    steps_per_level, eta = config.resolved(model)
    crystals = list(reference_crystals)[: args.limit]
    with torch.no_grad():
        results = {"checkpoint": card.get("name"), "family": "cdvae", "task": "gen",
                   "checkpoint_steps": card.get("steps"), "split": args.split, "sampler": "langevin",
                   "levels": model.num_levels, "steps_per_level": steps_per_level, "step_lr": eta,
                   "seed": args.seed, "device": str(device),
                   "reconstruction": reconstruction_metrics(model, crystals, config, args.batch_size)}
        if args.num_generated:
            training = [c.to_structure() for c in train_crystals] if args.novelty else None
            results["generation"] = generation_metrics(
                model, [c.to_structure() for c in crystals], training, args.num_generated, cutoffs, config,
                args.batch_size, reference_fps, training_fingerprint)
    results["n"] = len(crystals)
    return results
