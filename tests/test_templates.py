"""Templates from the nearest training crystal, and sampling that starts from a noised structure."""
from __future__ import annotations

import json

import pytest
import torch

from diffusion.crystal import Crystal
from diffusion.sampling import SampleRequest, SamplingConfig, sample, step_grid
from diffusion.space_group_prediction import NO_PROTOTYPE_MATCH
from diffusion.templates import TemplateLibrary, fit_atomic_volumes, substitute_elements


def rock_salt(cation: int, anion: int, a: float = 5.64, name: str = "") -> Crystal:
    """A 2-atom primitive rock-salt cell."""
    lattice = torch.tensor([[0.0, 0.5, 0.5], [0.5, 0.0, 0.5], [0.5, 0.5, 0.0]], dtype=torch.float64) * a
    return Crystal(torch.tensor([cation, anion]), torch.tensor([[0.0, 0.0, 0.0], [0.5, 0.5, 0.5]], dtype=torch.float64),
                   lattice, material_id=name, space_group=225)


def test_substitution_pairs_chemically_alike_elements_and_scales_the_cell():
    nacl = rock_salt(11, 17, name="NaCl")
    kbr, pairs = substitute_elements(nacl, [35, 19])            # KBr, given in any order
    assert dict(pairs) == {11: 19, 17: 35}                       # alkali -> alkali, halogen -> halogen
    assert kbr.atomic_numbers.tolist() == [19, 35]               # the source's atom order
    assert torch.equal(kbr.frac_coords, nacl.frac_coords)
    assert kbr.volume > nacl.volume                             # larger atoms, larger cell
    same, _ = substitute_elements(nacl, [11, 17])
    assert abs(same.volume - nacl.volume) < 1e-9
    with pytest.raises(ValueError, match="element counts"):
        substitute_elements(nacl, [11, 17, 17])


def test_atomic_volumes_are_fitted_from_cell_volumes_and_scale_substitutions():
    # cells whose volumes are exactly sums of per-element volumes: Na 20, K 35, Cl 25, Br 30 A^3
    made_up = {11: 20.0, 19: 35.0, 17: 25.0, 35: 30.0}
    cells = [rock_salt(a, b, name=f"{a}-{b}") for a in (11, 19) for b in (17, 35)]
    cells = [c.replace(lattice=c.lattice * ((made_up[a] + made_up[b]) / c.volume) ** (1 / 3))
             for c, (a, b) in zip(cells, [(a, b) for a in (11, 19) for b in (17, 35)])]
    fitted = fit_atomic_volumes(cells)
    # only sums are observed: any split of a common offset between cations and anions fits, so check sums
    assert abs(fitted[11] + fitted[17] - 45.0) < 1e-6 and abs(fitted[19] + fitted[35] - 65.0) < 1e-6
    kbr, _ = substitute_elements(cells[0], [19, 35], fitted)
    assert abs(kbr.volume - 65.0) < 1e-6                       # exactly the KBr cell of the made-up rule
    by_radius, _ = substitute_elements(cells[0], [19, 35], {11: 20.0})   # an element missing: radii instead
    assert abs(by_radius.volume - 65.0) > 1.0 and by_radius.volume > cells[0].volume


def test_library_takes_the_nearest_crystal_of_the_same_prototype():
    cscl = rock_salt(55, 17, name="CsCl").replace(space_group=221)
    library = TemplateLibrary([rock_salt(11, 17, name="NaCl"), cscl])
    template = library.template([19, 35])                      # KBr: nearer to NaCl than to CsCl
    assert template.source.material_id == "NaCl" and template.crystal.space_group == 225
    assert sorted(template.crystal.atomic_numbers.tolist()) == [19, 35]
    assert "Na->K" in template.describe() and "Cl->Br" in template.describe()
    assert library.template([19, 35, 35]) is None
    # a space group picks the polymorph: the nearest cousin in that group, else the nearest of any, marked
    in_221 = library.template([19, 35], space_group=221)
    assert in_221.source.material_id == "CsCl" and not in_221.asked_group_missing
    nowhere = library.template([19, 35], space_group=136)
    assert nowhere.source.material_id == "NaCl" and nowhere.asked_group_missing
    assert "asked group" in nowhere.describe()


def test_step_grid_below_a_start_step_keeps_the_stride():
    grid = step_grid(1000, 100, 300)
    assert grid[0] == 300 and grid[-1] == 1 and len(grid) == 30
    assert step_grid(1000, None, 20) == list(range(20, 0, -1))
    assert step_grid(1000, 100, 1000) == step_grid(1000, 100)


def test_sampling_from_a_structure_stays_near_it_at_small_t0_and_leaves_it_at_large(tiny_csp):
    atoms = (38, 22, 8, 8, 8)
    start = Crystal(torch.tensor(atoms), torch.tensor([[0, 0, 0], [.5, .5, .5], [.5, .5, 0], [.5, 0, .5], [0, .5, .5]],
                                                      dtype=torch.float64),
                    torch.eye(3, dtype=torch.float64) * 3.9)
    config = SamplingConfig(sampler="ddim", record="all")

    def run(t0: int):
        return sample(tiny_csp, SampleRequest((5,), (3,), (atoms,), start=(start,), start_step=t0), config)

    near = run(2)
    assert near.timesteps.tolist() == [2, 1, 0]
    shift = (near.frac_coords[-1] - start.frac_coords.float() + 0.5) % 1.0 - 0.5
    assert shift.abs().max() < 0.05
    assert abs(near.volume[-1, 0].item() - start.volume) / start.volume < 0.05
    far = run(tiny_csp.num_steps)
    assert far.timesteps[0].item() == tiny_csp.num_steps
    assert not torch.allclose(far.frac_coords[-1], near.frac_coords[-1], atol=0.05)


@pytest.mark.parametrize("changes,message", [
    (dict(start_step=0), "start_step"),
    (dict(start_step=10_000), "start_step"),
    (dict(start=None), "start_step needs"),
    (dict(atomic_numbers=((22, 38, 8, 8, 8),)), "order"),
])
def test_bad_start_requests(tiny_csp, changes, message):
    atoms = (38, 22, 8, 8, 8)
    start = Crystal(torch.tensor(atoms), torch.rand(5, 3, dtype=torch.float64), torch.eye(3, dtype=torch.float64) * 4)
    request = dict(num_atoms=(5,), seeds=(0,), atomic_numbers=(atoms,), start=(start,), start_step=5)
    request.update(changes)
    with pytest.raises(ValueError, match=message):
        sample(tiny_csp, SampleRequest(**request), SamplingConfig(sampler="ddim", steps=3))


def test_ab_initio_models_cannot_start_from_a_structure(tiny_gen):
    start = Crystal(torch.tensor([6, 6]), torch.rand(2, 3, dtype=torch.float64), torch.eye(3, dtype=torch.float64) * 3)
    with pytest.raises(ValueError, match="csp"):
        sample(tiny_gen, SampleRequest((2,), (0,), None, start=(start,), start_step=5), SamplingConfig(steps=3))


def test_sample_placed_from_templates_keeps_request_order_and_falls_back_to_noise(tiny_csp, checkpoint_dir):
    from diffusion.evaluation import training_template_library
    from diffusion.checkpoints import load_card
    from diffusion.placement import Starts, sample_placed

    library = training_template_library(load_card(checkpoint_dir / "tiny_csp.pt"))
    with_one, without = (38, 22, 8, 8, 8), (38, 22, 8, 8)     # SrTiO3 has perovskite cousins; SrTiO2 none
    assert library.template(with_one) is not None and library.template(without) is None
    request = SampleRequest((4, 5), (1, 2), (without, with_one))
    config = SamplingConfig(sampler="ddim", steps=10, record="final")
    templates = [library.template(a) for a in request.atomic_numbers]
    as_is = sample_placed(tiny_csp, request, config, Starts(templates=templates, template_step=0))
    assert as_is[1].trajectory is None and as_is[1].structure() == templates[1].crystal.to_structure()
    assert as_is[0].trajectory is not None and as_is[0].extxyz() is not None
    assert sorted(z.Z for z in as_is[0].structure().species) == sorted(without)
    noised = sample_placed(tiny_csp, request, config, Starts(templates=templates, template_step=5))
    assert noised[1].trajectory.timesteps[0].item() == 0         # record="final": only the sample
    assert sorted(z.Z for z in noised[1].structure().species) == sorted(with_one)
    with pytest.raises(ValueError, match="template step"):
        sample_placed(tiny_csp, request, config, Starts(templates=templates, template_step=tiny_csp.num_steps + 1))


def test_cli_sample_and_evaluate_from_templates(checkpoint_dir, perov_rows, tmp_path):
    from pymatgen.core import Structure

    from test_cli import assert_one_line_error, cli

    out = tmp_path / "out"
    r = cli("sample", "--checkpoint", "tiny_csp", "--composition", "SrTiO3", "--template-step", "0", "--out", str(out),
            env_dir=checkpoint_dir)
    assert r.returncode == 0, r.stderr
    assert "template:" in r.stderr and "noised to step 0" in r.stderr
    assert Structure.from_file(out / "sample_000.cif").composition.reduced_formula == "SrTiO3"
    r = cli("sample", "--checkpoint", "tiny_csp", "--composition", "SrTiO3", "--template-step", "20", "--sampler", "ddim",
            "--steps", "10", "--trajectory", "--out", str(out), env_dir=checkpoint_dir)
    assert r.returncode == 0, r.stderr
    # T = 50 and 10 steps: a stride of 5, so 4 evaluations from t0 = 20 down, plus the sample
    assert (out / "sample_000.extxyz").read_text().count("Lattice=") == 5
    assert_one_line_error(cli("sample", "--checkpoint", "tiny_csp", "--composition", "SrTiO2", "--template-step", "5",
                              "--out", str(out), env_dir=checkpoint_dir), f"{NO_PROTOTYPE_MATCH}, so there is no template")
    assert_one_line_error(cli("sample", "--checkpoint", "tiny_csp", "--composition", "SrTiO3", "--template-step", "999",
                              "--out", str(out), env_dir=checkpoint_dir), "template-step")
    assert_one_line_error(cli("sample", "--checkpoint", "tiny_gen", "--num-atoms", "5", "--template-step", "5",
                              "--out", str(out), env_dir=checkpoint_dir), "compositions")
    many = tmp_path / "many"
    r = cli("sample", "--checkpoint", "tiny_csp", "--from-csv", str(perov_rows), "--limit", "3", "--template-step", "0",
            "--out", str(many), env_dir=checkpoint_dir)
    assert r.returncode == 0, r.stderr
    assert "templates for" in r.stderr and len(list(many.glob("*.cif"))) == 3
    assert_one_line_error(cli("evaluate", "--checkpoint", "tiny_gen", "--template-step", "5", env_dir=checkpoint_dir),
                          "structure-prediction")
    r = cli("evaluate", "--checkpoint", "tiny_csp", "--template-step", "0", "--limit", "4", env_dir=checkpoint_dir)
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout)
    assert result["template_step"] == 0 and result["templates"]["n"] == result["n"] >= 2
    # perovskites: every validation crystal has a cubic cousin, and the template alone is already right
    assert result["templates"]["found"] == result["n"] and result["metrics"]["match_rate"] > 0.5
