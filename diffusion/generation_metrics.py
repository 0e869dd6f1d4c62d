"""Metrics for ab initio generation (CDVAE, Xie et al. 2021, section 5; DiffCSP, Jiao et al. 2023).

validity      structural (all distances > 0.5 A, volume > 0.1 A^3) and compositional (SMACT).
coverage      COV-R: fraction of reference crystals with a generated crystal closer than both
              cutoffs; COV-P: fraction of generated crystals (all of them, invalid ones count as
              misses) with a reference crystal closer than both cutoffs. Distances are Euclidean
              between fingerprints computed only for valid samples:
                structure   = mean over sites of matminer's CrystalNNFingerprint("ops") (61 numbers)
                composition = matminer's ElementProperty("magpie") (132 numbers), standardized
                              with the reference set's mean and standard deviation.
              CDVAE standardizes the composition fingerprint with constants fitted on its own
              training data; ours uses the reference set, so COV values compare closely but not
              exactly with the published ones.
property      Wasserstein distance between generated (valid) and reference distributions of the
              density (g/cm^3) and of the number of distinct elements.
uniqueness    fraction of valid samples that match no earlier valid sample (StructureMatcher).
novelty       fraction of valid samples that match no training crystal; only the
              ``novelty_candidates`` training crystals nearest in fingerprint space (and with the
              same reduced formula) are given to the matcher, since matching all pairs is too slow.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Callable, Sequence

import numpy as np
from pymatgen.core import Structure

if TYPE_CHECKING:
    from pymatgen.analysis.structure_matcher import StructureMatcher

from .metrics import compositional_validity, csp_matcher, structural_validity

# Cutoffs of CDVAE's evaluation code (COV_Cutoffs), per dataset: (structure, composition).
COVERAGE_CUTOFFS: dict[str, tuple[float, float]] = {
    "mp_20": (0.4, 10.0),
    "carbon_24": (0.2, 4.0),
    "perov_5": (0.2, 4.0),
}

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Fingerprints:
    """structure: (n, 61); composition: (n, 132) raw (unstandardized)."""

    structure: np.ndarray
    composition: np.ndarray


def _quiet(fn):
    def wrapper(*args, **kwargs):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return fn(*args, **kwargs)
    return wrapper


@_quiet
def structure_fingerprint(structure: Structure) -> np.ndarray:
    """(61,) mean CrystalNN order-parameter fingerprint over the sites; NaN where CrystalNN fails."""
    from matminer.featurizers.site.fingerprint import CrystalNNFingerprint

    featurizer = CrystalNNFingerprint.from_preset("ops")
    try:
        sites = np.array([featurizer.featurize(structure, i) for i in range(len(structure))], dtype=np.float64)
        return sites.mean(axis=0)
    except Exception:
        return np.full(len(featurizer.feature_labels()), np.nan)


@_quiet
def composition_fingerprint(structure: Structure) -> np.ndarray:
    """(132,) Magpie element-property statistics of the composition."""
    from matminer.featurizers.composition.composite import ElementProperty

    return np.asarray(ElementProperty.from_preset("magpie").featurize(structure.composition), dtype=np.float64)


def fingerprints(structures: Sequence[Structure], progress: Progress | None = None) -> Fingerprints:
    structure_fps, composition_fps = [], []
    for i, s in enumerate(structures):
        structure_fps.append(structure_fingerprint(s))
        composition_fps.append(composition_fingerprint(s))
        if progress:
            progress(i + 1, len(structures))
    return Fingerprints(np.array(structure_fps).reshape(len(structures), -1),
                        np.array(composition_fps).reshape(len(structures), -1))


def memoized_fingerprints(structures: Sequence[Structure]) -> Callable[[int], np.ndarray]:
    """j -> structure_fingerprint(structures[j]), each computed at most once."""
    cache: dict[int, np.ndarray] = {}

    def get(j: int) -> np.ndarray:
        if j not in cache:
            cache[j] = structure_fingerprint(structures[j])
        return cache[j]
    return get


def _pairwise(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(n, d), (m, d) -> (n, m) Euclidean distances; rows with NaN get +inf."""
    d = np.sqrt(np.maximum(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1), 0.0))
    return np.where(np.isnan(d), np.inf, d)


def coverage(generated: Fingerprints, reference: Fingerprints, num_generated: int,
             cutoffs: tuple[float, float]) -> tuple[float, float]:
    """(COV-R, COV-P). ``generated`` holds the valid samples only; ``num_generated`` counts all."""
    if len(generated.structure) == 0 or len(reference.structure) == 0:
        return 0.0, 0.0
    mean = np.nanmean(reference.composition, axis=0)
    std = np.nanstd(reference.composition, axis=0)
    std = np.where(std > 1e-12, std, 1.0)
    structure_d = _pairwise(generated.structure, reference.structure)
    composition_d = _pairwise((generated.composition - mean) / std, (reference.composition - mean) / std)
    # CDVAE takes the two minima separately (a reference crystal is covered when its nearest
    # sample by structure and its nearest sample by composition are both within the cutoffs).
    recall = (structure_d.min(axis=0) <= cutoffs[0]) & (composition_d.min(axis=0) <= cutoffs[1])
    precision = (structure_d.min(axis=1) <= cutoffs[0]) & (composition_d.min(axis=1) <= cutoffs[1])
    return float(recall.mean()), float(precision.sum() / max(1, num_generated))


def wasserstein(a: Sequence[float], b: Sequence[float]) -> float:
    from scipy.stats import wasserstein_distance

    a, b = [x for x in a if math.isfinite(x)], [x for x in b if math.isfinite(x)]
    return float(wasserstein_distance(a, b)) if a and b else math.nan




@_quiet
def _fits(matcher: StructureMatcher, a: Structure, b: Structure) -> bool:
    try:
        return bool(matcher.fit(a, b))
    except Exception:
        return False


def uniqueness(structures: Sequence[Structure], structure_fps: np.ndarray | None = None,
               candidates: int = 10) -> float:
    """Fraction of structures that match no earlier one of the same reduced formula.

    With ``structure_fps`` (n, 61), only the ``candidates`` earlier structures nearest in
    fingerprint space are given to the matcher (carbon: one formula, 500 samples would be
    125,000 matcher calls otherwise).
    """
    if not structures:
        return math.nan
    matcher, seen, unique = csp_matcher(), {}, 0
    for i, s in enumerate(structures):
        group = seen.setdefault(s.composition.reduced_formula, [])
        earlier = group
        if structure_fps is not None and len(group) > candidates:
            distances = _pairwise(structure_fps[i:i + 1], structure_fps[group])[0]
            earlier = [group[k] for k in np.argsort(distances)[:candidates]]
        if not any(_fits(matcher, s, structures[j]) for j in earlier):
            unique += 1
        group.append(i)
    return unique / len(structures)


def novelty(structures: Sequence[Structure], structure_fps: np.ndarray, training: Sequence[Structure],
            training_fingerprint: Callable[[int], np.ndarray], candidates: int = 10) -> float:
    """Fraction of structures matching none of their nearest training crystals of the same formula.

    structure_fps: (n, 61) fingerprints of ``structures``; training_fingerprint(j): (61,) of
    training[j], only asked for when a formula has more than ``candidates`` training crystals.
    """
    if not structures:
        return math.nan
    matcher = csp_matcher()
    by_formula: dict[str, list[int]] = {}
    for j, t in enumerate(training):
        by_formula.setdefault(t.composition.reduced_formula, []).append(j)
    novel = 0
    for i, s in enumerate(structures):
        same = by_formula.get(s.composition.reduced_formula, [])
        if len(same) > candidates:
            fps = np.array([training_fingerprint(j) for j in same])
            order = np.argsort(_pairwise(structure_fps[i:i + 1], fps)[0])
            same = [same[k] for k in order[:candidates]]
        if not any(_fits(matcher, s, training[j]) for j in same):
            novel += 1
    return novel / len(structures)


def element_count(structure: Structure) -> int:
    return len(structure.composition.elements)


@dataclass(frozen=True)
class GenerationMetrics:
    n: int                       # generated samples
    n_reference: int
    structural_validity: float
    compositional_validity: float
    validity: float              # both
    cov_recall: float
    cov_precision: float
    density_wasserstein: float   # g/cm^3
    num_elements_wasserstein: float
    uniqueness: float            # among valid samples
    novelty: float | None        # among valid samples; None when no training set was given
    cutoffs: tuple[float, float]

    def to_dict(self) -> dict:
        return {k: (None if isinstance(v, float) and v != v else round(v, 5) if isinstance(v, float) else v)
                for k, v in asdict(self).items()}


def score_generation(samples: Sequence[Structure], reference: Sequence[Structure],
                     cutoffs: tuple[float, float], training: Sequence[Structure] | None = None,
                     reference_fps: Fingerprints | None = None,
                     training_fingerprint: Callable[[int], np.ndarray] | None = None, progress: Progress | None = None) -> GenerationMetrics:
    """All generation metrics of ``samples`` against ``reference`` (and ``training`` for novelty)."""
    structural = [structural_validity(s) for s in samples]
    compositional = [compositional_validity(s) for s in samples]
    valid = [s for s, a, b in zip(samples, structural, compositional) if a and b]
    generated_fps = fingerprints(valid, progress)
    reference_fps = reference_fps if reference_fps is not None else fingerprints(reference)
    recall, precision = coverage(generated_fps, reference_fps, len(samples), cutoffs)
    novel = None
    if training is not None:
        if training_fingerprint is None:
            training_fingerprint = memoized_fingerprints(training)
        novel = novelty(valid, generated_fps.structure, training, training_fingerprint)
    return GenerationMetrics(
        n=len(samples), n_reference=len(reference),
        structural_validity=float(np.mean(structural)) if samples else math.nan,
        compositional_validity=float(np.mean(compositional)) if samples else math.nan,
        validity=len(valid) / len(samples) if samples else math.nan,
        cov_recall=recall, cov_precision=precision,
        density_wasserstein=wasserstein([float(s.density) for s in valid], [float(s.density) for s in reference]),
        num_elements_wasserstein=wasserstein([element_count(s) for s in valid], [element_count(s) for s in reference]),
        uniqueness=uniqueness(valid, generated_fps.structure), novelty=novel, cutoffs=tuple(cutoffs),
    )
