"""Metrics of a batch of generated crystals, for the Batch & metrics page (no Streamlit here).

The metrics themselves live in the core, ``diffusion.metrics`` (CDVAE / DiffCSP
conventions): structural validity (all distances > 0.5 angstrom), compositional validity
(SMACT), matching with StructureMatcher(stol=0.5, angle_tol=10, ltol=0.3), space group
by spglib at symprec 0.1. This module only applies them to a batch and words the result.
If the core module cannot be imported (an older checkout), structural validity falls
back to the sampler's recorded minimum distance and the rest is left out.
"""
from __future__ import annotations

import importlib
import math
from dataclasses import dataclass, field

import numpy as np
from pymatgen.core import Structure

VALID_MIN_DISTANCE = 0.5


@dataclass(frozen=True)
class Metric:
    name: str
    value: float | None       # a fraction in [0, 1] (unit "%"), or a plain number
    detail: str = ""
    unit: str = "%"

    def text(self) -> str:
        if self.value is None or (isinstance(self.value, float) and math.isnan(self.value)):
            return "n/a"
        if self.unit == "%":
            return f"{100 * self.value:.0f}%"
        return f"{self.value:.3g}{(' ' + self.unit) if self.unit else ''}"


@dataclass(frozen=True)
class BatchMetrics:
    metrics: list[Metric]
    valid: np.ndarray                       # (B,) bool: structurally (and, with the core, compositionally) valid
    matched: np.ndarray | None = None       # (B,) bool when known structures were given
    rmse: np.ndarray | None = None          # (B,) normalized RMS displacement of matches (nan if none)
    source: str = "diffusion.metrics"
    notes: list[str] = field(default_factory=list)


def _core():
    try:
        return importlib.import_module("diffusion.metrics")
    except ImportError:
        return None


def structural_validity(min_distances: np.ndarray) -> np.ndarray:
    """(B,) True where the shortest interatomic distance exceeds 0.5 angstrom (the fallback)."""
    d = np.asarray(min_distances, float)
    return np.isfinite(d) & (d > VALID_MIN_DISTANCE)


def _fraction(mask: np.ndarray) -> float | None:
    return float(np.mean(mask)) if len(mask) else None


def batch_metrics(samples: list[Structure], min_distances: np.ndarray, references: list[Structure] | None = None,
                  requested_space_group: int | None = None) -> BatchMetrics:
    """Metrics of B generated structures.

    Args:
        samples: the B final structures.
        min_distances: (B,) shortest distances recorded by the sampler (used without the core).
        references: known structures of the asked composition (CSP), or None.
        requested_space_group: the space group the samples were conditioned on, if any.
    """
    core = _core()
    notes: list[str] = []
    if core is None:
        structural = structural_validity(min_distances)
        metrics = [Metric("structurally valid", _fraction(structural),
                          f"{int(structural.sum())} of {len(samples)} with all distances > {VALID_MIN_DISTANCE} Å")]
        notes.append("diffusion.metrics is not available: only structural validity is shown.")
        return BatchMetrics(metrics, structural, source="explorer fallback", notes=notes)

    structural = np.array([core.structural_validity(s) for s in samples], bool)
    compositional = np.array([core.compositional_validity(s) for s in samples], bool)
    valid = structural & compositional
    metrics = [
        Metric("structurally valid", _fraction(structural),
               f"{int(structural.sum())} of {len(samples)} with all distances > {core.DISTANCE_CUTOFF} Å"),
        Metric("charge-balanced (SMACT)", _fraction(compositional),
               f"{int(compositional.sum())} of {len(samples)} pass SMACT's charge-neutrality test"),
    ]
    if requested_space_group:
        groups = np.array([core.space_group_number(s) for s in samples])
        hits = groups == int(requested_space_group)
        metrics.append(Metric(f"in space group {requested_space_group}", _fraction(hits),
                              f"{int(hits.sum())} of {len(samples)} found by spglib (symprec {core.SYMPREC})"))
    matched = rmse = None
    if references is not None and not references:
        notes.append("No crystal of this composition and size is in the model's training data, so there is no "
                     "known structure to match against.")
    if references:
        matcher = core.csp_matcher()
        rmse = np.full(len(samples), np.nan)
        for i, sample in enumerate(samples):
            found = [r for r in (core.match_rms(sample, ref, matcher) for ref in references) if r is not None]
            if found:
                rmse[i] = min(found)
        matched = np.isfinite(rmse)
        hits = matched & valid
        metrics.append(Metric("match a known structure", _fraction(hits),
                              f"{int(hits.sum())} valid samples of {len(samples)} match one of {len(references)} known "
                              "structures of this composition (StructureMatcher stol 0.5, ltol 0.3, angle_tol 10)"))
        if hits.any():
            metrics.append(Metric("RMS displacement of matches", float(np.nanmean(rmse[hits])),
                                  "normalized by (volume / atoms)^(1/3), as in CDVAE / DiffCSP", unit=""))
        reference_volume = float(np.median([r.volume for r in references]))
        error = float(np.mean([abs(s.volume / reference_volume - 1) for s in samples]))
        metrics.append(Metric("volume error", error, "mean |V / V_known - 1|: the matcher rescales volumes, so a wrong "
                              "cell size is only visible here"))
    return BatchMetrics(metrics, valid, matched, rmse, "diffusion.metrics", notes)
