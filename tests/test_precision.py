"""bfloat16 matrix products: close to float32, float32 everywhere else, never touching the original model."""
import pytest
import torch

from diffusion.checkpoints import load_model
from diffusion.cli import main
from diffusion.crystal import CrystalGraph
from diffusion.precision import ReducedPrecisionLinear, with_precision
from diffusion.sampling import SampleRequest, SamplingConfig, sample

TWENTY = (56,) * 4 + (29,) * 4 + (8,) * 12      # 400 atom pairs: the projection's pair-symmetric path
PEROVSKITE = (38, 22, 8, 8, 8)                  # 25 pairs: the direct path


def _predict(model, atoms, seed=0):
    gen = torch.Generator().manual_seed(seed)
    n = len(atoms)
    num_atoms, batch = torch.tensor([n]), torch.zeros(n, dtype=torch.long)
    frac, x, t = torch.rand(n, 3, generator=gen), torch.randn(1, 6, generator=gen), torch.tensor([400])
    with torch.no_grad():
        return model.predict(torch.tensor(atoms), frac, x, num_atoms, batch, t, None, None, None,
                             CrystalGraph.build(num_atoms, batch))


def _relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm())


def test_float32_is_the_model_itself(tiny_csp):
    assert with_precision(tiny_csp, "float32") is tiny_csp
    with pytest.raises(ValueError, match="unknown precision 'float16'"):
        with_precision(tiny_csp, "float16")
    with pytest.raises(ValueError, match="unknown precision"):
        SamplingConfig(precision="half").validate(1000)


@pytest.mark.parametrize("atoms", [PEROVSKITE, TWENTY], ids=["direct", "pair-symmetric"])
def test_bfloat16_predictions_are_close_and_float32(atoms):
    model = load_model("mp_20")
    low = with_precision(model, "bfloat16")
    reference, reduced = _predict(model, atoms), _predict(low, atoms)
    for name in ("lattice_eps", "coord_score"):
        a, b = getattr(reduced, name), getattr(reference, name)
        assert a.dtype == torch.float32
        error = _relative_error(a, b)
        assert 1e-5 < error < 0.03, (name, error)   # rounded (so really bfloat16), but only in the last digits


def test_copy_is_cached_rebuilt_after_training_and_leaves_the_model_alone(tiny_csp):
    low = with_precision(tiny_csp, "bfloat16")
    assert with_precision(tiny_csp, "bfloat16") is low
    linears = [m for m in low.denoiser.modules() if isinstance(m, ReducedPrecisionLinear)]
    assert linears and all(m.weight.dtype == torch.bfloat16 for m in linears)
    assert all(p.dtype == torch.float32 for p in tiny_csp.parameters())
    assert low.denoiser.dtype == torch.float32           # inputs, outputs and residual stream
    weight = tiny_csp.denoiser.coord_head.weight
    saved = weight.detach().clone()
    try:
        with torch.no_grad():
            weight.add_(1.0)                              # what an optimizer step does
        rebuilt = with_precision(tiny_csp, "bfloat16")
        assert rebuilt is not low
        assert torch.allclose(rebuilt.denoiser.coord_head.weight.float(), weight.detach(), atol=0.02)
    finally:
        with torch.no_grad():
            weight.copy_(saved)


def test_bfloat16_sampling_stays_near_float32():
    model = load_model("perov_5")
    request = SampleRequest((5, 5), (0, 1), (PEROVSKITE, PEROVSKITE))
    config = SamplingConfig(sampler="ddim", steps=50)
    full = sample(model, request, config)
    low = sample(model, request, SamplingConfig(sampler="ddim", steps=50, precision="bfloat16"))
    assert low.lattice.dtype == torch.float32 and low.frac_coords.shape == full.frac_coords.shape
    assert not torch.equal(low.lattice, full.lattice)                       # it did run in bfloat16
    lengths = lambda t: t.lattice[-1].norm(dim=-1)                          # noqa: E731
    assert torch.allclose(lengths(low), lengths(full), rtol=0.02)
    shift = torch.remainder(low.frac_coords[-1] - full.frac_coords[-1] + 0.5, 1.0) - 0.5
    assert shift.abs().max() < 0.02


def test_cli_sample_with_bfloat16(tmp_path, capsys):
    assert main(["sample", "--checkpoint", "perov_5", "--composition", "SrTiO3", "--sampler", "ddim", "--steps", "20",
                 "--precision", "bfloat16", "--out", str(tmp_path)]) == 0
    assert list(tmp_path.glob("*.cif"))
    with pytest.raises(SystemExit):
        main(["sample", "--checkpoint", "perov_5", "--composition", "SrTiO3", "--precision", "float16",
              "--out", str(tmp_path)])
    assert "invalid choice: 'float16'" in capsys.readouterr().err
