"""Metrics of a batch of generated crystals, for the Batch & metrics page (no Streamlit here).

TODO(metrics): ``diffusion/metrics.py`` (validity, match rate / RMSE, coverage, property
statistics; DESIGN.md section 7) is being written separately. ``batch_metrics`` already
calls into it when it is importable (``_core_metrics``); until then it computes the two
things the page needs itself:
  - structural validity: every interatomic distance > 0.5 angstrom (periodic), from the
    sampler's recorded minimum distance;
  - for structure prediction, a match against known structures of the same composition in
    the model's training data, with pymatgen's StructureMatcher(stol=0.5, angle_tol=10,
    ltol=0.3), the field's standard settings.
When the core module lands, delete the fallbacks that it replaces.
"""
from __future__ import annotations

import importlib
import math
import warnings
from dataclasses import dataclass, field

import numpy as np
from pymatgen.core import Structure

VALID_MIN_DISTANCE = 0.5


@dataclass(frozen=True)
class Metric:
    name: str
    value: float | None       # a fraction in [0, 1], a length, or None when not computable
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
    valid: np.ndarray                       # (B,) bool, structural validity per sample
    matched: np.ndarray | None = None       # (B,) bool when references were given
    rmse: np.ndarray | None = None          # (B,) normalized RMS displacement of matches (nan if none)
    source: str = "explorer fallback"
    notes: list[str] = field(default_factory=list)


def _core_metrics():
    """``diffusion.metrics`` when it exists (TODO(metrics): use its functions below)."""
    try:
        return importlib.import_module("diffusion.metrics")
    except ImportError:
        return None


def structural_validity(min_distances: np.ndarray) -> np.ndarray:
    """(B,) True where the shortest interatomic distance exceeds 0.5 angstrom."""
    d = np.asarray(min_distances, float)
    return np.isfinite(d) & (d > VALID_MIN_DISTANCE)


def _match(samples: list[Structure], references: list[Structure]) -> tuple[np.ndarray, np.ndarray]:
    from pymatgen.analysis.structure_matcher import StructureMatcher

    matcher = StructureMatcher(stol=0.5, angle_tol=10, ltol=0.3)
    matched = np.zeros(len(samples), bool)
    rmse = np.full(len(samples), np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i, sample in enumerate(samples):
            best = math.inf
            for ref in references:
                try:
                    result = matcher.get_rms_dist(sample, ref)
                except Exception:
                    result = None
                if result is not None:
                    best = min(best, float(result[0]))
            if math.isfinite(best):
                matched[i], rmse[i] = True, best
    return matched, rmse


def batch_metrics(samples: list[Structure], min_distances: np.ndarray,
                  references: list[Structure] | None = None) -> BatchMetrics:
    """Metrics of B generated structures (references: known structures of the asked composition)."""
    core = _core_metrics()
    notes = []
    source = "explorer fallback"
    valid = structural_validity(min_distances)
    if core is not None and hasattr(core, "structural_validity"):
        # TODO(metrics): adapt to the final API of diffusion.metrics once it is merged
        try:
            valid = np.asarray([bool(core.structural_validity(s)) for s in samples])
            source = "diffusion.metrics"
        except Exception as exc:  # keep the page working whatever the module's state
            notes.append(f"diffusion.metrics.structural_validity failed ({exc}); used the fallback")
    metrics = [Metric("structurally valid", float(valid.mean()) if len(valid) else None,
                      f"{int(valid.sum())} of {len(valid)} with all distances > {VALID_MIN_DISTANCE} Å")]
    try:
        from smact.screening import smact_validity
        comp_valid = np.asarray([bool(smact_validity(s.composition.reduced_formula)) for s in samples])
        metrics.append(Metric("charge-balanced composition (SMACT)", float(comp_valid.mean()),
                              f"{int(comp_valid.sum())} of {len(samples)}"))
    except Exception:
        pass
    matched = rmse = None
    if references is not None and not references:
        notes.append("No crystal of this composition and size is in the training data, so there is no known "
                     "structure to match against.")
    if references:
        matched, rmse = _match(samples, references)
        hits = matched & valid
        metrics.append(Metric("match a known structure", float(hits.mean()) if len(hits) else None,
                              f"{int(hits.sum())} valid samples of {len(samples)} match one of {len(references)} "
                              "known structures (StructureMatcher stol 0.5, ltol 0.3, angle_tol 10)"))
        if hits.any():
            metrics.append(Metric("RMS displacement of matches", float(np.nanmean(rmse[hits])),
                                  "normalized by (volume / atoms)^(1/3), as in CDVAE / DiffCSP", unit=""))
    return BatchMetrics(metrics, valid, matched, rmse, source, notes)
