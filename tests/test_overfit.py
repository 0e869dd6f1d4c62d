"""A tiny model overfits a handful of perovskites until sampling reproduces them."""
import torch

from diffusion.crystal import CrystalBatch
from diffusion.data import load_csv
from diffusion.metrics import csp_matcher, match_rms
from diffusion.sampling import SampleRequest, SamplingConfig, sample
from diffusion.train import TrainConfig, build_model

TRAINING_STEPS = 3000
SAMPLES = 16


def test_tiny_model_overfits_perovskites(perov_rows):
    crystals = load_csv(perov_rows).crystals[:3]
    config = TrainConfig(data=(str(perov_rows),), out="unused.pt", hidden=128, layers=3, frequencies=8, num_steps=1000)
    torch.manual_seed(0)
    model = build_model(config, crystals)
    batch = CrystalBatch.from_crystals(crystals * 11)
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, TRAINING_STEPS)
    generator = torch.Generator().manual_seed(0)
    for _ in range(TRAINING_STEPS):
        loss = model.loss(batch, generator, drop_probability=0.0).total
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
    model.eval()
    targets = [crystals[i % 3] for i in range(SAMPLES)]
    request = SampleRequest((5,) * SAMPLES, tuple(range(SAMPLES)), tuple(tuple(c.atomic_numbers.tolist()) for c in targets))
    traj = sample(model, request, SamplingConfig(sampler="ddpm", record="final"))
    matcher = csp_matcher()
    reproduced = []
    for i, truth in enumerate(targets):
        structure = traj.structure(frame=0, crystal=i)
        rms = match_rms(structure, truth.to_structure(), matcher)
        # reproduced: the matcher's mapping is (almost) exact and the cell has the right absolute size
        if rms is not None and rms < 0.1 and abs(structure.volume / truth.volume - 1) < 0.05:
            reproduced.append(i)
    assert reproduced, f"no sample reproduced a training perovskite (final loss {float(loss):.3f})"
