"""The denoiser's symmetries, checked numerically on random crystals."""
import math

import pytest
import torch

from diffusion.model import CrystalDenoiser, DenoiserConfig


def random_rotation(g: torch.Generator) -> torch.Tensor:
    q, r = torch.linalg.qr(torch.randn(3, 3, generator=g, dtype=torch.float64))
    q = q * torch.sign(torch.diagonal(r))
    return q.float()


@pytest.fixture(scope="module")
def setup():
    torch.manual_seed(0)
    config = DenoiserConfig(hidden=32, layers=2, frequencies=4, predict_types=True, use_property=True,
                            use_space_group=True)
    model = CrystalDenoiser(config).double().eval()
    g = torch.Generator().manual_seed(3)
    num_atoms = torch.tensor([1, 4, 6])
    batch = torch.repeat_interleave(torch.arange(3), num_atoms)
    n = int(num_atoms.sum())
    inputs = dict(types=torch.randint(0, 90, (n,), generator=g), frac=torch.rand(n, 3, generator=g, dtype=torch.float64),
                  lattice=torch.eye(3, dtype=torch.float64) + 0.3 * torch.randn(3, 3, 3, generator=g, dtype=torch.float64),
                  num_atoms=num_atoms, batch=batch, t=torch.tensor([5, 500, 999]),
                  prop=torch.tensor([0.3, math.nan, -1.0], dtype=torch.float64), space_group=torch.tensor([0, 225, 12]))
    return model, inputs


def run(model, **inputs):
    with torch.no_grad():
        return model(**inputs)


def test_rotation(setup):
    model, x = setup
    R = random_rotation(torch.Generator().manual_seed(7)).double()
    base, rotated = run(model, **x), run(model, **{**x, "lattice": x["lattice"] @ R.T})
    assert torch.allclose(rotated.coord_score, base.coord_score, atol=1e-9)
    assert torch.allclose(rotated.type_logits, base.type_logits, atol=1e-9)
    assert torch.allclose(rotated.lattice, base.lattice @ R.T, atol=1e-9), "lattice output must rotate with L"


def test_reflection(setup):
    model, x = setup
    P = torch.diag(torch.tensor([1.0, -1.0, 1.0], dtype=torch.float64))
    base, mirrored = run(model, **x), run(model, **{**x, "lattice": x["lattice"] @ P})
    assert torch.allclose(mirrored.coord_score, base.coord_score, atol=1e-9)
    assert torch.allclose(mirrored.lattice, base.lattice @ P, atol=1e-9)


def test_permutation(setup):
    model, x = setup
    # permute atoms inside crystal 2 (indices 5..10) and inside crystal 1 (1..4)
    perm = torch.tensor([0, 3, 1, 4, 2, 10, 7, 5, 9, 6, 8])
    base = run(model, **x)
    permuted = run(model, **{**x, "types": x["types"][perm], "frac": x["frac"][perm]})
    assert torch.allclose(permuted.coord_score, base.coord_score[perm], atol=1e-9)
    assert torch.allclose(permuted.type_logits, base.type_logits[perm], atol=1e-9)
    assert torch.allclose(permuted.lattice, base.lattice, atol=1e-9)


def test_periodic_translation_and_image_choice(setup):
    model, x = setup
    base = run(model, **x)
    shift = torch.tensor([0.31, -0.12, 0.77], dtype=torch.float64)
    translated = run(model, **{**x, "frac": torch.remainder(x["frac"] + shift, 1.0)})
    images = torch.randint(-2, 3, x["frac"].shape, generator=torch.Generator().manual_seed(1)).double()
    imaged = run(model, **{**x, "frac": x["frac"] + images})
    for out in (translated, imaged):
        assert torch.allclose(out.coord_score, base.coord_score, atol=1e-8)
        assert torch.allclose(out.lattice, base.lattice, atol=1e-8)
        assert torch.allclose(out.type_logits, base.type_logits, atol=1e-8)


def test_crystals_do_not_interact(setup):
    """Changing one crystal of the batch leaves the others' outputs unchanged."""
    model, x = setup
    base = run(model, **x)
    frac = x["frac"].clone()
    frac[5:] = torch.rand(6, 3, dtype=torch.float64)
    other = run(model, **{**x, "frac": frac})
    assert torch.allclose(other.coord_score[:5], base.coord_score[:5], atol=1e-10)
    assert not torch.allclose(other.coord_score[5:], base.coord_score[5:], atol=1e-6)


def test_conditions_change_the_output(setup):
    model, x = setup
    base = run(model, **x)
    for key, value in (("prop", torch.tensor([2.0, 1.0, 0.5], dtype=torch.float64)), ("space_group", torch.tensor([1, 2, 3]))):
        assert not torch.allclose(run(model, **{**x, key: value}).coord_score, base.coord_score)


def test_symmetric_edge_projection_equals_the_plain_one():
    """The i<j projection used for large graphs computes the same features as projecting every edge."""
    from diffusion.crystal import fully_connected_edges, paired_edges
    from diffusion.model import CrystalDenoiser, DenoiserConfig

    torch.manual_seed(0)
    net = CrystalDenoiser(DenoiserConfig(hidden=16, layers=2, frequencies=5))
    num_atoms = torch.tensor([1, 7, 3, 12])
    src, dst = paired_edges(num_atoms)
    full_src, full_dst = fully_connected_edges(num_atoms)
    assert sorted(zip(src.tolist(), dst.tolist())) == sorted(zip(full_src.tolist(), full_dst.tolist()))
    frac = torch.rand(int(num_atoms.sum()), 3)
    plain = net.edge_projection(frac, src, dst, min_edges=10**9)
    fast = net.edge_projection(frac, src, dst, min_edges=0)
    assert torch.allclose(fast, plain, atol=1e-5)


def test_loss_noise_is_drawn_on_the_generators_device():
    """A CPU generator gives the same draws for a model on any device (validation losses compare across
    CPU and GPU runs): draw() samples on the generator's device, then moves the numbers."""
    import torch
    from diffusion.crystal_diffusion import draw
    gen, ref = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    assert torch.equal(draw("randn", (5,), torch.device("cpu"), gen), torch.randn(5, generator=ref))
    moved = draw("rand", (4,), torch.device("meta"), gen)  # "meta" stands in for another device
    assert moved.device.type == "meta"
    torch.rand(4, generator=ref)
    assert torch.equal(draw("randint", (6,), torch.device("cpu"), gen, low=1, high=9),
                       torch.randint(1, 9, (6,), generator=ref))
