"""Formula units per cell proposed from the training crystals (core, CLI and the Generate page)."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from streamlit.testing.v1 import AppTest

from diffusion.crystal import Crystal
from diffusion.formula import parse_formula
from diffusion.formula_units import FormulaUnitsAdvisor, family_label, formula_text, reduced_formula

ROOT = Path(__file__).resolve().parent.parent


def _crystal(formula: str) -> Crystal:
    numbers = parse_formula(formula)
    n = len(numbers)
    return Crystal(torch.tensor(numbers), torch.rand(n, 3, dtype=torch.float64), torch.eye(3, dtype=torch.float64) * 4)


@pytest.fixture(scope="module")
def advisor() -> FormulaUnitsAdvisor:
    training = ["Ti2O4", "Ti2O4", "Ti4O8", "Si2", "Si2", "Si8", "Sn4O8", "Zr4O8", "Mg1O1", "NaCl"]
    return FormulaUnitsAdvisor([_crystal(f) for f in training])


def test_reduced_formula_and_labels():
    formula, units = reduced_formula(parse_formula("Ti2O4"))
    assert units == 2 and formula == ((8, 2), (22, 1))
    assert formula_text(formula) == "TiO2" and formula_text(formula, 2) == "Ti2O4"
    assert family_label((1, 2)) == "AB2" and family_label((1, 1, 3)) == "ABC3"


def test_most_common_units_of_the_formula(advisor):
    proposal = advisor.propose(parse_formula("TiO2"), max_atoms=20)
    assert (proposal.units, proposal.basis, proposal.seen) == (2, "formula", {2: 2, 4: 1})
    assert formula_text(proposal.formula, proposal.units) == "Ti2O4" and len(proposal.atoms) == 6
    assert "2 of 3" in proposal.describe()
    assert advisor.propose(parse_formula("Si8"), max_atoms=20).units == 2, "the typed count does not matter"


def test_family_then_one_unit_and_the_atom_limit(advisor):
    hf = advisor.propose(parse_formula("HfO2"), max_atoms=20)
    assert (hf.units, hf.basis) == (4, "family"), "AB2 family: Z = 4 three times (Ti4O8, Sn4O8, Zr4O8), Z = 2 twice"
    assert "AB2 family" in hf.describe()
    assert advisor.propose(parse_formula("HfO2"), max_atoms=6).units == 2, "only cells within the limit count"
    none = advisor.propose(parse_formula("LiFePO4"), max_atoms=20)
    assert (none.units, none.basis) == (1, "none") and "no training crystal" in none.describe()
    with pytest.raises(ValueError, match="more than"):
        advisor.propose(parse_formula("LiFePO4"), max_atoms=5)


def test_cli_formula_units(checkpoint_dir, tmp_path, capsys):
    from diffusion.cli import main
    args = ["sample", "--checkpoint", str(checkpoint_dir / "tiny_csp.pt"), "--sampler", "ddim", "--steps", "2",
            "--out", str(tmp_path / "o")]
    assert main([*args, "--composition", "Sr2Ti2O6", "--formula-units", "1"]) == 0
    from pymatgen.core import Structure
    assert len(Structure.from_file(next((tmp_path / "o").glob("*.cif")))) == 5
    assert main([*args, "--composition", "SrTiO3", "--formula-units", "2"]) == 2
    assert "Sr2Ti2O6 has 10 atoms, more than this model's 5" in capsys.readouterr().err
    assert main([*args, "--composition", "SrTiO3", "--formula-units", "auto"]) == 0
    assert "SrTiO3: 1 formula unit per cell" in capsys.readouterr().err, "the training perovskites have 5 atoms"
    assert main([*args, "--composition", "SrTiO3", "--formula-units", "many"]) == 2
    assert "whole number or 'auto'" in capsys.readouterr().err


def test_generate_page_button_sets_the_cell(checkpoint_dir, monkeypatch):
    monkeypatch.setenv("CRYSTAL_DIFFUSION_CHECKPOINTS", str(checkpoint_dir))
    at = AppTest.from_file(str(ROOT / "pages" / "3_Generate.py"), default_timeout=120).run()
    at.text_input(key="gen.composition").set_value("Sr2Ti2O6").run()
    at.button(key="gen.fu_suggest").click().run()
    assert not at.exception and not at.error
    assert at.text_input(key="gen.composition").value == "SrTiO3"
    assert any("1 formula unit per cell" in i.value for i in at.info)


def test_reference_volume_of_the_formula_then_of_its_elements(advisor):
    tio2 = advisor.reference_volume(parse_formula("TiO2"))
    assert tio2.basis == "formula" and tio2.count == 3 and tio2.volume_per_atom == pytest.approx(64 / 6)
    ti3o5 = advisor.reference_volume(parse_formula("Ti3O5"))
    assert ti3o5.basis == "elements" and ti3o5.count == 3
    assert advisor.reference_volume(parse_formula("LiF")) is None


def test_generate_says_what_came_out_and_retries(checkpoint_dir, perov_rows, monkeypatch):
    import explorer.generate_outcome as outcome
    from diffusion.data import load_csv
    formula = load_csv(perov_rows).crystals[0].formula   # a formula the tiny model's training crystals have
    monkeypatch.setattr(outcome, "VOLUME_TOLERANCE", 0.0)   # every cell differs from the median a little
    monkeypatch.setenv("CRYSTAL_DIFFUSION_CHECKPOINTS", str(checkpoint_dir))
    at = AppTest.from_file(str(ROOT / "pages" / "3_Generate.py"), default_timeout=120).run()
    at.text_input(key="gen.composition").set_value(formula)
    at.number_input(key="gen.steps").set_value(5)
    at.button(key="gen.go").click().run()
    assert not at.exception
    assert any("per atom than the training crystals of this formula" in w.value for w in at.warning)
    seed = at.session_state["gen.seed"]
    at.button(key="gen.retry_seed").click().run()
    assert not at.exception
    assert at.session_state["gen.seed"] == seed + 1 and len(at.session_state["gen.results"]) == 2
    at.button(key="gen.retry_template").click().run()
    assert not at.exception and at.session_state["gen.start"] == "template"
    assert at.session_state["gen.results"][-1].settings.template_step is not None
