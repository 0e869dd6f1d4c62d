"""A tiny model overfits a handful of perovskites until sampling reproduces them."""
import torch

from diffusion.crystal import CrystalBatch
from diffusion.data import load_csv
from diffusion.metrics import csp_matcher
from diffusion.sampling import SampleRequest, SamplingConfig, sample
from diffusion.train import TrainConfig, build_model


def test_tiny_model_overfits_perovskites(perov_rows):
    crystals = load_csv(perov_rows).crystals[:2]
    config = TrainConfig(data=(str(perov_rows),), out="unused.pt", hidden=64, layers=3, frequencies=8, num_steps=100)
    torch.manual_seed(0)
    model = build_model(config, crystals)
    batch = CrystalBatch.from_crystals(crystals * 16)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    generator = torch.Generator().manual_seed(0)
    for step in range(1000):
        loss = model.loss(batch, generator, drop_probability=0.0).total
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    atoms = tuple(tuple(c.atomic_numbers.tolist()) for c in crystals)
    traj = sample(model, SampleRequest((5,) * 4, (0, 1, 2, 3), atoms * 2), SamplingConfig(sampler="ddpm", record="final"))
    matcher = csp_matcher()
    matched = [matcher.fit(traj.structure(frame=0, crystal=i), crystals[i % 2].to_structure()) for i in range(4)]
    assert sum(matched) >= 2, f"only {sum(matched)} of 4 samples matched their training crystal (loss {float(loss):.3f})"
    # the lattice must be right in absolute terms too (the matcher alone rescales volumes)
    for i in range(4):
        ratio = traj.structure(frame=0, crystal=i).volume / crystals[i % 2].volume
        assert abs(ratio - 1) < 0.1, f"sample {i} has {ratio:.2f} x the training volume"
