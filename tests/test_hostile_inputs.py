"""The hostile inputs a classroom types, one by one: each gets a clear message, never a traceback.

Command line: exit status 2 and exactly one line on stderr. App: an error or warning element,
no exception, and the page keeps working. (Random inputs are fuzzed in tests/test_fuzz.py.)
"""
from __future__ import annotations

import math

import pytest
from streamlit.testing.v1 import AppTest

from test_app_pages import ROOT, RUTILE_CIF

HUGE = str(10**12)

# (arguments after "sample --checkpoint tiny_csp --out OUT", words expected in the message)
CSP_SAMPLE_CASES = [
    (["--composition", ""], "composition"),
    (["--composition", "nacl"], "element symbols"),
    (["--composition", "Xx3"], "unknown element"),
    (["--composition", "Fe0.5"], "whole"),
    (["--composition", "Na" * 5000], "longer than"),
    (["--composition", "NaCl\u2603"], ""),
    (["--composition", "Na101"], "more than 100 atoms"),
    (["--composition", "SrTiO3", "--steps", "-1"], ">= 1"),
    (["--composition", "SrTiO3", "--steps", "0"], ">= 1"),
    (["--composition", "SrTiO3", "--steps", "nan"], "whole number"),
    (["--composition", "SrTiO3", "--steps", HUGE], "steps"),
    (["--composition", "SrTiO3", "--num-samples", "0"], ">= 1"),
    (["--composition", "SrTiO3", "--num-samples", HUGE], "num-samples"),
    (["--composition", "SrTiO3", "--seed", "-3"], ""),
    (["--composition", "SrTiO3", "--guidance", "nan"], "finite"),
    (["--composition", "SrTiO3", "--guidance", "1e9"], "guidance"),
    (["--composition", "SrTiO3", "--sampler", "pc", "--step-lr", "0"], "step_lr"),
    (["--composition", "SrTiO3", "--property", "inf"], "finite"),
    (["--composition", "SrTiO3", "--space-group", "225"], "space-group"),
    (["--composition", "SrTiO3", "--sampler", "magic"], "invalid choice"),
]
GEN_SAMPLE_CASES = [
    (["--num-atoms", "0"], ">= 1"),
    (["--num-atoms", HUGE], "at most"),
    (["--num-atoms", "-5"], ">= 1"),
    (["--composition", "SrTiO3"], "ab initio"),
]


def _run(argv: list[str]) -> int:
    """diffusion.cli.main in this process; argparse's own refusals arrive as SystemExit."""
    from diffusion.cli import main

    try:
        return main(argv)
    except SystemExit as exc:
        return int(exc.code)


def _one_line_error(capsys, code: int, fragment: str) -> None:
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2, err
    assert len(err) == 1 and "Traceback" not in err[0], err
    assert fragment.lower() in err[0].lower(), err


@pytest.mark.parametrize("argv,fragment", CSP_SAMPLE_CASES, ids=[" ".join(a)[:40] for a, _ in CSP_SAMPLE_CASES])
def test_cli_sample_refuses_bad_structure_prediction_input(argv, fragment, checkpoint_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CRYSTAL_DIFFUSION_CHECKPOINTS", str(checkpoint_dir))
    code = _run(["sample", "--checkpoint", "tiny_csp", "--out", str(tmp_path / "out"), *argv])
    _one_line_error(capsys, code, fragment)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir()), "nothing half-written"


@pytest.mark.parametrize("argv,fragment", GEN_SAMPLE_CASES, ids=[" ".join(a)[:40] for a, _ in GEN_SAMPLE_CASES])
def test_cli_sample_refuses_bad_ab_initio_input(argv, fragment, checkpoint_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CRYSTAL_DIFFUSION_CHECKPOINTS", str(checkpoint_dir))
    _one_line_error(capsys, _run(["sample", "--checkpoint", "tiny_gen", "--out", str(tmp_path / "o"), *argv]), fragment)


def test_cli_refuses_checkpoint_paths_that_are_not_checkpoints(tmp_path, capsys):
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"\x00\x01 not a zip archive" * 100)
    for name, fragment in ((str(junk), "refusing"), (str(tmp_path / "missing.pt"), "no checkpoint"),
                           ("../../etc/passwd", "")):
        _one_line_error(capsys, _run(["sample", "--checkpoint", name, "--composition", "NaCl", "--out",
                                      str(tmp_path / "o")]), fragment)


# -- CIF files: the core parser and the Forward page's upload -------------------------------------

def _cif_cases() -> list[tuple[str, bytes, str]]:
    lines = RUTILE_CIF.splitlines(keepends=True)
    atoms = "".join(f"  Na{i} Na {(i % 10) / 10:.2f} {(i // 10 % 10) / 10:.2f} {(i // 100) / 5:.2f} 1\n" for i in range(500))
    big_cell = RUTILE_CIF.split("loop_\n _atom_site_label")[0].replace("4.594", "40.0").replace("2.959", "40.0")
    big = big_cell + "loop_\n _atom_site_label\n _atom_site_type_symbol\n _atom_site_fract_x\n _atom_site_fract_y\n" \
        " _atom_site_fract_z\n _atom_site_occupancy\n" + atoms
    return [
        ("empty.cif", b"", "empty"),
        ("binary.cif", bytes(range(256)) * 64, "binary"),
        ("truncated.cif", "".join(lines[: len(lines) // 2]).encode(), "could not parse"),
        ("huge.cif", (RUTILE_CIF + "#" * 80 + "\n").encode() * 600_000, "too large"),
        ("partial.cif", RUTILE_CIF.replace("Ti1  Ti  0.0  0.0  0.0  1", "Ti1  Ti  0.0  0.0  0.0  0.5").encode(),
         "partial occupancies"),
        ("many_atoms.cif", big.encode(), "at most"),
    ]


@pytest.mark.parametrize("name,data,fragment", _cif_cases(), ids=[c[0] for c in _cif_cases()])
def test_cif_parser_gives_a_reason(name, data, fragment):
    from diffusion.crystal import Crystal, CrystalError

    if name == "many_atoms.cif":
        assert Crystal.from_cif(data.decode()).num_atoms == 500   # valid; the page's limit refuses it
        return
    with pytest.raises(CrystalError, match=fragment):
        Crystal.from_cif(data.decode("utf-8", errors="replace"))


def test_forward_page_survives_every_bad_upload_and_keeps_working(checkpoint_dir, monkeypatch):
    monkeypatch.setenv("CRYSTAL_DIFFUSION_CHECKPOINTS", str(checkpoint_dir))
    at = AppTest.from_file(str(ROOT / "pages/2_Forward_process.py"), default_timeout=120).run()
    at.radio(key="fwd.source").set_value("Upload a CIF").run()
    for name, data, fragment in _cif_cases():
        at.file_uploader(key="fwd.upload").set_value((name, data, "text/plain")).run()
        assert not at.exception, name
        messages = " ".join(e.value for e in at.error)
        assert name in messages and fragment in messages, (name, messages)
    at.file_uploader(key="fwd.upload").set_value(("rutile.cif", RUTILE_CIF.encode(), "text/plain")).run()
    assert not at.exception and not at.error, "a good file after the bad ones works"


# -- the Generate page: typed fields and query parameters -----------------------------------------

@pytest.mark.parametrize("formula,fragment", [
    ("", "composition"), ("nacl", "element symbols"), ("Xx3", "unknown element"), ("Fe0.5", "whole"),
    ("Na" * 5000, "atoms"), ("SrTiO\u2603", ""), ("Sr2Ti2O6", "at most"),
])
def test_generate_page_explains_bad_formulas(formula, fragment, checkpoint_dir, monkeypatch):
    monkeypatch.setenv("CRYSTAL_DIFFUSION_CHECKPOINTS", str(checkpoint_dir))
    at = AppTest.from_file(str(ROOT / "pages/3_Generate.py"), default_timeout=120).run()
    at.text_input(key="gen.composition").set_value(formula).run()
    at.button(key="gen.go").click().run()
    assert not at.exception
    messages = " ".join(e.value for e in at.error).lower()
    assert messages and fragment.lower() in messages, messages
    assert not at.session_state["gen.results"]


@pytest.mark.parametrize("query", [
    {"steps": "-5"}, {"steps": "1e99"}, {"seed": "nan"}, {"seed": "-1"}, {"t": "99999"}, {"t": "-3"},
    {"guidance": "inf"}, {"formula": "Na" * 5000}, {"formula": "\u2603"}, {"sg": "abc"}, {"model": "../../etc/passwd"},
])
def test_generate_page_survives_hostile_links(query, checkpoint_dir, monkeypatch):
    monkeypatch.setenv("CRYSTAL_DIFFUSION_CHECKPOINTS", str(checkpoint_dir))
    at = AppTest.from_file(str(ROOT / "pages/3_Generate.py"), default_timeout=120)
    for key, value in {"model": "tiny_csp", "formula": "SrTiO3", "steps": "4", **query}.items():
        at.query_params[key] = value
    at.run()
    assert not at.exception
    assert at.warning or at.error or at.session_state["gen.results"], "either a message or a valid result"
    for result in at.session_state["gen.results"]:
        assert math.isfinite(float(result.trajectory.lattice[-1].sum()))
