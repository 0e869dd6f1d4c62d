"""METRe and cRMSE (Martirossyan et al. 2025): hand-computed RMS tables, then real NaCl polymorphs."""
import math

import pytest
from pymatgen.core import Lattice, Structure

from diffusion.metrics import CSPScore, aggregate_csp, csp_matcher, match_rms
from diffusion.polymorph_metrics import (UNMATCHED_RMS_PENALTY, best_rms_per_reference, crmse, group_by_composition,
                                         metre, metrics_from_rms, polymorph_metrics)


def test_penalty_is_the_project_matchers_site_tolerance():
    assert UNMATCHED_RMS_PENALTY == 0.5 == csp_matcher().stol


def test_grouping_collects_polymorphs_in_order():
    assert group_by_composition(["NaCl", "SrTiO3", "NaCl"]) == {"NaCl": [0, 2], "SrTiO3": [1]}


def test_sample_matching_the_other_polymorph_credits_that_polymorph():
    # references 0 (A) and 1 (B) are polymorphs; crystal 0's sample is B, crystal 1's sample matches nothing
    keys = ["X", "X"]
    rms = [[{0: None, 1: 0.1}], [{0: None, 1: None}]]
    result = metrics_from_rms(keys, rms)
    assert result.best_rms == (None, 0.1)
    assert result.n_matched == 1 and result.metre == pytest.approx(0.5)    # one-to-one match rate would be 0
    assert result.crmse == pytest.approx((0.5 + 0.1) / 2)
    assert result.rmse == pytest.approx(0.1)


def test_a_polymorph_generated_twice_is_credited_once_with_its_best_rms():
    rms = [[{0: None, 1: 0.3}], [{0: None, 1: 0.2}]]
    result = metrics_from_rms(["X", "X"], rms)
    assert result.metre == pytest.approx(0.5)        # "match any polymorph" would say 1.0
    assert result.best_rms == (None, 0.2)
    assert result.crmse == pytest.approx((0.5 + 0.2) / 2)


def test_unmatched_references_are_penalised_not_dropped():
    rms = [[{0: 0.05}], [{1: None}], [{}]]             # None and a missing key both mean "no match"
    keys = ["A", "B", "C"]
    result = metrics_from_rms(keys, rms, penalty=0.7)
    assert result.metre == pytest.approx(1 / 3)
    assert result.rmse == pytest.approx(0.05)          # the plain RMSE hides the two misses
    assert result.crmse == pytest.approx((0.05 + 0.7 + 0.7) / 3)
    nothing = metrics_from_rms(keys, [[{}], [{}], [{}]])
    assert nothing.metre == 0.0 and nothing.crmse == pytest.approx(0.5) and math.isnan(nothing.rmse)


def test_k_samples_are_pooled_over_all_crystals_of_a_composition():
    keys = ["X", "X", "Y"]
    rms = [
        [{0: 0.3, 1: None}, {0: None, 1: 0.25}, {0: 0.1, 1: None}],   # k = 3: best for A is 0.1, and B once
        [{0: 0.05, 1: None}, {0: None, 1: None}],                       # k = 2: B's own samples miss B
        [{2: None}, {2: None}],
    ]
    result = metrics_from_rms(keys, rms)
    assert result.best_rms == (0.05, 0.25, None)
    assert result.metre == pytest.approx(2 / 3)
    assert result.crmse == pytest.approx((0.05 + 0.25 + 0.5) / 3)


def test_without_polymorphs_metre_is_the_best_of_k_match_rate():
    rms_rows = [[0.2, None], [None, None], [0.4, 0.1]]
    rms = [[{i: value} for value in row] for i, row in enumerate(rms_rows)]
    result = metrics_from_rms(["A", "B", "C"], rms)
    scores = [[CSPScore(True, value, 1.0, 0, 0) for value in row] for row in rms_rows]
    classic = aggregate_csp(scores, raw_k1=[True, False, True])
    assert result.metre == pytest.approx(classic.match_rate)
    assert result.rmse == pytest.approx(classic.rmse)
    assert result.crmse == pytest.approx((0.2 + 0.5 + 0.1) / 3)


def test_tables_that_compare_across_compositions_or_miss_crystals_are_rejected():
    with pytest.raises(ValueError, match="not a polymorph"):
        metrics_from_rms(["A", "B"], [[{1: 0.1}], [{}]])
    with pytest.raises(ValueError, match="references"):
        metrics_from_rms(["A", "B"], [[{0: 0.1}]])


def test_empty_reference_set_gives_nan():
    assert math.isnan(metre([])) and math.isnan(crmse([]))
    assert best_rms_per_reference([], 0) == []


def rock_salt(a=5.64):
    return Structure.from_spacegroup("Fm-3m", Lattice.cubic(a), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])


def cesium_chloride_type(a=3.35, shift=0.0):
    return Structure(Lattice.cubic(a), ["Na", "Cl"], [[shift, 0, 0], [0.5, 0.5, 0.5]])


def test_real_nacl_polymorphs_with_pymatgen():
    references = [rock_salt(), cesium_chloride_type()]
    sample = cesium_chloride_type(a=3.4, shift=0.02)                   # a CsCl-type NaCl, slightly off
    samples = [[sample], [sample.copy()]]                              # generated for rock salt, then for CsCl
    matcher = csp_matcher()
    assert match_rms(sample, references[0], matcher) is None           # classic match rate: 1 of 2
    rms = match_rms(sample, references[1], matcher)
    assert rms is not None and 0 < rms < 0.1

    result = polymorph_metrics(samples, references, matcher)
    assert result.best_rms == (None, pytest.approx(rms))
    assert result.metre == pytest.approx(0.5)                          # CsCl credited once, rock salt missed
    assert result.crmse == pytest.approx((0.5 + rms) / 2)

    swapped = polymorph_metrics([[sample], [rock_salt(5.7)]], references, matcher)
    assert swapped.metre == 1.0                                        # one-to-one would score 0 of 2
    assert swapped.crmse == pytest.approx(sum(swapped.best_rms) / 2) and swapped.crmse < 0.1


def test_invalid_samples_match_nothing_unless_validity_is_waived():
    references = [cesium_chloride_type()]
    crushed = Structure(Lattice.cubic(0.4), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])   # atoms 0.35 A apart
    assert polymorph_metrics([[crushed]], references).metre == 0.0
    assert polymorph_metrics([[crushed]], references, require_valid=False).metre == 1.0  # matcher rescales volume


def test_cards_show_metre_and_crmse_beside_the_match_rate():
    from diffusion.checkpoints import card_markdown, headline_metrics

    row = {"task": "csp", "sampler": "pc", "steps": 100, "space_group": "predicted", "k": 1, "symmetry": "wyckoff",
           "checkpoint_steps": 10, "metrics": {"n": 4, "match_rate": 0.5, "rmse": 0.05, "validity": 1.0,
                                                "polymorphs": {"metre": 0.75, "crmse": 0.2}}}
    text = card_markdown({"name": "x", "metrics": {"pc_wyckoff": row}})
    assert "| METRe | cRMSE |" in text and "| 0.75 | 0.2 |" in text
    readable = headline_metrics({"metrics": {"pc_wyckoff": row}})[0]
    assert readable["METRe"] == "75.0%" and "Wyckoff sites kept" in readable["run"]
