"""Property-based tests: hostile text never escapes as anything but our own clear errors."""
import string

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from diffusion.crystal import Crystal, CrystalError
from diffusion.formula import FormulaError, parse_formula

FORMULA_ALPHABET = string.ascii_letters + string.digits + "()[]. -+_\u00e9\u4e2d\U0001f600\x00"


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet=FORMULA_ALPHABET, max_size=60))
def test_formula_parser_only_raises_formula_error(text):
    try:
        atoms = parse_formula(text)
    except FormulaError as exc:
        assert str(exc)
        return
    assert 1 <= len(atoms) <= 100 and all(1 <= z <= 118 for z in atoms)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.sampled_from(["Na", "Cl", "O", "Ti", "Sr", "Fe", "C"]), min_size=1, max_size=4, unique=True),
       st.lists(st.integers(min_value=1, max_value=9), min_size=4, max_size=4))
def test_valid_formulas_round_trip(elements, counts):
    from pymatgen.core.periodic_table import Element
    formula = "".join(f"{e}{c}" for e, c in zip(elements, counts))
    atoms = parse_formula(formula)
    for e, c in zip(elements, counts):
        assert atoms.count(Element(e).Z) == c


CIF_PIECES = ["data_x\n", "_cell_length_a 4.0\n", "_cell_length_b 4.0\n", "_cell_length_c 4.0\n",
              "_cell_angle_alpha 90\n", "_cell_angle_beta 90\n", "_cell_angle_gamma 90\n",
              "_cell_length_a -1\n", "_cell_angle_gamma 0\n", "loop_\n", "_atom_site_type_symbol\n",
              "_atom_site_fract_x\n", "_atom_site_fract_y\n", "_atom_site_fract_z\n", "_atom_site_occupancy\n",
              "Na 0 0 0 1\n", "Cl 0.5 0.5 0.5 1\n", "Xx 0.1 0.2 0.3 1\n", "Fe 0.5 0.5 0.5 0.5\n", "Na nan 0 0 1\n",
              "_symmetry_space_group_name_H-M 'P 1'\n", "\x00\xff", "#comment\n", ";\n"]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(CIF_PIECES), max_size=25) | st.text(max_size=300).map(lambda s: [s]))
def test_cif_parser_only_raises_crystal_error(pieces):
    text = "".join(pieces)
    try:
        crystal = Crystal.from_cif(text)
    except CrystalError as exc:
        assert str(exc)
        return
    assert crystal.num_atoms >= 1


@settings(max_examples=150, deadline=None)
@given(st.lists(st.text(alphabet=string.printable, max_size=12), max_size=6))
def test_cli_parser_never_tracebacks(argv):
    from diffusion.cli import build_parser
    try:
        build_parser().parse_args(["sample", "--checkpoint", "x", "--out", "o", *argv])
    except SystemExit as exc:
        assert exc.code in (0, 2)
