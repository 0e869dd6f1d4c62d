"""Polymorph-aware CSP metrics METRe and cRMSE (Martirossyan et al., "All that structure matches does not
glitter", arXiv:2509.12178, 2025; reference implementation by co-authors: OMatG, omg/analysis/analysis.py).

The classic match rate pairs sample i only with ground truth i. When the reference set holds several
polymorphs of one composition, a sample that reproduces polymorph B while it was asked for polymorph A
counts as a miss, although the model was only told the composition. The paper's fixes:

METRe (match everyone to reference)
    Every generated structure is compared with *every* reference structure of the same (reduced)
    composition. A reference r is matched when at least one generated structure matches it; its best RMS is
    the smallest RMS over those matches. With N references,
        METRe = (1/N) * #{r : r is matched}.
    Each reference can be credited once, so generating the same polymorph twice does not cover two
    polymorphs. Without polymorphs (and k = 1) METRe equals the one-to-one match rate. References that are
    duplicates of each other inflate it (one sample matches both); the reference set should be unique.

cRMSE (corrected RMSE)
    The usual RMSE averages only over matched references and so rewards a model that matches few crystals
    well. cRMSE averages over *all* N references and scores an unmatched one with the matcher's site
    tolerance stol, the largest normalized RMS a StructureMatcher match can have:
        cRMSE = (1/N) * sum_r (best_rms(r) if r is matched else stol).

RMS values are pymatgen's ``StructureMatcher.get_rms_dist`` first element (RMS displacement normalized by
(V/N_sites)^(1/3)); matcher tolerances are the CDVAE/DiffCSP ones (stol=0.5, angle_tol=10, ltol=0.3).

k samples per crystal (project extension; the paper and OMatG use one generated structure per reference):
all k samples of every crystal of a composition are pooled, so a reference is matched when any of them
matches it and its RMS is the best one. With k = 1 this is exactly the paper's definition, and without
polymorphs it is the project's best-of-k match rate (``diffusion.metrics.aggregate_csp``).
"""
from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Hashable, Mapping, Sequence

from pymatgen.core import Structure

if TYPE_CHECKING:
    from pymatgen.analysis.structure_matcher import StructureMatcher

from .metrics import compositional_validity, csp_matcher, match_rms, structural_validity
from .tolerances import CSP_MATCHER_TOLERANCES

# cRMSE scores an unmatched reference with the StructureMatcher site tolerance stol (arXiv:2509.12178,
# cRMSE definition; OMatG uses `rmsd if matched else stol`). 0.5 with the project's CSP matcher.
UNMATCHED_RMS_PENALTY: float = float(CSP_MATCHER_TOLERANCES["stol"])

SampleRms = Mapping[int, float | None]
"""RMS of one sample against references, keyed by reference index; None (or a missing key): no match."""

RmsTable = Sequence[Sequence[SampleRms]]
"""rms[i][j][r]: RMS of sample j of crystal i against reference r (same composition as crystal i)."""


@dataclass(frozen=True)
class PolymorphMetrics:
    """METRe and cRMSE over a reference set, plus the per-reference best RMS they are built from."""

    n_references: int
    n_matched: int
    metre: float                 # fraction of references matched by some sample (NaN: no references)
    crmse: float                 # mean over all references, unmatched scored as `penalty` (NaN: none)
    rmse: float                  # mean best RMS over matched references only (NaN: none matched)
    penalty: float               # RMS given to an unmatched reference in cRMSE (the matcher's stol)
    best_rms: tuple[float | None, ...]   # per reference: best RMS over all samples, None if unmatched

    def to_dict(self) -> dict:
        """JSON-ready summary (no per-reference list); floats rounded, NaN as None."""
        summary = {"n_references": self.n_references, "n_matched": self.n_matched, "metre": self.metre,
                   "crmse": self.crmse, "rmse": self.rmse, "penalty": self.penalty}
        return {k: (None if v != v else round(v, 5)) if isinstance(v, float) else v for k, v in summary.items()}


def group_by_composition(keys: Sequence[Hashable]) -> dict[Hashable, list[int]]:
    """Reference indices per composition key, in order.

    keys: keys[r] is the composition key of reference r (e.g. its reduced formula); equal keys are polymorphs.
    """
    groups: dict[Hashable, list[int]] = defaultdict(list)
    for index, key in enumerate(keys):
        groups[key].append(index)
    return dict(groups)


def check_rms_table(keys: Sequence[Hashable], rms: RmsTable) -> None:
    """Raise ValueError unless rms has one row per reference and only same-composition entries.

    keys: composition key of each reference; crystal i was generated for reference i.
    rms: the RMS table (see ``RmsTable``).
    """
    if len(rms) != len(keys):
        raise ValueError(f"rms has {len(rms)} crystals but there are {len(keys)} references")
    for i, samples in enumerate(rms):
        for j, sample in enumerate(samples):
            for r in sample:
                if not 0 <= r < len(keys) or keys[r] != keys[i]:
                    raise ValueError(f"rms[{i}][{j}] refers to reference {r}, not a polymorph of crystal {i}")


def best_rms_per_reference(rms: RmsTable, n_references: int) -> list[float | None]:
    """For each reference, the smallest RMS over every sample of every crystal; None when nothing matched.

    rms: the RMS table (see ``RmsTable``); samples of all crystals are pooled (METRe's "match everyone").
    n_references: number of references N.
    """
    best: list[float | None] = [None] * n_references
    for samples in rms:
        for sample in samples:
            for r, value in sample.items():
                if value is not None and (best[r] is None or value < best[r]):
                    best[r] = float(value)
    return best


def metre(best_rms: Sequence[float | None]) -> float:
    """METRe: fraction of references matched by at least one sample (NaN for no references).

    best_rms: per reference, its best RMS or None when unmatched (``best_rms_per_reference``).
    """
    if not best_rms:
        return math.nan
    return sum(value is not None for value in best_rms) / len(best_rms)


def crmse(best_rms: Sequence[float | None], penalty: float = UNMATCHED_RMS_PENALTY) -> float:
    """cRMSE: mean best RMS over all references, an unmatched reference counting as `penalty` (NaN if none).

    best_rms: per reference, its best RMS or None when unmatched.
    penalty: RMS of an unmatched reference; the paper uses the matcher's stol.
    """
    if not best_rms:
        return math.nan
    return sum(penalty if value is None else value for value in best_rms) / len(best_rms)


def matched_rmse(best_rms: Sequence[float | None]) -> float:
    """Uncorrected RMSE: mean best RMS over matched references only (NaN when none matched).

    best_rms: per reference, its best RMS or None when unmatched.
    """
    matched = [value for value in best_rms if value is not None]
    return sum(matched) / len(matched) if matched else math.nan


def metrics_from_rms(keys: Sequence[Hashable], rms: RmsTable,
                     penalty: float = UNMATCHED_RMS_PENALTY) -> PolymorphMetrics:
    """METRe, cRMSE and RMSE from a precomputed RMS table (no structure matching here).

    keys: composition key of each reference r; the reference set is the evaluated crystals themselves,
        crystal i having been generated for the composition of reference i.
    rms: rms[i][j] maps reference index r (a polymorph of crystal i, r == i included) to the RMS of sample j
        of crystal i against reference r, or None when the matcher finds no match. k may differ per crystal.
    penalty: RMS scored for an unmatched reference in cRMSE (default: the project matcher's stol, 0.5).
    """
    check_rms_table(keys, rms)
    best = best_rms_per_reference(rms, len(keys))
    return PolymorphMetrics(
        n_references=len(keys), n_matched=sum(value is not None for value in best),
        metre=metre(best), crmse=crmse(best, penalty), rmse=matched_rmse(best),
        penalty=float(penalty), best_rms=tuple(best))


def composition_key(structure: Structure) -> str:
    """The key polymorphs share: the reduced formula (OMatG compares reduced compositions)."""
    return structure.composition.reduced_formula


def is_valid_sample(structure: Structure) -> bool:
    """Project convention (diffusion.metrics): only structurally and compositionally valid samples match."""
    return structural_validity(structure) and compositional_validity(structure)


def sample_rms(sample: Structure, references: Sequence[Structure], candidates: Sequence[int],
               matcher: StructureMatcher) -> dict[int, float | None]:
    """RMS of one sample against each candidate reference (None where the matcher finds no match).

    sample: one generated structure.
    references: all reference structures.
    candidates: indices of the references to compare with (the polymorphs of the sample's composition).
    matcher: the StructureMatcher to use.
    """
    return {r: match_rms(sample, references[r], matcher) for r in candidates}


def rms_table(samples: Sequence[Sequence[Structure]], references: Sequence[Structure],
              matcher: StructureMatcher, require_valid: bool = True,
              ) -> tuple[list[str], list[list[dict[int, float | None]]]]:
    """Composition keys of the references and the RMS table of every sample against its polymorphs.

    samples: samples[i] = the k generated structures for reference i.
    references: the reference structures (one per evaluated crystal, aligned with samples).
    matcher: the StructureMatcher to use.
    require_valid: when True an invalid sample (``is_valid_sample``) matches nothing and is not matched.
    """
    if len(samples) != len(references):
        raise ValueError(f"{len(samples)} sample lists for {len(references)} references")
    keys = [composition_key(structure) for structure in references]
    groups = group_by_composition(keys)
    table = [[sample_rms(sample, references, groups[keys[i]], matcher)
              if not require_valid or is_valid_sample(sample) else {}
              for sample in row] for i, row in enumerate(samples)]
    return keys, table


def polymorph_metrics(samples: Sequence[Sequence[Structure]], references: Sequence[Structure],
                      matcher: StructureMatcher | None = None, require_valid: bool = True,
                      penalty: float | None = None) -> PolymorphMetrics:
    """METRe and cRMSE of generated structures against a reference set that may hold polymorphs.

    samples: samples[i] = list of the generated pymatgen Structures (k of them) for reference i.
    references: reference pymatgen Structures, one per evaluated crystal and aligned with samples; pass the
        whole validation/test set to get the paper's numbers (polymorphs are grouped within this list).
    matcher: StructureMatcher (default ``diffusion.metrics.csp_matcher()``: stol=0.5, angle_tol=10, ltol=0.3).
    require_valid: apply the project's validity rule (SMACT + 0.5 A distances) before matching, as the
        match rate of ``diffusion.metrics`` does; False gives the paper's plain (all-structures) METRe.
    penalty: RMS scored for an unmatched reference in cRMSE (default: ``matcher.stol``, as in the paper).
    """
    matcher = matcher or csp_matcher()
    keys, table = rms_table(samples, references, matcher, require_valid)
    return metrics_from_rms(keys, table, float(matcher.stol) if penalty is None else penalty)
