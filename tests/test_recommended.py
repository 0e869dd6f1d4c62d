"""The recommended setting: chosen from a card's validation rows, used by sample / evaluate by default."""
from __future__ import annotations

import argparse
import json
from pathlib import Path


from diffusion.recommended import candidates, choose, recommended, resolve_sampling_args

ROOT = Path(__file__).resolve().parent.parent


def _row(sampler, steps, space_group, rate, template=None, k=1, n=100, at=500, guidance=0.0):
    return {"task": "csp", "sampler": sampler, "steps": steps, "space_group": space_group, "k": k, "n": n,
            "template_step": template, "guidance": guidance, "checkpoint_steps": at, "split": "val",
            "metrics": {"match_rate": rate}}


CARD = {"steps": 500, "split": {"validation": 100}, "metrics": {
    "ddim_noise": _row("ddim", 100, "none", 0.20),
    "pc_voted": _row("pc", 100, "predicted", 0.40, guidance=2.0),
    "ddim_template": _row("ddim", 100, "predicted", 0.60, template=100, guidance=2.0),
    "true_group": _row("pc", 100, "csv", 0.90),                  # not composition only
    "best_of_5": _row("ddim", 100, "none", 0.95, k=5),           # not one sample each
    "first_50": _row("ddim", 100, "none", 0.97, n=50),           # not the whole split
    "old_weights": _row("ddim", 100, "none", 0.99, at=400),      # measured on earlier weights
}}


def test_only_composition_only_whole_split_current_rows_compete():
    assert [s.key for s in candidates(CARD)] == ["ddim_template", "pc_voted", "ddim_noise"]
    entry = choose(CARD)
    assert entry["default"]["key"] == "ddim_template" and entry["noise"]["key"] == "pc_voted"
    assert choose({"metrics": {}}) is None


def test_start_and_flags():
    card = {**CARD, "recommended": choose(CARD)}
    assert recommended(card).template_step == 100
    assert recommended(card, "noise").sampler == "pc" and recommended(card, "noise").template_step is None
    assert recommended({}) is None

    def args(**given):
        base = dict(start=None, sampler=None, steps=None, guidance=None, template_step=None, step_lr=None,
                    space_group=None)
        return argparse.Namespace(**{**base, **given})

    assert resolve_sampling_args(args(), card).key == "ddim_template", "no flag: the card's choice"
    noise = resolve_sampling_args(args(start="noise"), card)
    assert noise.key == "pc_voted" and noise.template_step is None
    ddpm = resolve_sampling_args(args(sampler="ddpm"), card)
    assert ddpm.sampler == "ddpm" and ddpm.steps is None and ddpm.space_group == "predicted", "a flag wins, alone"
    plain = resolve_sampling_args(args(space_group="none"), card)
    assert plain.guidance == 0.0, "nothing to guide toward"
    assert resolve_sampling_args(args(), {}).sampler == "ddpm", "no recommendation: the built-in defaults"


def test_a_wyckoff_row_competes_and_carries_its_symmetry():
    wyckoff = {**_row("pc", 100, "predicted", 0.70, guidance=2.0), "symmetry": "wyckoff"}
    card = {**CARD, "metrics": {**CARD["metrics"], "pc_wyckoff": wyckoff}}
    card["recommended"] = choose(card)
    best = recommended(card)
    assert best.key == "pc_wyckoff" and best.symmetry == "wyckoff" and best.start == "noise"
    assert "Wyckoff" in best.describe()
    assert recommended(card, "noise").symmetry == "wyckoff", "Wyckoff sites from noise count as noise"
    base = dict(start=None, sampler=None, steps=None, guidance=None, template_step=None, step_lr=None,
                space_group=None, symmetry=None)
    assert resolve_sampling_args(argparse.Namespace(**{**base, "space_group": "none"}), card).symmetry == "none", \
        "no group, nothing to keep"
    assert resolve_sampling_args(argparse.Namespace(**{**base, "symmetry": "none"}), card).symmetry == "none"


def test_a_default_that_retrieves_nothing_falls_back_but_an_asked_flag_fails(tmp_path, capsys):
    from diffusion.cli import main

    shipped = str(ROOT / "checkpoints" / "mp_20.pt")
    assert recommended(json.loads((ROOT / "checkpoints" / "mp_20.json").read_text())).space_group == "predicted"
    odd = "Li1Be1B1C1N1"            # no training crystal has this prototype: nothing to vote on or copy
    assert main(["sample", "--checkpoint", shipped, "--composition", odd, "--out", str(tmp_path / "o")]) == 0
    assert "sampling without a space group" in capsys.readouterr().err
    assert (tmp_path / "o" / "sample_000.cif").is_file()
    code = main(["sample", "--checkpoint", shipped, "--composition", odd, "--space-group", "predicted",
                 "--out", str(tmp_path / "p")])
    assert code != 0 and "give a space-group number" in capsys.readouterr().err


def test_shipped_recommendations_are_the_best_measured_rows():
    for name in ("mp_20", "perov_5", "perov_5_small"):
        card = json.loads((ROOT / "checkpoints" / f"{name}.json").read_text())
        best = candidates(card)[0]
        assert card["recommended"]["default"]["key"] == best.key, name
        assert best.match_rate == max(s.match_rate for s in candidates(card))


def test_sample_uses_the_card_and_says_so(checkpoint_dir, tmp_path, capsys):
    from diffusion.checkpoints import load_card
    from diffusion.cli import main
    from diffusion.recommended import write_recommendation

    path = tmp_path / "tiny.pt"
    path.write_bytes((checkpoint_dir / "tiny_csp.pt").read_bytes())
    path.with_suffix(".json").write_text((checkpoint_dir / "tiny_csp.json").read_text())
    card = load_card(path)
    steps, size = card["steps"], card["split"]["validation"]
    card["metrics"] = {"ddim_3": _row("ddim", 3, "none", 0.5, at=steps, n=size)}
    path.with_suffix(".json").write_text(json.dumps(card))
    write_recommendation(path, choose(card), "test")
    assert main(["sample", "--checkpoint", str(path), "--composition", "SrTiO3", "--out", str(tmp_path / "o")]) == 0
    assert "the card's recommendation: DDIM, 3 steps" in capsys.readouterr().err


def test_generate_page_starts_from_the_shipped_recommendation(monkeypatch):
    from streamlit.testing.v1 import AppTest

    monkeypatch.delenv("CRYSTAL_DIFFUSION_CHECKPOINTS", raising=False)
    card = json.loads((ROOT / "checkpoints" / "mp_20.json").read_text())
    best = recommended(card)
    at = AppTest.from_file(str(ROOT / "pages" / "3_Generate.py"), default_timeout=300).run()
    assert not at.exception
    state = at.session_state
    assert state["gen.model"] == "mp_20" and state["gen.composition"] == "SrTiO3"
    assert (state["gen.sampler"], state["gen.steps"], state["gen.start"]) == (best.sampler, best.steps, best.start)
    assert bool(state["gen.symmetry"]) == (best.symmetry == "wyckoff")
    assert state["gen.sg_text"].isdigit(), "the training crystals' vote fills the group"
    assert any("Recommended for `mp_20`" in c.value for c in at.caption)
    assert any("retrieved, not predicted" in i.value for i in at.info), "the vote is shown as retrieval"
    assert any(c.value.startswith("Template: ") for c in at.caption), "the retrieved crystal is named"


def test_card_notes_survive_continued_training(perov_rows, tmp_path):
    from diffusion.cli import main

    out = tmp_path / "m.pt"
    common = ["train", "--data", str(perov_rows), "--out", str(out), "--hidden", "16", "--layers", "1",
              "--batch-size", "8", "--val-every", "50", "--checkpoint-every", "50", "--run-dir", str(tmp_path / "r"),
              "--quiet"]
    assert main([*common, "--max-steps", "2"]) == 0
    card = json.loads(out.with_suffix(".json").read_text())
    card["about_data"], card["recommended"] = "a note for people", {"default": {"sampler": "ddim"}}
    out.with_suffix(".json").write_text(json.dumps(card))
    assert main([*common, "--max-steps", "3"]) == 0
    card = json.loads(out.with_suffix(".json").read_text())
    assert card["steps"] == 3 and card["about_data"] == "a note for people" and card["recommended"]
    assert "a note for people" in out.with_suffix(".md").read_text()


def test_batch_page_starts_from_the_recommendation_and_can_leave_it(monkeypatch):
    from streamlit.testing.v1 import AppTest

    monkeypatch.delenv("CRYSTAL_DIFFUSION_CHECKPOINTS", raising=False)
    best = recommended(json.loads((ROOT / "checkpoints" / "mp_20.json").read_text()))
    at = AppTest.from_file(str(ROOT / "pages" / "4_Batch_and_metrics.py"), default_timeout=300).run()
    assert not at.exception
    assert at.session_state["batch.model"] == "mp_20" and at.session_state["batch.composition"] == "NaCl"
    assert at.toggle(key="batch.use_recommended").value
    assert any("Recommended for `mp_20`" in c.value for c in at.caption)
    assert any("retrieved, not predicted" in c.value for c in at.caption), "the vote is named as retrieval"
    assert at.selectbox(key="batch.sampler").value == best.sampler and at.selectbox(key="batch.sampler").disabled
    at.number_input(key="batch.n").set_value(2)
    at.button(key="batch.go").click().run()
    assert not at.exception and not at.error
    settings = at.session_state["batch.result"].settings
    assert settings.space_group == 225, "NaCl's training crystals vote rock salt"
    assert (settings.sampler, settings.steps, settings.template_step) == (best.sampler, best.steps, best.template_step)
    assert settings.symmetry == (best.symmetry == "wyckoff") and settings.guidance == best.guidance
    at.toggle(key="batch.use_recommended").set_value(False).run()
    assert not at.selectbox(key="batch.sampler").disabled
    at.button(key="batch.go").click().run()
    settings = at.session_state["batch.result"].settings
    assert settings.template_step is None and settings.space_group is None and not settings.symmetry


def test_the_app_makes_a_setting_concrete_with_the_clis_retrieval(monkeypatch):
    """The Generate / Batch / Open pages and ``sample`` retrieve a recommended setting's group, template and
    Wyckoff cell with one function (``diffusion.placement.retrieve``); the app adds the words."""
    from conftest import PEROV_CSV

    import explorer.recommended_field as field
    from diffusion.data import load_csv
    from diffusion.placement import retrieve
    from diffusion.recommended import SamplingSetting
    from diffusion.space_group_prediction import SpaceGroupPredictor
    from diffusion.templates import TemplateLibrary

    crystals = [c.replace(space_group=221) for c in list(load_csv(PEROV_CSV).crystals)[:400]]
    predictor, library = SpaceGroupPredictor(crystals), TemplateLibrary(crystals)
    monkeypatch.setattr(field, "chosen_group_predictor", lambda entry, choice: (predictor, None))
    monkeypatch.setattr(field, "template_library", lambda entry: (library, None))
    setting = SamplingSetting(sampler="ddim", steps=100, space_group="predicted", guidance=2.0, template_step=100)
    numbers = [int(z) for z in crystals[3].atomic_numbers]
    changes, notes = field.retrieved_setting(None, setting, numbers, None, 1000)
    got = retrieve(numbers, setting, predictor, library)
    assert got.vote is not None and changes["space_group"] == got.space_group
    assert changes["template_step"] == 100 and changes["guidance"] == 2.0 and changes["steps"] == 100
    assert "voted by the chemically nearest training crystals" in notes[0] and notes[1] == f"template: {got.template.describe()}"

    changes, notes = field.retrieved_setting(None, setting, numbers, 99, 50)
    assert changes["space_group"] == 99 and changes["steps"] == 50, "a typed group wins; steps stop at T"
    assert not any("voted" in n for n in notes)

    monkeypatch.setattr(field, "chosen_group_predictor", lambda entry, choice: (None, "no suggestion: unreadable data"))
    monkeypatch.setattr(field, "template_library", lambda entry: (None, "no template: unreadable data"))
    changes, notes = field.retrieved_setting(None, setting, numbers, None, 1000)
    assert changes["space_group"] is None and changes["guidance"] == 0.0 and changes["template_step"] is None
    assert notes == ["no suggestion: unreadable data: no group is asked",
                     "no template: unreadable data: every sample starts from noise"]
