"""Space groups voted from a composition by the training crystals of the same prototype."""
from __future__ import annotations

import csv
import gzip
import json
import sys

import pytest
import torch

from conftest import MP20_CSV
from test_cli import assert_one_line_error, cli

from diffusion.crystal import Crystal
from diffusion.space_group_prediction import (SpaceGroupPredictor, cell_composition, element_distance,
                                              formula_text, mendeleev_number, prototype)


def crystal(numbers, space_group, name=""):
    n = len(numbers)
    return Crystal(torch.tensor(numbers), torch.rand(n, 3, dtype=torch.float64), torch.eye(3, dtype=torch.float64) * 4,
                   material_id=name or f"x{space_group}", space_group=space_group)


def test_prototype_and_chemical_distance():
    assert prototype(cell_composition([38, 22, 8, 8, 8])) == (5, (1, 1, 3))
    assert prototype(cell_composition([22, 22, 8, 8, 8, 8])) == (6, (2, 4))
    # alkali metals sit next to each other on Pettifor's scale, far from the halogens
    assert abs(mendeleev_number(11) - mendeleev_number(19)) < abs(mendeleev_number(11) - mendeleev_number(17))
    nacl, kcl, nabr = (cell_composition(z) for z in ([11, 17], [19, 17], [11, 35]))
    assert element_distance(nacl, nacl) == 0
    assert element_distance(nacl, kcl) > 0 and element_distance(nacl, nabr) > 0
    # counts are matched to counts: in SrTiO3 vs BaTiO3 only Sr/Ba differ
    assert element_distance(cell_composition([38, 22, 8, 8, 8]), cell_composition([56, 22, 8, 8, 8])) == \
        abs(mendeleev_number(38) - mendeleev_number(56))


def test_vote_follows_the_chemically_nearest_crystals():
    train = [crystal([11, 17], 225, "NaCl"), crystal([19, 17], 225, "KCl"), crystal([55, 17], 221, "CsCl"),
             crystal([11, 11, 17, 17], 99, "Na2Cl2")]
    predictor = SpaceGroupPredictor(train, neighbours=3)
    guess = predictor.predict([37, 17])                  # RbCl: between KCl and CsCl, NaCl further
    assert guess.space_group == 225
    assert {n.material_id for n in guess.neighbours} == {"NaCl", "KCl", "CsCl"}
    assert {n.formula for n in guess.neighbours} == {"NaCl", "KCl", "CsCl"}
    assert 0.5 < guess.confidence < 1.0
    nearest = predictor.predict([55, 17]).neighbours[0]
    assert (nearest.material_id, nearest.space_group, nearest.distance) == ("CsCl", 221, 0)
    assert str(nearest) == "CsCl CsCl (221)"
    with_one = SpaceGroupPredictor(train, neighbours=1)
    assert with_one.predict([55, 17]).space_group == 221 and with_one.predict([55, 17]).confidence == 1.0
    # the number of atoms in the cell is part of the prototype
    assert predictor.predict([37, 37, 17, 17]).space_group == 99
    assert predictor.predict([37, 17, 17]) is None


def test_predictor_needs_crystals_with_groups():
    with pytest.raises(ValueError, match="space group"):
        SpaceGroupPredictor([crystal([11, 17], 0)])
    with pytest.raises(ValueError, match="neighbours"):
        SpaceGroupPredictor([crystal([11, 17], 225)], neighbours=0)


@pytest.fixture(scope="module")
def tiny_space_group_model(tmp_path_factory):
    """A tiny space-group-conditioned CSP model trained 4 steps on the first 60 MP-20 rows."""
    csv.field_size_limit(sys.maxsize)
    folder = tmp_path_factory.mktemp("sg")
    rows = folder / "mp_small.csv"
    with gzip.open(MP20_CSV, "rt", newline="") as src, open(rows, "w", newline="") as dst:
        writer = csv.writer(dst)
        for i, row in enumerate(csv.reader(src)):
            if i > 60:
                break
            writer.writerow(row)
    r = cli("train", "--data", str(rows), "--out", str(folder / "sg.pt"), "--hidden", "16", "--layers", "1",
            "--frequencies", "4", "--num-steps", "20", "--batch-size", "8", "--max-steps", "4", "--val-every", "2",
            "--space-group", "--quiet", "--run-dir", str(folder / "run"))
    assert r.returncode == 0, r.stderr
    return folder / "sg.pt", rows


def test_cli_sample_and_evaluate_with_predicted_space_groups(tiny_space_group_model, tmp_path):
    from diffusion.data import load_csv
    from diffusion.evaluation import training_space_group_predictor

    checkpoint, rows = tiny_space_group_model
    card = json.loads(checkpoint.with_suffix(".json").read_text())
    predictor = training_space_group_predictor(card)
    formula = load_csv(rows).crystals[0]
    numbers = formula.atomic_numbers.tolist()
    expected = predictor.predict(numbers)
    assert expected is not None
    from pymatgen.core import Composition
    text = formula_text(cell_composition(numbers))
    assert Composition(text).num_atoms == len(numbers)
    r = cli("sample", "--checkpoint", str(checkpoint), "--composition", text, "--space-group", "predicted",
            "--steps", "3", "--out", str(tmp_path / "out"))
    assert r.returncode == 0, r.stderr
    assert f"space group {expected.space_group} predicted" in r.stderr
    assert len(list((tmp_path / "out").glob("*.cif"))) == 1

    out = tmp_path / "eval.json"
    r = cli("evaluate", "--checkpoint", str(checkpoint), "--limit", "3", "--sampler", "ddim", "--steps", "3",
            "--space-group", "predicted", "--guidance", "1", "--update-card", "--json", str(out))
    assert r.returncode == 0, r.stderr
    result = json.loads(out.read_text())
    stored = json.loads(checkpoint.with_suffix(".json").read_text())["metrics"]
    assert stored["ddim_3_sg-predicted_k1_w1"]["guidance"] == 1.0   # guided runs do not overwrite plain ones
    assert "crystals" not in stored["ddim_3_sg-predicted_k1_w1"]      # per-crystal rows stay in --json
    assert result["space_group"] == "predicted" and result["space_group_prediction"]["n"] == 3
    assert 0 <= result["space_group_prediction"]["correct"] <= result["space_group_prediction"]["predicted"] <= 3
    assert result["metrics"]["space_group_rate"] is not None or result["space_group_prediction"]["predicted"] == 0
    # one record per crystal: which group was asked for, and whether its sample matched
    crystals = result["crystals"]
    assert len(crystals) == 3 and all(c["material_id"] for c in crystals)
    assert sum(c["requested_space_group"] == c["true_space_group"] for c in crystals) == \
        result["space_group_prediction"]["correct"]
    matched = sum(c["rms"] is not None for c in crystals)
    assert matched == round(result["metrics"]["match_rate"] * 3)


def test_predicted_space_group_errors_are_one_line(tiny_space_group_model, checkpoint_dir, tmp_path):
    from pymatgen.core import Element

    from diffusion.data import load_csv

    checkpoint, rows = tiny_space_group_model
    known = Element.from_Z(int(load_csv(rows).crystals[0].atomic_numbers[0])).symbol
    # a model without the condition
    assert_one_line_error(cli("sample", "--checkpoint", "tiny_csp", "--composition", "SrTiO3", "--space-group",
                              "predicted", "--out", str(tmp_path), env_dir=checkpoint_dir), "space-group")
    # a prototype no training crystal has (a 19-atom cell of one element)
    assert_one_line_error(cli("sample", "--checkpoint", str(checkpoint), "--composition", f"{known}19", "--space-group",
                              "predicted", "--out", str(tmp_path)), "prototype")
    assert_one_line_error(cli("sample", "--checkpoint", str(checkpoint), "--composition", f"{known}2", "--space-group",
                              "P99", "--out", str(tmp_path)), "predicted")


def test_generate_page_suggests_a_space_group(tiny_space_group_model, monkeypatch):
    from pymatgen.core import Element
    from streamlit.testing.v1 import AppTest

    from conftest import ROOT
    from diffusion.data import load_csv
    from diffusion.evaluation import training_space_group_predictor

    checkpoint, rows = tiny_space_group_model
    monkeypatch.setenv("CRYSTAL_DIFFUSION_CHECKPOINTS", str(checkpoint.parent))
    first = load_csv(rows).crystals[0]
    text = formula_text(cell_composition(first.atomic_numbers.tolist()))
    expected = training_space_group_predictor(json.loads(checkpoint.with_suffix(".json").read_text())).predict(
        first.atomic_numbers.tolist())

    at = AppTest.from_file(str(ROOT / "pages" / "3_Generate.py"), default_timeout=120).run()
    assert not at.exception
    at.text_input(key="gen.composition").set_value(text).run()
    at.button(key="gen.sg_suggest").click().run()
    assert not at.exception
    assert at.text_input(key="gen.sg_text").value == str(expected.space_group)
    hint = next(i.value for i in at.info if "Suggested" in i.value)
    assert str(expected.space_group) in hint
    assert "A guess" in hint
    # the hint goes once the field is edited; a prototype nobody has gets a warning, not a traceback
    at.text_input(key="gen.sg_text").set_value("").run()
    assert not any("Suggested" in i.value for i in at.info)
    symbol = Element.from_Z(int(first.atomic_numbers[0])).symbol
    at.text_input(key="gen.composition").set_value(f"{symbol}19").run()
    at.button(key="gen.sg_suggest").click().run()
    assert not at.exception and any("nothing to vote" in w.value for w in at.warning)
    assert at.text_input(key="gen.sg_text").value == ""


def test_batch_page_suggests_a_space_group_and_samples_with_it(tiny_space_group_model, monkeypatch):
    from streamlit.testing.v1 import AppTest

    from conftest import ROOT
    from diffusion.data import load_csv
    from diffusion.evaluation import training_space_group_predictor

    checkpoint, rows = tiny_space_group_model
    monkeypatch.setenv("CRYSTAL_DIFFUSION_CHECKPOINTS", str(checkpoint.parent))
    first = load_csv(rows).crystals[0]
    expected = training_space_group_predictor(json.loads(checkpoint.with_suffix(".json").read_text())).predict(
        first.atomic_numbers.tolist())

    at = AppTest.from_file(str(ROOT / "pages" / "4_Batch_and_metrics.py"), default_timeout=120).run()
    assert not at.exception
    at.text_input(key="batch.composition").set_value(formula_text(cell_composition(first.atomic_numbers.tolist()))).run()
    at.button(key="batch.sg_suggest").click().run()
    assert not at.exception
    assert at.text_input(key="batch.sg").value == str(expected.space_group)
    assert any("Suggested" in i.value for i in at.info)
    at.number_input(key="batch.n").set_value(2).run()
    at.number_input(key="batch.steps").set_value(5).run()
    at.button(key="batch.go").click().run()
    assert not at.exception and not at.error
    assert at.session_state["batch.result"].settings.space_group == expected.space_group


def test_hint_quotes_the_measured_vote_accuracy():
    from explorer.space_group_field import vote_accuracy as _vote_accuracy

    card = {"metrics": {"ddim_100_sg-none_k1": {"metrics": {}},
                        "ddim_100_sg-predicted_k1_w2": {"space_group_prediction": {"accuracy": 0.6216, "n": 1110}}}}
    assert "62% of this model's 1110 validation crystals" in _vote_accuracy(card)
    assert "check it" in _vote_accuracy({}) and "check it" in _vote_accuracy({"metrics": ["junk"]})
