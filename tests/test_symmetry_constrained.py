"""Symmetry-constrained sampling (DiffCSP++'s idea as a projection): the constraint, its projections, the loop, the CLI."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import spglib
import torch

from diffusion.checkpoints import load_card, load_model, resolve
from diffusion.cli import main
from diffusion.corruption import LatticeStats, latent_to_lattice
from diffusion.crystal import Crystal
from diffusion.metrics import space_group_number
from diffusion.samplers import SamplerState
from diffusion.samplers.constraints import BatchedSymmetry, lattice_system, onto_sites, project_state
from diffusion.sampling import SampleRequest, SamplingConfig, sample
from diffusion.wyckoff import constraint_from_crystal, constraint_from_template, constraint_from_wyckoff, symmetric_request

NACL = (11, 17)
TI2O4 = (22, 22, 8, 8, 8, 8)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def mp20():
    return load_model("mp_20", "cpu")


@pytest.fixture(scope="module")
def library():
    from diffusion.evaluation import training_template_library

    return training_template_library(load_card(resolve("mp_20")))


def _random_state(constraint, seed: int) -> SamplerState:
    """A prior-like state: a normal lattice latent, uniform coordinates."""
    g = torch.Generator().manual_seed(seed)
    frac = torch.rand(constraint.num_atoms, 3, generator=g, dtype=torch.float64).float()
    return SamplerState(torch.randn(1, 6, generator=g), frac, constraint.atomic_numbers.clone())


def _lattice(x: torch.Tensor, n: int, stats: LatticeStats) -> np.ndarray:
    """(3, 3) the cell of a (1, 6) latent."""
    return latent_to_lattice(x, torch.tensor([n]), stats)[0].double().numpy()


def _operations(cell) -> tuple[np.ndarray, np.ndarray]:
    """Every operation (rotations, translations) of the group in the constraint's cell (from its ideal crystal)."""
    c = cell.crystal
    data = spglib.get_symmetry_dataset((c.lattice.numpy(), c.frac_coords.numpy(), c.atomic_numbers.tolist()), symprec=1e-4)
    return np.asarray(data.rotations, float), np.asarray(data.translations)


def _assert_invariant(cell, lattice: np.ndarray, frac: np.ndarray, numbers: np.ndarray, tol: float = 2e-5) -> None:
    """Every operation of the group maps the crystal onto itself (element onto element) and keeps its metric."""
    gram = lattice @ lattice.T
    for w, t in zip(*_operations(cell)):
        assert np.allclose(w.T @ gram @ w, gram, atol=1e-4 * np.abs(gram).max())
        images = frac @ w.T + t
        gap = images[:, None, :] - frac[None, :, :]
        gap = np.abs(gap - np.round(gap)).max(-1)
        gap[numbers[:, None] != numbers[None, :]] = 1.0
        assert gap.min(1).max() < tol


CASES = {   # (group, sites) built from Wyckoff letters: free parameters and lattice systems of every kind
    "rock salt 225": (225, [("Na", "4a"), ("Cl", "4b")]),
    "rutile 136 (x, x, 0)": (136, [("Ti", "2a"), ("O", "4f")]),
    "wurtzite 186 (1/3, 2/3, z)": (186, [("Zn", "2b"), ("O", "2b")]),
    "194 (x, 2x, 1/4)": (194, [("Mg", "6h"), ("O", "2a")]),
    "166 rhombohedral (0, 0, z)": (166, [("Bi", "6c"), ("Te", "3a"), ("Te", "6c")]),
    "monoclinic 14": (14, [("Zr", "4e"), ("O", "4e"), ("O", "4e")]),
    "orthorhombic 62": (62, [("Ca", "4c"), ("Ti", "4b"), ("O", "4c"), ("O", "8d")]),
    "triclinic 2": (2, [("Si", "2i"), ("O", "2i")]),
    "cubic 227 (x, x, x)": (227, [("Mg", "8a"), ("Al", "16d"), ("O", "32e")]),
}


@pytest.mark.parametrize("setting", ["primitive", "conventional"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_projection_is_idempotent_and_lands_in_the_group(name, setting):
    group, sites = CASES[name]
    cell = constraint_from_wyckoff(group, sites, setting)
    constraint = cell.constraint
    assert constraint.space_group == group and constraint.lattice_system == lattice_system(group)
    stats = LatticeStats.around(12.0)
    for min_distance in (0.0, 0.5):
        symmetry = BatchedSymmetry.of([constraint], [constraint.num_atoms], stats, min_distance=min_distance)
        for seed in range(3):
            once = project_state(_random_state(constraint, seed), symmetry)
            twice = project_state(once, symmetry)
            assert torch.allclose(twice.x, once.x, atol=1e-5)
            gap = (twice.frac - once.frac).abs()
            assert float(torch.minimum(gap, 1 - gap).max()) < 1e-5
            lattice = _lattice(once.x, constraint.num_atoms, stats)
            _assert_invariant(cell, lattice, once.frac.double().numpy(), constraint.atomic_numbers.numpy())



@pytest.mark.parametrize("group, sites, lattice, coordinates", [
    (225, [("Na", "4a"), ("Cl", "4b")], 1, 0),
    (136, [("Ti", "2a"), ("O", "4f")], 2, 1),
    (194, [("Mg", "6h"), ("O", "2a")], 2, 1),
    (166, [("Bi", "6c"), ("Te", "3a"), ("Te", "6c")], 2, 2),
    (62, [("Ca", "4c"), ("Ti", "4b"), ("O", "4c"), ("O", "8d")], 3, 7),
    (14, [("Zr", "4e"), ("O", "4e")], 4, 6),
    (2, [("Si", "2i")], 6, 3),
])
def test_free_parameters_are_those_of_the_crystal_system_and_the_wyckoff_positions(group, sites, lattice, coordinates):
    """Cell parameters: 1 cubic ... 6 triclinic; coordinates: the sum of pyxtal's degrees of freedom."""
    from pyxtal.symmetry import Group

    dof = sum(int(Group(group).get_wyckoff_position(label).get_dof()) for _, label in sites)
    assert dof == coordinates
    for setting in ("primitive", "conventional"):
        constraint = constraint_from_wyckoff(group, sites, setting).constraint
        assert (constraint.lattice_freedom, constraint.coordinate_freedom) == (lattice, coordinates)


def test_a_point_goes_onto_its_wyckoff_position_on_the_torus():
    # (x, x, 0) through the anchor (0.3, 0.3, 0); a point near (0.9, 0.9, 0) wraps across the boundary
    projector = torch.tensor([[[0.5, 0.5, 0.0], [0.5, 0.5, 0.0], [0.0, 0.0, 0.0]]], dtype=torch.float64)
    anchor = torch.tensor([[0.3, 0.3, 0.0]], dtype=torch.float64)
    out = onto_sites(torch.tensor([[0.88, 0.02, 0.97]], dtype=torch.float64), projector, anchor)
    expected = torch.tensor([[0.95, 0.95, 0.0]], dtype=torch.float64)
    gap = (out - expected) - torch.round(out - expected)
    assert float(gap.abs().max()) < 1e-12


def test_the_template_constraint_keeps_the_asked_group_and_the_atom_counts(library):
    rutile = constraint_from_template(library.template(TI2O4, 136), 136)
    assert rutile.constraint.space_group == 136 and sorted(rutile.constraint.atomic_numbers.tolist()) == sorted(TI2O4)
    assert space_group_number(rutile.crystal.to_structure()) == 136
    assert sorted(rutile.constraint.wyckoff) in (["2a", "4f"], ["2a", "4g"])   # 4f and 4g: the same site, two settings
    conventional = constraint_from_template(library.template(NACL, 225), 225, "conventional")
    assert conventional.constraint.num_atoms == 8 and conventional.crystal.num_atoms == 8
    with pytest.raises(ValueError, match="no Wyckoff template"):
        constraint_from_template(library.template(TI2O4, 221), 221)
    with pytest.raises(ValueError, match="not in 221"):
        constraint_from_crystal(rutile.crystal, 221)
    with pytest.raises(ValueError, match="no Wyckoff position '4z'"):
        constraint_from_wyckoff(225, [("Na", "4z")])
    with pytest.raises(ValueError, match="no free parameter"):
        constraint_from_wyckoff(225, [("Na", "4a"), ("Cl", "4a")])


@pytest.mark.parametrize("atoms, group, sampler", [(NACL, 225, "ddim"), (TI2O4, 136, "ddim"), (TI2O4, 136, "pc")])
def test_every_frame_of_a_constrained_trajectory_is_in_the_asked_group(mp20, library, atoms, group, sampler):
    cell = constraint_from_template(library.template(atoms, group), group)
    seeds = (0, 1, 2, 3)
    trajectory = sample(mp20, symmetric_request([cell] * len(seeds), seeds),
                        SamplingConfig(sampler=sampler, steps=20, record="all"))
    assert trajectory.num_frames == 21
    for frame in range(trajectory.num_frames):
        for b in range(len(seeds)):
            structure = trajectory.structure(frame=frame, crystal=b)
            assert space_group_number(structure, symprec=0.1) == group, (frame, b)
    assert sorted(structure.atomic_numbers) == sorted(atoms)


def test_unconstrained_crystals_of_a_mixed_batch_are_unchanged(mp20, library):
    """A crystal without a constraint follows the trajectory it has alone (its own random stream)."""
    cell = constraint_from_template(library.template(TI2O4, 136), 136)
    config = SamplingConfig(sampler="ddpm", steps=5, record="all")
    free = SampleRequest(num_atoms=(2,), seeds=(7,), atomic_numbers=(NACL,))
    alone = sample(mp20, free, config)
    constrained = symmetric_request([cell], [3], condition=False)
    mixed = sample(mp20, SampleRequest(num_atoms=(cell.constraint.num_atoms, 2), seeds=(3, 7),
                                       atomic_numbers=(constrained.atomic_numbers[0], NACL),
                                       symmetry=(cell.constraint, None)), config)
    gap = (mixed.frac_coords[:, -2:] - alone.frac_coords).abs()
    assert float(torch.minimum(gap, 1 - gap).max()) < 1e-5
    assert torch.allclose(mixed.lattice[:, 1], alone.lattice[:, 0], atol=1e-4)


def test_requests_with_constraints_are_checked(mp20, tiny_gen, library):
    cell = constraint_from_template(library.template(TI2O4, 136), 136)
    good = symmetric_request([cell], [0])
    assert good.atomic_numbers[0] != TI2O4    # the constraint orders the atoms by element
    with pytest.raises(ValueError, match="constraint's order"):
        sample(mp20, SampleRequest(num_atoms=(6,), seeds=(0,), atomic_numbers=(TI2O4,), symmetry=(cell.constraint,)),
               SamplingConfig(steps=1))
    with pytest.raises(ValueError, match="conditioned on space group 141"):
        sample(mp20, SampleRequest(num_atoms=good.num_atoms, seeds=(0,), atomic_numbers=good.atomic_numbers,
                                   space_group=(141,), symmetry=good.symmetry), SamplingConfig(steps=1))
    with pytest.raises(ValueError, match="one symmetry constraint"):
        sample(mp20, SampleRequest(num_atoms=good.num_atoms, seeds=(0,), atomic_numbers=good.atomic_numbers,
                                   symmetry=good.symmetry * 2), SamplingConfig(steps=1))
    with pytest.raises(ValueError, match="csp"):
        sample(tiny_gen, SampleRequest(num_atoms=(6,), seeds=(0,), symmetry=good.symmetry), SamplingConfig(steps=1))


def test_cli_samples_in_the_template_group_and_explains_a_missing_template(tmp_path, capsys):
    out = tmp_path / "out"
    base = ["sample", "--checkpoint", "mp_20", "--composition", "Ti2O4", "--symmetry", "wyckoff", "--sampler", "ddim",
            "--steps", "10", "--start", "noise", "--guidance", "0", "--out", str(out)]
    assert main(base + ["--space-group", "136", "--num-samples", "2"]) == 0
    assert "space group 136 (tetragonal)" in capsys.readouterr().err
    for path in sorted(out.glob("*.cif")):
        assert space_group_number(Crystal.from_cif(path.read_text()).to_structure()) == 136
    assert main(base + ["--space-group", "221"]) == 2
    assert "no Wyckoff template" in capsys.readouterr().err
    assert main(base + ["--space-group", "none"]) == 2
    assert "needs a space group" in capsys.readouterr().err


def test_generate_page_keeps_the_symmetry_at_every_frame(monkeypatch):
    """The app control: NaCl asked in Fm-3m with 'Keep the symmetry' stays in 225 at every recorded frame."""
    from pathlib import Path

    from streamlit.testing.v1 import AppTest

    from diffusion.metrics import space_group_number

    monkeypatch.delenv("CRYSTAL_DIFFUSION_CHECKPOINTS", raising=False)
    page = Path(__file__).resolve().parent.parent / "pages" / "3_Generate.py"
    at = AppTest.from_file(str(page), default_timeout=300).run()
    at.text_input(key="gen.composition").set_value("NaCl")
    at.text_input(key="gen.sg_text").set_value("225")
    at.radio(key="gen.start").set_value("noise")
    at.selectbox(key="gen.sampler").set_value("ddim")
    at.number_input(key="gen.steps").set_value(20)
    at.checkbox(key="gen.symmetry").check().run()
    assert not at.exception and not at.error
    assert any("Wyckoff orbits from" in c.value for c in at.caption)
    at.button(key="gen.go").click().run()
    assert not at.exception and not at.error
    result = at.session_state["gen.results"][-1]
    assert result.settings.symmetry and result.settings.to_query("csp")["symmetry"] == "wyckoff", "kept in links"
    trajectory = result.trajectory
    groups = {space_group_number(trajectory.structure(frame=k)) for k in range(trajectory.num_frames)}
    assert groups == {225}, groups
    assert any("Wyckoff orbit move together" in c.value for c in at.caption)


def test_evaluate_keeps_the_wyckoff_sites_and_names_the_row(tmp_path):
    """``evaluate --symmetry wyckoff`` samples each crystal inside its template's Wyckoff cell (the JSON counts
    them), every constrained sample has the asked group, and the card row's key says so."""
    import json
    import shutil

    from diffusion.checkpoints import load_card

    shipped = Path(__file__).resolve().parent.parent / "checkpoints"
    for suffix in (".pt", ".json", ".md"):
        shutil.copy(shipped / f"mp_20{suffix}", tmp_path / f"mp_20{suffix}")
    out = tmp_path / "wy.json"
    argv = ["evaluate", "--checkpoint", str(tmp_path / "mp_20.pt"), "--limit", "6", "--sampler", "ddim", "--steps",
            "20", "--space-group", "csv", "--guidance", "0", "--start", "noise", "--symmetry", "wyckoff",
            "--update-card", "--json", str(out)]
    assert main(argv) == 0
    results = json.loads(out.read_text())
    assert results["symmetry"] == "wyckoff" and results["symmetry_cells"]["constrained"] >= 4
    asked = [c for c in results["crystals"] if c["valid"]]
    assert sum(c["sample_space_group"] == c["requested_space_group"] for c in asked) >= results["symmetry_cells"]["constrained"] - 1
    assert "polymorphs" in results["metrics"]
    assert "ddim_20_sg-csv_k1_wyckoff" in load_card(tmp_path / "mp_20.pt")["metrics"]
