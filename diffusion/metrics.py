"""The field's standard metrics, computed with pymatgen and SMACT (CDVAE / DiffCSP conventions).

CSP (Xie et al. 2021; Jiao et al. 2023): a sample *matches* its ground truth when
StructureMatcher(stol=0.5, angle_tol=10, ltol=0.3) finds a mapping, and a match only
counts for a *valid* sample (SMACT-valid composition and all distances > 0.5 A).
The matcher rescales volumes (scale=True), so the volume error is reported separately.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import numpy as np

from pymatgen.core import Structure

if TYPE_CHECKING:   # imported where a matcher is built: it pulls in scipy.optimize (a third of a second)
    from pymatgen.analysis.structure_matcher import StructureMatcher

from .tolerances import CSP_MATCHER_TOLERANCES, MIN_VOLUME, SYMPREC, VALID_MIN_DISTANCE as DISTANCE_CUTOFF


def csp_matcher() -> StructureMatcher:
    from pymatgen.analysis.structure_matcher import StructureMatcher

    return StructureMatcher(**CSP_MATCHER_TOLERANCES)


def structural_validity(structure: Structure, cutoff: float = DISTANCE_CUTOFF) -> bool:
    """All interatomic distances (periodic images included) > cutoff and volume > 0.1 A^3."""
    if not math.isfinite(structure.volume) or structure.volume < MIN_VOLUME:
        return False
    if len(structure) == 1:
        return bool(min(structure.lattice.abc) > cutoff)
    distances = structure.distance_matrix + np.eye(len(structure)) * (cutoff + 10.0)
    return bool(distances.min() > cutoff)


def compositional_validity(structure: Structure) -> bool:
    """SMACT charge neutrality + Pauling electronegativity test (single elements and alloys pass)."""
    from smact.screening import smact_validity

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return bool(smact_validity(structure.composition))
        except Exception:
            return False


def space_group_number(structure: Structure, symprec: float = SYMPREC) -> int:
    """spglib's international number (0 when symmetry analysis fails)."""
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    try:
        return int(SpacegroupAnalyzer(structure, symprec=symprec).get_space_group_number())
    except Exception:
        return 0


def match_rms(sample: Structure, truth: Structure, matcher: StructureMatcher | None = None) -> float | None:
    """Normalized RMS displacement of a match, or None when the matcher finds none."""
    matcher = matcher or csp_matcher()
    try:
        result = matcher.get_rms_dist(sample, truth)
    except Exception:
        return None
    return None if result is None else float(result[0])


@dataclass(frozen=True)
class CSPScore:
    """Per-structure outcome of one sample against its ground truth."""

    valid: bool
    rms: float | None            # None: no match (or invalid sample)
    volume_ratio: float          # V_sample / V_truth
    space_group: int             # spglib number of the sample
    requested_space_group: int   # 0 when none was asked


def score_csp(sample: Structure, truth: Structure, requested_space_group: int = 0,
              matcher: StructureMatcher | None = None) -> CSPScore:
    valid = structural_validity(sample) and compositional_validity(sample)
    rms = match_rms(sample, truth, matcher) if valid else None
    group = space_group_number(sample) if requested_space_group else 0
    return CSPScore(valid, rms, float(sample.volume / truth.volume), group, requested_space_group)


@dataclass(frozen=True)
class CSPMetrics:
    n: int
    k: int
    match_rate: float            # best of k, valid samples only (fraction)
    rmse: float                  # mean RMS over matched structures
    match_rate_k1: float         # first sample only
    rmse_k1: float
    raw_match_rate: float        # matcher alone, validity ignored (k = 1)
    validity: float              # valid samples / all samples
    volume_error: float          # mean |V_sample / V_truth - 1| over all k = 1 samples
    space_group_rate: float | None  # fraction of samples in the requested group (None: not asked)

    def to_dict(self) -> dict:
        """JSON-ready: floats rounded, NaN (nothing to average) as None."""
        return {k: (None if v != v else round(v, 5)) if isinstance(v, float) else v for k, v in asdict(self).items()}


def aggregate_csp(scores: list[list[CSPScore]], raw_k1: list[bool]) -> CSPMetrics:
    """scores[i] = the k samples of structure i; raw_k1[i] = matcher result for sample 0 ignoring validity."""
    n, k = len(scores), len(scores[0]) if scores else 0
    best = [min((s.rms for s in row if s.rms is not None), default=None) for row in scores]
    first = [row[0].rms for row in scores]
    matched, matched1 = [r for r in best if r is not None], [r for r in first if r is not None]
    asked = [s for row in scores for s in row if s.requested_space_group]
    return CSPMetrics(
        n=n, k=k,
        match_rate=len(matched) / n if n else math.nan,
        rmse=float(np.mean(matched)) if matched else math.nan,
        match_rate_k1=len(matched1) / n if n else math.nan,
        rmse_k1=float(np.mean(matched1)) if matched1 else math.nan,
        raw_match_rate=float(np.mean(raw_k1)) if raw_k1 else math.nan,
        validity=float(np.mean([s.valid for row in scores for s in row])) if n else math.nan,
        volume_error=float(np.mean([abs(row[0].volume_ratio - 1) for row in scores])) if n else math.nan,
        space_group_rate=(float(np.mean([s.space_group == s.requested_space_group for s in asked])) if asked else None),
    )
