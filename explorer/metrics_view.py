"""Metrics of a batch of generated crystals, for the Batch & metrics page (no Streamlit here).

The metrics themselves live in the core (CDVAE / DiffCSP conventions, tolerances in
``diffusion/tolerances.py``): structural validity, compositional validity (SMACT), matching with
StructureMatcher, space group by spglib. This module only applies them to a batch and words the result.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from pymatgen.core import Structure

from diffusion.api import (CSP_MATCHER_TOLERANCES, SYMPREC, VALID_MIN_DISTANCE, compositional_validity, csp_matcher,
                           match_rms, space_group_number, structural_validity)


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
    valid: np.ndarray                       # (B,) bool: structurally and compositionally valid
    matched: np.ndarray | None = None       # (B,) bool when known structures were given
    rmse: np.ndarray | None = None          # (B,) normalized RMS displacement of matches (nan if none)
    notes: list[str] = field(default_factory=list)


def _fraction(mask: np.ndarray) -> float | None:
    return float(np.mean(mask)) if len(mask) else None


def batch_metrics(samples: list[Structure], references: list[Structure] | None = None,
                  requested_space_group: int | None = None) -> BatchMetrics:
    """Metrics of B generated structures.

    Args:
        samples: the B final structures.
        references: known structures of the asked composition (CSP), or None.
        requested_space_group: the space group the samples were conditioned on, if any.
    """
    notes: list[str] = []
    structural = np.array([structural_validity(s) for s in samples], bool)
    compositional = np.array([compositional_validity(s) for s in samples], bool)
    valid = structural & compositional
    metrics = [
        Metric("structurally valid", _fraction(structural),
               f"{int(structural.sum())} of {len(samples)} with all distances > {VALID_MIN_DISTANCE} Å"),
        Metric("charge-balanced (SMACT)", _fraction(compositional),
               f"{int(compositional.sum())} of {len(samples)} pass SMACT's charge-neutrality test"),
    ]
    if requested_space_group:
        groups = np.array([space_group_number(s) for s in samples])
        hits = groups == int(requested_space_group)
        metrics.append(Metric(f"in space group {requested_space_group}", _fraction(hits),
                              f"{int(hits.sum())} of {len(samples)} found by spglib (symprec {SYMPREC})"))
    matched = rmse = None
    if references is not None and not references:
        notes.append("No crystal of this composition and size is in the model's training data, so there is no "
                     "known structure to match against.")
    if references:
        matcher = csp_matcher()
        rmse = np.full(len(samples), np.nan)
        for i, sample in enumerate(samples):
            found = [r for r in (match_rms(sample, ref, matcher) for ref in references) if r is not None]
            if found:
                rmse[i] = min(found)
        matched = np.isfinite(rmse)
        hits = matched & valid
        metrics.append(Metric("match a known structure", _fraction(hits),
                              f"{int(hits.sum())} valid samples of {len(samples)} match one of {len(references)} known "
                              f"structures of this composition (StructureMatcher {CSP_MATCHER_TOLERANCES})"))
        if hits.any():
            metrics.append(Metric("RMS displacement of matches", float(np.nanmean(rmse[hits])),
                                  "normalized by (volume / atoms)^(1/3), as in CDVAE / DiffCSP", unit=""))
        reference_volume = float(np.median([r.volume for r in references]))
        error = float(np.mean([abs(s.volume / reference_volume - 1) for s in samples]))
        metrics.append(Metric("volume error", error, "mean |V / V_known - 1|: the matcher rescales volumes, so a wrong "
                              "cell size is only visible here"))
    return BatchMetrics(metrics, valid, matched, rmse, notes)
