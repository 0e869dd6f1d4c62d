"""The CDVAE family (diffusion/cdvae/): an invariant encoder, a seeded annealed Langevin sampler,
checkpoints that load as what they are, and a tiny model that overfits two crystals."""
from __future__ import annotations

import math

import pytest
import torch

from diffusion.cdvae import CDVAE, CDVAEConfig, CDVAEProcess, LangevinConfig, composition_types, langevin_decode, \
    reconstruct
from diffusion.checkpoints import CheckpointError, load_model, read_checkpoint, save_checkpoint
from diffusion.crystal import CrystalBatch
from diffusion.data import load_csv
from diffusion.metrics import match_rms
from diffusion.train import TrainConfig, build_model


def _tiny(crystals, **process) -> CDVAE:
    config = TrainConfig(data=(), out="unused.pt", family="cdvae", hidden=32, layers=2, encoder_layers=2,
                         frequencies=8, latent_dim=8, num_levels=10)
    torch.manual_seed(0)
    model = build_model(config, crystals)
    if process:
        model = CDVAE(model.model_config, CDVAEProcess(**{**model.process.to_dict(), **process}), model.normalization)
    return model.eval()


@pytest.fixture(scope="module")
def perovskites(perov_rows):
    return load_csv(perov_rows).crystals[:4]


def _rotation(seed: int) -> torch.Tensor:
    q, _ = torch.linalg.qr(torch.randn(3, 3, generator=torch.Generator().manual_seed(seed), dtype=torch.float64))
    return q


def test_the_latent_is_invariant_to_rotation_translation_and_atom_order(perovskites):
    model = _tiny(perovskites)
    crystal = perovskites[0]
    rotated = crystal.replace(lattice=crystal.lattice @ _rotation(1).T)
    shifted = crystal.replace(frac_coords=torch.remainder(crystal.frac_coords + torch.tensor([0.31, 0.77, 0.05],
                                                                                             dtype=torch.float64), 1.0))
    order = torch.tensor([3, 0, 4, 2, 1])
    permuted = crystal.replace(atomic_numbers=crystal.atomic_numbers[order], frac_coords=crystal.frac_coords[order])
    with torch.no_grad():
        mu, log_var = model.encode(CrystalBatch.from_crystals([crystal, rotated, shifted, permuted]))
    for k in (1, 2, 3):
        assert torch.allclose(mu[k], mu[0], atol=1e-4), k
        assert torch.allclose(log_var[k], log_var[0], atol=1e-4), k
    other = model.encode(CrystalBatch.from_crystals([perovskites[1]]))[0]
    assert not torch.allclose(other[0], mu[0], atol=1e-3), "a different crystal must have a different latent"


def test_langevin_frames_are_recorded_and_reproducible_from_a_seed(perovskites):
    model = _tiny(perovskites, steps_per_level=3)
    z = model.prior(2, torch.Generator().manual_seed(0))
    first = langevin_decode(model, z, LangevinConfig(seed=7))
    again = langevin_decode(model, z, LangevinConfig(seed=7))
    other = langevin_decode(model, z, LangevinConfig(seed=8))
    trajectory = first.trajectory
    total = model.num_levels * 3
    assert trajectory.num_frames == total + 1
    assert trajectory.timesteps[0] == total and trajectory.timesteps[-1] == 0
    assert (trajectory.timesteps[:-1] > trajectory.timesteps[1:]).all()
    assert first.levels[0] == 0 and first.levels[1] == model.num_levels and first.levels[-1] == 1
    # the step size follows gamma_l = eta sigma_l^2
    assert math.isclose(float(first.step_sizes[1]), model.process.langevin_step * float(model.sigma[model.num_levels]) ** 2,
                        rel_tol=1e-6)
    assert torch.equal(trajectory.frac_coords, again.trajectory.frac_coords)
    assert torch.equal(trajectory.types, again.trajectory.types)
    assert not torch.equal(trajectory.frac_coords, other.trajectory.frac_coords)
    # every frame carries the update that made it (the equation panel's numbers)
    steps = trajectory.coefficients
    assert len(steps) == trajectory.num_frames and steps[0].level == 0
    assert (steps[1].level, steps[1].step_in_level) == (model.num_levels, 1) and (steps[-1].level, steps[-1].step_in_level) == (1, 3)
    assert math.isclose(steps[-1].gamma, steps[-1].eta * steps[-1].sigma ** 2, rel_tol=1e-6)
    # frames are real intermediate states: the atoms move between them
    assert not torch.equal(trajectory.frac_coords[0], trajectory.frac_coords[-1])
    thinned = langevin_decode(model, z, LangevinConfig(seed=7, record_every=4)).trajectory
    assert thinned.timesteps[-1] == 0 and thinned.num_frames == 1 + math.ceil(total / 4)
    assert torch.equal(thinned.frac_coords[-1], trajectory.frac_coords[-1])


def test_a_crystal_decodes_the_same_alone_and_in_a_batch(perovskites):
    model = _tiny(perovskites, steps_per_level=2)
    z = model.prior(3, torch.Generator().manual_seed(1))
    batch = langevin_decode(model, z, LangevinConfig(seed=3)).trajectory
    alone = langevin_decode(model, z[:1], LangevinConfig(seed=3)).trajectory
    n = int(alone.num_atoms[0])
    assert torch.allclose(batch.frac_coords[:, :n], alone.frac_coords, atol=1e-4)


def test_bad_langevin_settings_are_refused_with_a_reason(perovskites):
    model = _tiny(perovskites)
    z = model.prior(1)
    with pytest.raises(ValueError, match="step size"):
        langevin_decode(model, z, LangevinConfig(step_size=0.0))
    with pytest.raises(ValueError, match="steps per level"):
        langevin_decode(model, z, LangevinConfig(steps_per_level=10**6))


def test_composition_counts_add_up_to_the_atoms():
    probabilities = torch.zeros(2, 101)
    probabilities[0, [38, 22, 8]] = torch.tensor([0.2, 0.2, 0.6])
    probabilities[1, 6] = 1.0
    types = composition_types(probabilities, torch.tensor([5, 3]))
    assert sorted(types[:5].tolist()) == [8, 8, 8, 22, 38]
    assert types[5:].tolist() == [6, 6, 6]


def test_a_cdvae_checkpoint_loads_as_a_cdvae(perovskites, tmp_path):
    model = _tiny(perovskites)
    path = tmp_path / "tiny_cdvae.pt"
    save_checkpoint(model, path, {"name": "tiny_cdvae", "family": "cdvae"})
    loaded = load_model(path)
    assert isinstance(loaded, CDVAE) and read_checkpoint(path)["family"] == "cdvae"
    batch = CrystalBatch.from_crystals(perovskites[:2])
    with torch.no_grad():
        assert torch.equal(loaded.encode(batch)[0], model.encode(batch)[0])
    data = read_checkpoint(path)
    data["family"] = "vae-of-the-future"
    torch.save(data, tmp_path / "odd.pt")
    with pytest.raises(CheckpointError, match="family"):
        load_model(tmp_path / "odd.pt")


def test_the_training_command_writes_a_cdvae_card(perov_rows, tmp_path):
    from diffusion.cli import main

    out = tmp_path / "cdvae.pt"
    code = main(["train", "--family", "cdvae", "--data", str(perov_rows), "--out", str(out), "--run-dir",
                 str(tmp_path / "run"), "--hidden", "16", "--layers", "1", "--encoder-layers", "1", "--latent-dim", "4",
                 "--num-levels", "5", "--max-steps", "4", "--batch-size", "8", "--val-every", "2", "--quiet"])
    assert code == 0
    card = read_checkpoint(out)["card"]
    assert card["family"] == "cdvae" and card["task"] == "gen" and card["steps"] == 4
    assert isinstance(load_model(out), CDVAE)


@pytest.mark.slow  # about a minute of training on 2 cores: `make test-all` (or pytest -m slow) runs it
def test_a_tiny_cdvae_overfits_two_crystals_and_reconstructs_them(perovskites):
    crystals = perovskites[:2]
    model = _tiny(crystals, kl_weight=1e-4).train()
    batch = CrystalBatch.from_crystals(crystals * 8)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    steps = 1500
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps)
    generator = torch.Generator().manual_seed(0)
    for _ in range(steps):
        terms = model.loss(batch, generator)
        optimizer.zero_grad()
        terms.total.backward()
        optimizer.step()
        schedule.step()
    model.eval()
    rebuilt = {0: 0, 1: 0}
    for seed in range(4):
        run = reconstruct(model, CrystalBatch.from_crystals(crystals),
                          LangevinConfig(seed=seed, steps_per_level=10, step_size=1.0))
        for i, (sample, truth) in enumerate(zip(run.trajectory.final_structures(), crystals)):
            assert sample.composition == truth.to_structure().composition, "the composition comes from z"
            rebuilt[i] += match_rms(sample, truth.to_structure()) is not None
    # a tiny model trained for seconds places the atoms right in about half of the runs (docs/cdvae.md)
    assert all(count >= 1 for count in rebuilt.values()) and sum(rebuilt.values()) >= 4, \
        f"rebuilt per crystal out of 4 seeds: {rebuilt}"


def test_the_latent_map_interpolation_and_property_path(perovskites):
    from diffusion.cdvae.latent import encode_means, interpolate, optimize_property, principal_plane

    config = TrainConfig(data=(), out="unused.pt", family="cdvae", hidden=32, layers=1, encoder_layers=1,
                         frequencies=4, latent_dim=6, num_levels=5, property_name="heat_ref")
    torch.manual_seed(0)
    model = build_model(config, perovskites).eval()
    latents = encode_means(model, perovskites)
    assert latents.shape == (4, 6)
    plane = principal_plane(latents)
    assert torch.allclose(plane.components @ plane.components.T, torch.eye(2), atol=1e-5)
    assert 0 < float(plane.explained.sum()) <= 1 + 1e-6 and plane.explained[0] >= plane.explained[1]
    points = plane.project(latents)
    assert points.shape == (4, 2)
    # the plane's own points come back unchanged through lift and project
    assert torch.allclose(plane.project(plane.lift(points)), points, atol=1e-4)
    line = interpolate(latents[0], latents[1], 5)
    assert line.shape == (5, 6) and torch.equal(line[0], latents[0]) and torch.allclose(line[-1], latents[1])
    down = optimize_property(model, latents[0], steps=20, lr=0.1)
    up = optimize_property(model, latents[0], steps=20, lr=0.1, maximize=True)
    assert down.latents.shape == (21, 6) and torch.equal(down.latents[0], latents[0])
    assert down.predicted[-1] < down.predicted[0] < up.predicted[-1], "the path follows the property head"
    assert all(p.grad is None for p in model.parameters()), "the model is left as it was"
    with pytest.raises(ValueError, match="property head"):
        optimize_property(_tiny(perovskites), latents[0])


def test_sample_and_render_take_a_cdvae_checkpoint(cdvae_checkpoint_dir, tmp_path, capsys):
    from diffusion.cli import main

    checkpoint = str(cdvae_checkpoint_dir / "tiny_cdvae.pt")
    assert main(["sample", "--checkpoint", checkpoint, "--random-num-atoms", "--num-samples", "2", "--steps", "1",
                 "--out", str(tmp_path / "s"), "--trajectory"]) == 0
    assert len(list((tmp_path / "s").glob("*.cif"))) == 2 and len(list((tmp_path / "s").glob("*.extxyz"))) == 2
    assert main(["render", "--checkpoint", checkpoint, "--composition", "SrTiO3", "--steps", "1", "--frames", "3",
                 "--out", str(tmp_path / "r.png")]) == 0
    assert (tmp_path / "r.png").read_bytes()[:4] == b"\x89PNG"
    for argv in (["sample", "--checkpoint", checkpoint, "--composition", "SrTiO3", "--out", str(tmp_path / "x")],
                 ["sample", "--checkpoint", checkpoint, "--random-num-atoms", "--space-group", "221", "--out",
                  str(tmp_path / "x")],
                 ["render", "--checkpoint", checkpoint, "--space-group", "221", "--out", str(tmp_path / "x.gif")]):
        assert main(argv) != 0
    err = capsys.readouterr().err
    assert "latent space" in err and "does not apply to a CDVAE" in err and "Traceback" not in err


def test_a_resumed_cdvae_keeps_its_chosen_langevin_defaults(perov_rows, tmp_path):
    from diffusion.checkpoints import set_langevin_defaults
    from diffusion.cli import main

    out = tmp_path / "cdvae.pt"
    common = ["train", "--family", "cdvae", "--data", str(perov_rows), "--out", str(out), "--hidden", "16", "--layers",
              "1", "--encoder-layers", "1", "--latent-dim", "4", "--num-levels", "5", "--batch-size", "8",
              "--val-every", "2", "--quiet"]
    assert main(common + ["--max-steps", "2", "--run-dir", str(tmp_path / "run")]) == 0
    set_langevin_defaults(out, 0.7, 3, {"rows": [], "chosen": {"step_lr": 0.7, "steps_per_level": 3}})
    assert main(common + ["--max-steps", "4", "--run-dir", str(tmp_path / "elsewhere")]) == 0   # from the shipped weights
    model = load_model(out)
    assert (model.process.langevin_step, model.process.steps_per_level) == (0.7, 3)
    assert read_checkpoint(out)["card"]["langevin_choice"]["chosen"]["step_lr"] == 0.7
