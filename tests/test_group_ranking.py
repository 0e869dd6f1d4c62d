"""The model's choice of space group among its nearest training crystals' groups (``diffusion/group_ranking.py``)."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from diffusion.checkpoints import load_card, load_model, resolve
from diffusion.evaluation import training_space_group_predictor, training_template_library
from diffusion.group_ranking import ModelGroupPredictor, RankingConfig, denoising_loss, group_predictor
from diffusion.recommended import SamplingSetting, resolve_sampling_args
from diffusion.textbook import textbook_crystal
from diffusion.crystal import Crystal


@pytest.fixture(scope="module")
def mp20():
    card = load_card(resolve("mp_20"))
    return load_model("mp_20"), training_space_group_predictor(card), training_template_library(card)


def _atoms(name: str) -> list[int]:
    return [site.specie.Z for site in textbook_crystal(name).structure()]


def test_the_model_picks_the_cubic_perovskite_where_the_vote_picks_its_distorted_cousin(mp20):
    # SrTiO3's chemically nearest training crystal is BaTiO3's orthorhombic (Amm2, 38) cell, so the vote says 38;
    # the model denoises the cubic cousins' cell better and picks Pm-3m (221)
    model, vote, library = mp20
    atoms = _atoms("perovskite SrTiO3")
    assert vote.predict(atoms).space_group == 38
    guess = ModelGroupPredictor(model, vote, library).predict(atoms)
    assert guess.space_group == 221
    assert {g for g, _ in guess.votes} >= {38, 221}
    assert abs(sum(w for _, w in guess.votes) - 1) < 1e-9 and guess.confidence == guess.votes[0][1]
    assert [n.distance for n in guess.neighbours] == sorted(n.distance for n in guess.neighbours)


def test_the_choice_is_deterministic_and_cached(mp20):
    model, vote, library = mp20
    atoms = _atoms("rutile TiO2")
    first = ModelGroupPredictor(model, vote, library).predict(atoms)
    again = ModelGroupPredictor(model, vote, library).predict(atoms)
    assert first == again
    predictor = ModelGroupPredictor(model, vote, library)
    assert predictor.predict(atoms) is predictor.predict(list(atoms))


def test_identical_candidates_get_identical_losses(mp20):
    # common random numbers: every crystal of a call sees the same noise, so equal crystals score equally
    model = mp20[0]
    crystal = Crystal.from_structure(textbook_crystal("rock salt NaCl").structure())
    losses = denoising_loss(model, [crystal, crystal, crystal], levels=(5, 30), draws=3)
    # (equal up to float32 rounding: a batch's rows may be summed in another order; other noise would differ by far more)
    assert losses.shape == (3,) and torch.allclose(losses, losses[0].expand(3), rtol=1e-5, atol=0)
    assert torch.all(losses > 0)


def test_a_composition_with_one_group_nearby_keeps_the_vote(mp20):
    model, vote, library = mp20
    one = ModelGroupPredictor(model, vote, library, RankingConfig(neighbours=1))
    atoms = _atoms("perovskite SrTiO3")
    assert one.predict(atoms) == vote.predict(atoms)


def test_group_predictor_names_its_choices(mp20):
    model, vote, library = mp20
    assert group_predictor("vote", vote) is vote
    assert isinstance(group_predictor("model", vote, model, library), ModelGroupPredictor)
    with pytest.raises(ValueError, match="group choice"):
        group_predictor("coin", vote, model, library)
    with pytest.raises(ValueError, match="needs the model"):
        group_predictor("model", vote)


def test_the_card_decides_the_group_choice_unless_the_flag_does():
    card = {"recommended": {"default": SamplingSetting(sampler="ddim", steps=100, space_group="predicted",
                                                       guidance=2.0, template_step=100, group_choice="model").__dict__}}
    args = SimpleNamespace(sampler=None, steps=None, guidance=None, template_step=None, step_lr=None, symmetry=None,
                           group_choice=None, space_group=None, start=None, prop=None)
    assert resolve_sampling_args(args, card).group_choice == "model"
    assert resolve_sampling_args(SimpleNamespace(**{**vars(args), "group_choice": "vote"}), card).group_choice == "vote"
    # no group to choose when the user asks for none
    assert resolve_sampling_args(SimpleNamespace(**{**vars(args), "space_group": "none"}), card).group_choice == "vote"
    described = SamplingSetting(space_group="predicted", group_choice="model").describe()
    assert "the model finds most plausible" in described


def test_the_page_says_who_chose_the_group_and_that_the_candidates_are_retrieved():
    from diffusion.space_group_prediction import Neighbour, SpaceGroupGuess
    from explorer.recommended_field import group_origin

    guess = SpaceGroupGuess(221, ((221, 0.6), (38, 0.4)), (Neighbour("mp-1184950", "KZrO3", 221, 5),))
    by_model = group_origin(SamplingSetting(space_group="predicted", group_choice="model"), guess)
    by_vote = group_origin(SamplingSetting(space_group="predicted"), guess)
    assert "chosen by the model" in by_model and "KZrO3" in by_model and "retrieved" in by_model
    assert "voted by" in by_vote and "KZrO3" in by_vote and "retrieved" in by_vote


def test_sample_takes_the_group_choice_from_the_card_and_the_flag_overrides_it(tmp_path, capsys):
    from diffusion.cli import main

    card = load_card(resolve("mp_20"))
    assert card["recommended"]["default"]["group_choice"] == "model", "mp_20's default lets the model choose"
    assert main(["sample", "--checkpoint", "mp_20", "--composition", "SrTiO3", "--out", str(tmp_path / "a")]) == 0
    err = capsys.readouterr().err
    assert "space group 221 predicted" in err and "of the model's weight" in err
    assert main(["sample", "--checkpoint", "mp_20", "--composition", "SrTiO3", "--group-choice", "vote",
                 "--out", str(tmp_path / "b")]) == 0
    err = capsys.readouterr().err
    assert "space group 38 predicted" in err and "of the vote" in err


def test_suggest_on_generate_uses_the_same_chooser_as_the_recommended_setting(monkeypatch):
    from streamlit.testing.v1 import AppTest

    from conftest import ROOT

    monkeypatch.delenv("CRYSTAL_DIFFUSION_CHECKPOINTS", raising=False)
    at = AppTest.from_file(str(ROOT / "pages" / "3_Generate.py"), default_timeout=300).run()
    assert at.session_state["gen.model"] == "mp_20" and at.session_state["gen.composition"] == "SrTiO3"
    at.text_input(key="gen.sg_text").set_value("").run()
    at.button(key="gen.sg_suggest").click().run()
    assert not at.exception
    assert at.text_input(key="gen.sg_text").value == "221", "the model's choice, as the recommended setting's"
    hint = next(i.value for i in at.info if "Suggested" in i.value)
    assert "of the model's weight" in hint and "BaTiO3" in hint
