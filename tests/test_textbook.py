"""The textbook reference crystals are what their names say, and the scoring tells them apart."""
import pytest

from diffusion.metrics import space_group_number
from diffusion.textbook import TEXTBOOK, score_against_textbook, textbook_crystal


@pytest.mark.parametrize("entry", TEXTBOOK, ids=[e.name for e in TEXTBOOK])
def test_reference_has_its_space_group_and_primitive_formula(entry):
    structure = entry.structure()
    assert space_group_number(structure) == entry.space_group
    assert structure.is_ordered and len(structure) <= 12


def test_formulas_are_the_primitive_cells():
    assert textbook_crystal("rock salt NaCl").formula == "Na1Cl1"
    assert textbook_crystal("rutile TiO2").formula == "Ti2O4"
    assert textbook_crystal("bcc Fe").formula == "Fe1"


def test_scoring_finds_the_crystal_and_its_lattice_error():
    salt = textbook_crystal("rock salt NaCl")
    stretched = salt.structure()
    stretched.scale_lattice(stretched.volume * 1.03 ** 3)
    score = score_against_textbook(stretched, salt)
    assert score.matched and score.rms < 1e-6
    assert score.length_error == pytest.approx(0.03, abs=1e-6)
    assert score.space_group == 225
    rutile, anatase = textbook_crystal("rutile TiO2"), textbook_crystal("anatase TiO2")
    assert not score_against_textbook(anatase.structure(), rutile).matched, "polymorphs are told apart"
    with pytest.raises(KeyError):
        textbook_crystal("unobtainium")
