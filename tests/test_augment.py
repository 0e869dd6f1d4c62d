"""Training augmentation: Niggli-reduced supercells are the same crystal, in the data's cell convention."""
from __future__ import annotations

import numpy as np
import pytest
from pymatgen.analysis.structure_matcher import StructureMatcher

from diffusion.augment import augment, niggli_reduced, supercell
from diffusion.data import load_csv


@pytest.fixture(scope="module")
def crystals(perov_rows):
    return load_csv(perov_rows).crystals[:12]


def test_supercells_are_the_same_crystal_in_a_reduced_cell(crystals):
    matcher = StructureMatcher(primitive_cell=True)
    rng = np.random.default_rng(0)
    for crystal in crystals:
        grown = augment(crystal, rng, max_atoms=20, probability=1.0)
        assert grown.num_atoms in (10, 15, 20), "a 5-atom perovskite grows 2-4 times"
        assert matcher.fit(grown.to_structure(), crystal.to_structure())
        assert abs(grown.volume / grown.num_atoms - crystal.volume / crystal.num_atoms) < 1e-6
        assert 0.0 <= float(grown.frac_coords.min()) and float(grown.frac_coords.max()) < 1.0
        a, b, c = grown.to_structure().lattice.abc
        assert a <= b + 1e-6 <= c + 2e-6, "Niggli-reduced: a <= b <= c, as the training data"
        assert grown.properties == crystal.properties and grown.space_group == crystal.space_group


def test_supercell_arithmetic(crystals):
    crystal = crystals[0]
    double = supercell(crystal, axis=2, times=2)
    assert double.num_atoms == 2 * crystal.num_atoms
    assert abs(double.volume - 2 * crystal.volume) < 1e-6
    assert niggli_reduced(double).num_atoms == double.num_atoms


def test_no_augmentation_when_off_or_too_big(crystals):
    rng = np.random.default_rng(0)
    assert all(augment(c, rng, 20, probability=0.0) is c for c in crystals)
    assert all(augment(c, rng, 9, probability=1.0) is c for c in crystals), "two copies would exceed 9 atoms"


def test_training_with_augmentation_and_weight_decay(perov_rows, tmp_path):
    import json
    from diffusion.cli import main
    out = tmp_path / "aug.pt"
    assert main(["train", "--data", str(perov_rows), "--out", str(out), "--hidden", "16", "--layers", "1",
                 "--max-steps", "3", "--batch-size", "8", "--augment", "1", "--weight-decay", "0.01",
                 "--val-every", "3", "--checkpoint-every", "3", "--run-dir", str(tmp_path / "run"), "--quiet"]) == 0
    config = json.loads(out.with_suffix(".json").read_text())["train_config"]
    assert config["augment"] == 1.0 and config["weight_decay"] == 0.01
    with pytest.raises(SystemExit):  # argparse's usage message, not a traceback
        main(["train", "--data", str(perov_rows), "--out", str(out), "--augment", "1.5", "--quiet"])
