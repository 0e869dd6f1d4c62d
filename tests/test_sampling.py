import io

import pytest
import torch

from diffusion.api import generate
from diffusion.sampling import SampleRequest, SamplingConfig, sample, step_grid


@pytest.mark.parametrize("sampler", ["ddpm", "pc", "ddim"])
def test_same_seed_same_trajectory(tiny_csp, sampler):
    a = generate(tiny_csp, "SrTiO3", sampler=sampler, steps=15, seed=4)
    b = generate(tiny_csp, "SrTiO3", sampler=sampler, steps=15, seed=4)
    c = generate(tiny_csp, "SrTiO3", sampler=sampler, steps=15, seed=5)
    assert torch.equal(a.frac_coords, b.frac_coords) and torch.equal(a.lattice, b.lattice)
    assert not torch.equal(a.frac_coords, c.frac_coords)


def test_trajectory_records_every_step(tiny_csp):
    traj = generate(tiny_csp, "SrTiO3", sampler="ddpm")  # all T = 50 steps
    T = tiny_csp.num_steps
    assert traj.timesteps.tolist() == list(range(T, -1, -1))
    assert traj.lattice.shape == (T + 1, 1, 3, 3) and traj.frac_coords.shape == (T + 1, 5, 3)
    assert traj.min_distance.shape == (T + 1, 1) and traj.volume.shape == (T + 1, 1)
    assert torch.all(traj.volume > 0)
    assert torch.all((traj.frac_coords >= 0) & (traj.frac_coords < 1))
    assert torch.isfinite(traj.lattice_noise_norm[:-1]).all()
    s = traj.structure(0)
    assert s.composition.reduced_formula == "SrTiO3"
    assert abs(s.volume - float(traj.volume[-1, 0])) < 1e-3
    assert traj.structure(T).volume > 0 and traj.structure(T, predicted=True).volume > 0


def test_record_final_and_stride(tiny_csp):
    final = generate(tiny_csp, "SrTiO3", record="final")
    assert final.num_frames == 1 and final.timesteps.tolist() == [0]
    strided = generate(tiny_csp, "SrTiO3", record="all", record_stride=10)
    assert strided.timesteps.tolist() == [50, 40, 30, 20, 10, 0]
    assert torch.allclose(strided.frac_coords[-1], final.frac_coords[-1])


def test_batched_equals_one_at_a_time(tiny_csp):
    counts = ((38, 22, 8, 8, 8), (11, 17), (22, 22, 8, 8, 8, 8))
    config = SamplingConfig(sampler="ddpm", steps=20, record="final")
    batched = sample(tiny_csp, SampleRequest(tuple(len(c) for c in counts), (7, 8, 9), counts), config)
    for i, (atoms, seed) in enumerate(zip(counts, (7, 8, 9))):
        single = sample(tiny_csp, SampleRequest((len(atoms),), (seed,), (atoms,)), config)
        a, b = batched.structure(frame=0, crystal=i), single.structure(frame=0)
        assert abs(a.lattice.matrix - b.lattice.matrix).max() < 1e-3
        assert abs(a.frac_coords - b.frac_coords).max() < 1e-3


def test_extxyz_reparses_with_ase(tiny_csp):
    from ase.io import read

    traj = generate(tiny_csp, "SrTiO3", steps=10)
    frames = read(io.StringIO(traj.to_extxyz()), index=":", format="extxyz")
    assert len(frames) == traj.num_frames
    final = traj.structure(frame=traj.num_frames - 1)
    assert abs(frames[-1].cell.array - final.lattice.matrix).max() < 1e-6
    assert abs(frames[-1].positions - final.cart_coords).max() < 1e-6


def test_gen_task_decides_types_along_the_trajectory(tiny_gen):
    traj = generate(tiny_gen, num_atoms=5, steps=25, seed=1)
    assert traj.type_probs is not None and traj.type_probs.shape[-1] == 101
    assert bool(traj.masked(0).all()), "at x_T every type is undecided"
    assert not traj.masked(traj.num_frames - 1).any(), "at x_0 every type is decided"
    assert set(traj.element_numbers(traj.num_frames - 1).tolist()) <= set(tiny_gen.normalization.elements)
    undecided = [int(traj.masked(k).sum()) for k in range(traj.num_frames)]
    assert undecided == sorted(undecided, reverse=True)


def test_guidance_changes_the_result(tiny_csp):
    plain = generate(tiny_csp, "SrTiO3", steps=10, prop=1.0, guidance=0.0, seed=2)
    guided = generate(tiny_csp, "SrTiO3", steps=10, prop=1.0, guidance=3.0, seed=2)
    assert not torch.allclose(plain.frac_coords[-1], guided.frac_coords[-1])


@pytest.mark.parametrize("kwargs,message", [
    (dict(composition="Xx2"), "unknown element"),
    (dict(composition="SrTiO3", space_group=12), "space-group"),
    (dict(composition="SrTiO3", steps=0), "steps"),
    (dict(composition="SrTiO3", steps=10_000), "steps"),
    (dict(composition="SrTiO3", num_samples=0), "num_samples"),
    (dict(composition="SrTiO3", sampler="magic"), "unknown sampler"),
    (dict(composition="SrTiO3", guidance=float("nan")), "guidance"),
    (dict(composition="SrTiO3", sampler="pc", step_lr=-1e-5), "step_lr"),
    (dict(composition="SrTiO3", sampler="pc", step_lr=float("inf")), "step_lr"),
    (dict(num_atoms=4), "composition"),
])
def test_bad_requests(tiny_csp, kwargs, message):
    with pytest.raises(ValueError, match=message):
        generate(tiny_csp, **kwargs)


def test_step_grid():
    assert step_grid(1000, None) == list(range(1000, 0, -1))
    grid = step_grid(1000, 10)
    assert grid[0] == 1000 and grid[-1] == 1 and len(grid) == 10


def test_final_cif_reparses_to_the_same_structure(tiny_csp):
    from pymatgen.core import Structure

    from diffusion.crystal import Crystal

    traj = generate(tiny_csp, "SrTiO3", steps=10, seed=3)
    final = traj.structure(0)
    again = Structure.from_str(Crystal.from_structure(final).to_cif(), fmt="cif")
    # CIF keeps lengths and angles (not the orientation) and fractional coordinates
    assert max(abs(a - b) for a, b in zip(again.lattice.parameters, final.lattice.parameters)) < 1e-6
    assert [s.specie for s in again] == [s.specie for s in final]
    assert abs(again.frac_coords - final.frac_coords).max() < 1e-6


def test_sampling_never_changes_the_shared_model(tiny_csp):
    """The app shares one cached model between sessions: a request must leave it exactly as it was."""
    from diffusion.api import generate

    before = {k: v.clone() for k, v in tiny_csp.state_dict().items()}
    buffers = {k: v.clone() for k, v in tiny_csp.named_buffers()}
    generate(tiny_csp, "SrTiO3", num_samples=2, sampler="pc", steps=5, seed=3, prop=0.5, guidance=1.0)
    assert not tiny_csp.training
    assert all(torch.equal(before[k], v) for k, v in tiny_csp.state_dict().items())
    assert all(torch.equal(buffers[k], v) for k, v in tiny_csp.named_buffers())


def test_pc_takes_the_models_own_corrector_step_unless_one_is_given(checkpoint_dir):
    """SamplingConfig(step_lr=None) means the checkpoint's ProcessConfig.corrector_step_lr."""
    import dataclasses
    from diffusion.checkpoints import load_model
    from diffusion.crystal_diffusion import ProcessConfig

    model = load_model(checkpoint_dir / "tiny_csp.pt")
    assert model.process.corrector_step_lr == ProcessConfig().corrector_step_lr == 5e-7  # older cards: the default
    model.process = dataclasses.replace(model.process, corrector_step_lr=1e-3)
    request = SampleRequest(num_atoms=(5,), seeds=(3,), atomic_numbers=((38, 22, 8, 8, 8),))

    def final(step_lr):
        config = SamplingConfig(sampler="pc", steps=6, record="final", step_lr=step_lr, trace=False)
        return sample(model, request, config).frac_coords[-1]

    own, same, other = final(None), final(1e-3), final(5e-7)
    assert torch.equal(own, same)
    assert not torch.allclose(own, other)
    model.process = dataclasses.replace(model.process, corrector_step_lr=-1.0)  # a hand-edited checkpoint
    with pytest.raises(ValueError, match="corrector step size"):
        final(None)


# ---------------------------------------------------------------- samplers as objects (diffusion/samplers)

def _schedule_values():
    from diffusion.samplers import ScheduleValues
    from diffusion.schedules import make_schedule
    return ScheduleValues.of(make_schedule("cosine", 100))


def _noise(num_atoms=(3, 2)):
    from diffusion.samplers import CrystalNoise
    return CrystalNoise(tuple(range(len(num_atoms))), list(num_atoms), torch.device("cpu"))


def test_a_step_recovers_the_crystal_from_the_exact_noise():
    """Fed the noise that made x_t (and the exact score of F_t), every sampler's x0 estimate is x_0 itself."""
    from diffusion.corruption import q_sample
    from diffusion.crystal_diffusion import Prediction
    from diffusion.samplers import SamplerState, make_sampler

    values, gen = _schedule_values(), torch.Generator().manual_seed(0)
    x0, eps = torch.randn(2, 6, generator=gen), torch.randn(2, 6, generator=gen)
    frac0, z = 0.3 + 0.4 * torch.rand(5, 3, generator=gen), torch.randn(5, 3, generator=gen)
    t, s = 10, 7
    sigma_t = values.sigma[t]
    state = SamplerState(q_sample(x0, torch.tensor([t, t]), eps, torch.tensor(values.abar)), frac0 + sigma_t * z,
                         torch.tensor([38, 22, 8, 11, 17]))
    out = Prediction(eps, -z / sigma_t, None)  # the wrapped normal's score at sigma = 0.01 is the normal's
    for name in ("ddpm", "pc", "ddim"):
        result = make_sampler(name, values, step_lr=1e-5).step(state, t, s, out, _noise())
        assert torch.allclose(result.x0.lattice, x0, atol=1e-5), name
        assert torch.allclose(result.x0.frac, frac0, atol=1e-5), name
        assert result.x0.type_probs is None and torch.equal(result.state.types, state.types)
        assert (result.coefficients.t, result.coefficients.s) == (t, s)
    ddim = make_sampler("ddim", values).step(state, t, s, out, _noise())
    expected = q_sample(x0, torch.tensor([s, s]), eps, torch.tensor(values.abar))
    assert torch.allclose(ddim.state.x, expected, atol=1e-5), "DDIM puts x0 back at level s with the same eps"


def test_step_results_are_frozen_and_coefficients_follow_the_schedule():
    import dataclasses
    import math

    from diffusion.crystal_diffusion import Prediction
    from diffusion.samplers import SamplerState, make_sampler

    values = _schedule_values()
    state = SamplerState(torch.zeros(2, 6), torch.full((5, 3), 0.5), torch.tensor([38, 22, 8, 11, 17]))
    out = Prediction(torch.zeros(2, 6), torch.zeros(5, 3), None)
    result = make_sampler("pc", values, step_lr=2e-5).step(state, 40, 30, out, _noise())
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.state = state
    c = result.coefficients
    assert math.isclose(c.alpha, values.abar[40] / values.abar[30]) and math.isclose(c.beta, 1 - c.alpha)
    assert math.isclose(c.coord_drift, values.sigma[40] ** 2 - values.sigma[30] ** 2)
    assert math.isclose(c.gamma, 2e-5 * (values.sigma[40] / values.sigma[1]) ** 2) and c.reveal == 10 / 40
    last = make_sampler("ddpm", values).coefficients(3, 0)
    assert last.lattice_noise == 0.0 and last.coord_noise == 0.0, "the last update adds no noise"


def test_make_sampler_says_what_is_wrong():
    from diffusion.samplers import SAMPLER_CLASSES, SAMPLERS, make_sampler

    assert sorted(SAMPLER_CLASSES) == sorted(SAMPLERS)
    with pytest.raises(ValueError, match="unknown sampler 'euler'"):
        make_sampler("euler", _schedule_values())
    with pytest.raises(ValueError, match="step_lr"):
        make_sampler("pc", _schedule_values())


@pytest.mark.parametrize("sampler", ["ddpm", "pc", "ddim"])
def test_trajectory_keeps_the_coefficients_of_every_update(tiny_csp, sampler):
    traj = generate(tiny_csp, "SrTiO3", sampler=sampler, steps=8, record_stride=3)
    grid = step_grid(tiny_csp.num_steps, 8)
    assert [(c.t, c.s) for c in traj.coefficients] == list(zip(grid, grid[1:] + [0]))
    assert traj.sampler == sampler and len(traj.coefficients) > traj.num_frames - 1


def test_old_names_still_import():
    from diffusion.sampling import (SAMPLERS, CrystalNoise, ProgressCallback, SampleRequest, SamplingConfig,  # noqa: F401
                                    check_step_lr, resolved_step_lr, sample, step_grid)
    assert SAMPLERS == ("ddpm", "pc", "ddim")


def test_ddpm_reads_from_noise_to_crystal_in_two_short_files():
    """The loop (sampling.py) and the DDPM update (samplers/ddpm.py) together stay a one-sitting read."""
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent / "diffusion"
    lines = sum(len(p.read_text().splitlines()) for p in (root / "sampling.py", root / "samplers" / "ddpm.py"))
    assert lines <= 300, lines
