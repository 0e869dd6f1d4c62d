"""Generation metrics: coverage, Wasserstein, uniqueness, novelty, and `evaluate` on an ab initio model."""
import json

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from diffusion.generation_metrics import (Fingerprints, coverage, fingerprints, novelty, memoized_fingerprints,
                                          score_generation, uniqueness, wasserstein)


def rock_salt(a=5.64, a_el="Na", b_el="Cl"):
    return Structure.from_spacegroup("Fm-3m", Lattice.cubic(a), [a_el, b_el], [[0, 0, 0], [0.5, 0.5, 0.5]])


def cesium_chloride(a=4.12):
    return Structure(Lattice.cubic(a), ["Cs", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])


def perovskite(a=3.905):
    return Structure(Lattice.cubic(a), ["Sr", "Ti", "O", "O", "O"],
                     [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])


@pytest.fixture(scope="module")
def reference():
    return [rock_salt(), cesium_chloride(), perovskite()]


@pytest.fixture(scope="module")
def reference_fps(reference):
    return fingerprints(reference)


def test_a_set_covers_itself(reference_fps):
    assert reference_fps.structure.shape == (3, 61) and reference_fps.composition.shape == (3, 132)
    assert coverage(reference_fps, reference_fps, 3, (0.2, 4.0)) == (1.0, 1.0)


def test_invalid_samples_count_against_precision_and_missing_types_against_recall(reference_fps):
    only_salt = Fingerprints(reference_fps.structure[:1], reference_fps.composition[:1])
    recall, precision = coverage(only_salt, reference_fps, num_generated=4, cutoffs=(0.2, 4.0))
    assert recall == pytest.approx(1 / 3)
    assert precision == pytest.approx(1 / 4)


def test_rock_salt_and_cesium_chloride_have_distant_structure_fingerprints(reference_fps):
    d = np.linalg.norm(reference_fps.structure[0] - reference_fps.structure[1])
    assert d > 0.2, "CrystalNN must tell 6-fold from 8-fold coordination"


def test_wasserstein_of_equal_samples_is_zero_and_grows_with_shift():
    assert wasserstein([1.0, 2.0, 3.0], [3.0, 1.0, 2.0]) == 0.0
    assert wasserstein([1.0, 2.0], [2.0, 3.0]) == pytest.approx(1.0)


def test_uniqueness_counts_matching_structures_once():
    bigger = rock_salt(5.9)       # same structure, other volume: the matcher rescales it
    assert uniqueness([rock_salt(), bigger, cesium_chloride()]) == pytest.approx(2 / 3)
    assert uniqueness([rock_salt(), cesium_chloride(), perovskite()]) == 1.0
    # with fingerprints only the nearest earlier structures are matched, and duplicates are still found
    many = [cesium_chloride(3.9 + 0.05 * i) if i % 2 else rock_salt(6.5 + 0.05 * i, "Cs", "Cl") for i in range(12)]
    fps = fingerprints(many).structure
    assert uniqueness(many, fps, candidates=2) == pytest.approx(uniqueness(many)) == pytest.approx(2 / 12)


def test_novelty_compares_with_training_crystals(reference):
    samples = [rock_salt(5.5), rock_salt(5.5, "K", "Cl")]
    fps = fingerprints(samples).structure
    assert novelty(samples, fps, reference, memoized_fingerprints(reference)) == pytest.approx(0.5)
    # many same-formula training crystals: only the nearest candidates are matched, and still found
    training = [cesium_chloride(4.0 + 0.01 * i) for i in range(12)] + [rock_salt(5.7)]
    training = [Structure(s.lattice, ["Na", "Cl"], s.frac_coords) if i < 12 else s for i, s in enumerate(training)]
    assert novelty(samples[:1], fps[:1], training, memoized_fingerprints(training), candidates=3) == 0.0


def test_score_generation_reports_every_metric(reference):
    broken = Structure(Lattice.cubic(3.0), ["Na", "Cl"], [[0, 0, 0], [0.01, 0, 0]])   # atoms on top of each other
    result = score_generation([rock_salt(), cesium_chloride(), broken], reference, (0.2, 4.0), training=reference)
    assert result.n == 3 and result.structural_validity == pytest.approx(2 / 3)
    assert result.validity == pytest.approx(2 / 3)
    assert result.cov_recall == pytest.approx(2 / 3) and result.cov_precision == pytest.approx(2 / 3)
    assert result.novelty == 0.0 and result.uniqueness == 1.0
    assert result.density_wasserstein > 0.0
    assert json.dumps(result.to_dict())


def test_evaluate_scores_an_ab_initio_checkpoint(checkpoint_dir, tmp_path):
    from test_cli import cli

    out = tmp_path / "gen.json"
    r = cli("evaluate", "--checkpoint", "tiny_gen", "--num-generated", "6", "--limit", "5", "--steps", "5",
            "--sampler", "ddim", "--cutoffs", "0.2", "4", "--json", str(out), env_dir=checkpoint_dir)
    assert r.returncode == 0, r.stderr
    result = json.loads(out.read_text())
    assert result["task"] == "gen" and result["n"] == 6 and 1 <= result["n_reference"] <= 5
    m = result["metrics"]
    for key in ("structural_validity", "compositional_validity", "cov_recall", "cov_precision", "uniqueness"):
        assert 0.0 <= m[key] <= 1.0
    assert m["cutoffs"] == [0.2, 4.0]


def test_evaluate_refuses_too_many_samples(checkpoint_dir):
    from test_cli import cli

    r = cli("evaluate", "--checkpoint", "tiny_gen", "--num-generated", "20000", env_dir=checkpoint_dir)
    assert r.returncode == 2 and "at most 10000" in r.stderr and "Traceback" not in r.stderr


def test_update_card_writes_generation_metrics_into_the_markdown_card(checkpoint_dir, tmp_path):
    import shutil

    from test_cli import cli

    folder = tmp_path / "models"
    folder.mkdir()
    for suffix in (".pt", ".json"):
        shutil.copy(checkpoint_dir / f"tiny_gen{suffix}", folder / f"tiny_gen{suffix}")
    r = cli("evaluate", "--checkpoint", "tiny_gen", "--num-generated", "4", "--limit", "4", "--steps", "4",
            "--sampler", "ddim", "--cutoffs", "0.2", "4", "--no-novelty", "--update-card", env_dir=folder)
    assert r.returncode == 0, r.stderr
    card = json.loads((folder / "tiny_gen.json").read_text())
    (key,) = [k for k in card["metrics"] if k.startswith("gen_")]
    assert card["metrics"][key]["metrics"]["novelty"] is None
    markdown = (folder / "tiny_gen.md").read_text()
    assert "COV-R" in markdown and key in markdown
