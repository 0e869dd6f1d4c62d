import pytest
import torch
from pymatgen.core import Lattice, Structure

from diffusion.crystal import Crystal, CrystalBatch, CrystalError, fully_connected_edges, lattice_parameters
from diffusion.formula import FormulaError, parse_formula


def rutile() -> Structure:
    return Structure.from_spacegroup(136, Lattice.tetragonal(4.594, 2.959), ["Ti", "O"], [[0, 0, 0], [0.3048, 0.3048, 0]])


def test_structure_round_trip_is_lossless():
    s = rutile()
    back = Crystal.from_structure(s).to_structure()
    assert back.lattice.matrix.tolist() == s.lattice.matrix.tolist()
    assert [x.specie for x in back] == [x.specie for x in s]
    assert abs(back.frac_coords - s.frac_coords % 1.0).max() < 1e-12


def test_cif_round_trip():
    c = Crystal.from_structure(rutile())
    again = Crystal.from_cif(c.to_cif())
    assert torch.equal(again.atomic_numbers, c.atomic_numbers)
    assert torch.allclose(again.lattice, c.lattice, atol=1e-8)
    assert torch.allclose(again.frac_coords, c.frac_coords, atol=1e-9)


@pytest.mark.parametrize("text", ["", "   ", "data_x\n_cell_length_a 3\n", "\x00\x01garbage", "not a cif at all"])
def test_bad_cif_gives_crystal_error(text):
    with pytest.raises(CrystalError):
        Crystal.from_cif(text)


def test_disordered_structure_is_refused():
    s = Structure(Lattice.cubic(4), [{"Fe": 0.5, "Co": 0.5}], [[0, 0, 0]])
    with pytest.raises(CrystalError, match="partial occupancies"):
        Crystal.from_structure(s)


def test_batch_round_trip_and_edges():
    crystals = [Crystal.from_structure(rutile()), Crystal.from_structure(Structure(Lattice.cubic(3), ["Fe"], [[0, 0, 0]]))]
    batch = CrystalBatch.from_crystals(crystals)
    assert batch.num_atoms.tolist() == [6, 1]
    assert batch.batch.tolist() == [0] * 6 + [1]
    assert torch.allclose(batch.crystal(0).lattice, crystals[0].lattice, atol=1e-6)
    src, dst = fully_connected_edges(batch.num_atoms)
    assert len(src) == 36 + 1
    assert set(zip(src.tolist(), dst.tolist())) == {(i, j) for i in range(6) for j in range(6)} | {(6, 6)}


def test_lattice_parameters():
    a, b, c, al, be, ga = lattice_parameters(torch.tensor(Lattice.hexagonal(3.0, 5.0).matrix))
    assert abs(a - 3) < 1e-9 and abs(c - 5) < 1e-9 and abs(ga - 120) < 1e-6 and abs(al - 90) < 1e-6


@pytest.mark.parametrize("formula,expected", [("NaCl", [11, 17]), ("Ti2O4", [22, 22, 8, 8, 8, 8]),
                                              ("Ca(OH)2", [20, 8, 8, 1, 1]), (" SrTiO3 ", [38, 22, 8, 8, 8])])
def test_parse_formula(formula, expected):
    assert sorted(parse_formula(formula)) == sorted(expected)


@pytest.mark.parametrize("formula,message", [("", "empty"), ("nacl", "cannot read"), ("Xx3", "unknown element"),
                                             ("Fe0.5", "fractional"), ("C" + "1" * 5, "more than"), ("Na0Cl", "at least one"),
                                             ("Na(Cl", "unbalanced"), ("NaCl)", "unbalanced"), ("Fé", "cannot read"),
                                             ("H" * 10_000, "longer than"), ("C101", "more than")])
def test_bad_formulas(formula, message):
    with pytest.raises(FormulaError, match=message):
        parse_formula(formula)
