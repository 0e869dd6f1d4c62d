"""Reference trajectories of the samplers, recorded once from the shipped checkpoints.

``tests/test_reference_trajectories.py`` runs every case below with today's ``sample()`` and
compares it to ``tests/data/reference_trajectories.pt``, so a refactor of the samplers that
changes a number (or the order in which random numbers are drawn) is caught.

Regenerate (only when a sampler is meant to change its output, and say so in the commit):

    PYTHONPATH=. .venv/bin/python tests/reference_trajectories.py

The shipped checkpoints are used rather than the tiny models that tests/conftest.py trains, so the
references do not move when the training code does. Cases are a few steps each (seconds in all).
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
REFERENCE_FILE = ROOT / "tests" / "data" / "reference_trajectories.pt"
CHECKPOINTS = ROOT / "checkpoints"
FIELDS = ("timesteps", "num_atoms", "lattice", "frac_coords", "types", "type_probs", "pred_lattice",
          "pred_frac_coords", "lattice_noise_norm", "coord_score_norm", "min_distance", "volume")
# the code a reference is recorded from must be the committed one: these files decide the numbers
SAMPLING_SOURCES = ("diffusion/sampling.py", "diffusion/samplers", "diffusion/precision.py",
                    "diffusion/crystal_diffusion.py", "diffusion/corruption.py", "diffusion/model.py", "diffusion/crystal.py",
                    "diffusion/geometry.py", "diffusion/schedules.py", "diffusion/trajectory.py",
                    "diffusion/checkpoints.py")

SRTIO3 = (38, 22, 8, 8, 8)
BATIO3 = (56, 22, 8, 8, 8)
TI2O4 = (22, 22, 8, 8, 8, 8)
TWENTY = (56,) * 4 + (29,) * 4 + (8,) * 12     # 400 atom pairs per crystal: 22 of them need two network chunks

# name -> (checkpoint, request fields, config fields); "start" is filled in by ``_request``
CASES: dict[str, tuple[str, dict, dict]] = {
    "ddpm_strided": ("perov_5_small", dict(atoms=(SRTIO3, BATIO3), seeds=(3, 4)), dict(sampler="ddpm", steps=6)),
    "ddim_strided": ("perov_5_small", dict(atoms=(SRTIO3, BATIO3), seeds=(3, 4)), dict(sampler="ddim", steps=6)),
    "pc_strided": ("perov_5_small", dict(atoms=(SRTIO3, BATIO3), seeds=(3, 4)), dict(sampler="pc", steps=6)),
    "pc_own_step_lr": ("perov_5_small", dict(atoms=(SRTIO3,), seeds=(9,)), dict(sampler="pc", steps=4, step_lr=1e-4)),
    "ddpm_record_stride": ("perov_5_small", dict(atoms=(SRTIO3,), seeds=(5,)),
                           dict(sampler="ddpm", steps=9, record_stride=2)),
    "ddpm_final_only": ("perov_5_small", dict(atoms=(BATIO3,), seeds=(6,)), dict(sampler="ddpm", steps=5, record="final")),
    "ddpm_eager": ("perov_5_small", dict(atoms=(SRTIO3,), seeds=(7,)), dict(sampler="ddpm", steps=5, trace=False)),
    "guided_ddpm_group_and_property": ("mp_20", dict(atoms=(TI2O4,), seeds=(1,), space_group=(136,), prop=(-3.0,)),
                                       dict(sampler="ddpm", steps=4, guidance=1.5)),
    "guided_pc_group": ("mp_20", dict(atoms=(TI2O4, SRTIO3), seeds=(2, 3), space_group=(136, 221)),
                        dict(sampler="pc", steps=4, guidance=2.0)),
    "guided_ddim_property": ("perov_5_small", dict(atoms=(SRTIO3,), seeds=(8,), prop=(1.5,)),
                             dict(sampler="ddim", steps=5, guidance=1.0)),
    "chunked_batch": ("mp_20", dict(atoms=(TWENTY,) * 22, seeds=tuple(range(22))), dict(sampler="ddpm", steps=2)),
    "template_strided": ("perov_5_small", dict(atoms=(SRTIO3,), seeds=(11,), start_step=300),
                         dict(sampler="ddpm", steps=20)),
    "template_every_step_pc": ("perov_5_small", dict(atoms=(SRTIO3, SRTIO3), seeds=(12, 13), start_step=5),
                               dict(sampler="pc")),
    "template_ddim": ("perov_5_small", dict(atoms=(SRTIO3,), seeds=(14,), start_step=200), dict(sampler="ddim", steps=10)),
    "gen_ddpm": ("perov_5_gen", dict(num_atoms=(5, 4), seeds=(1, 2)), dict(sampler="ddpm", steps=6)),
    "gen_ddim": ("perov_5_gen", dict(num_atoms=(5,), seeds=(3,)), dict(sampler="ddim", steps=5)),
    "gen_pc_guided": ("perov_5_gen", dict(num_atoms=(5,), seeds=(4,), prop=(1.0,)),
                      dict(sampler="pc", steps=5, guidance=1.0)),
}


def cubic_perovskite(atoms: tuple[int, ...], a: float = 3.905):
    """The ideal cubic perovskite ABO3 (5 atoms, the A atom at the corner): the template start."""
    from diffusion.crystal import Crystal

    frac = torch.tensor([[0.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.5, 0.5, 0.0], [0.5, 0.0, 0.5], [0.0, 0.5, 0.5]],
                        dtype=torch.float64)
    return Crystal(torch.tensor(atoms), frac, torch.eye(3, dtype=torch.float64) * a)


def _request(fields: dict):
    from diffusion.sampling import SampleRequest

    atoms = fields.get("atoms")
    num_atoms = fields.get("num_atoms") or tuple(len(a) for a in atoms)
    start = None if "start_step" not in fields else tuple(cubic_perovskite(a) for a in atoms)
    return SampleRequest(num_atoms=num_atoms, seeds=fields["seeds"], atomic_numbers=atoms, prop=fields.get("prop"),
                         space_group=fields.get("space_group"), start=start, start_step=fields.get("start_step"))


def run_case(name: str, models: dict):
    """The trajectory of one case with today's ``sample()``; ``models`` caches loaded checkpoints by name."""
    from diffusion.checkpoints import load_model
    from diffusion.sampling import SamplingConfig, sample

    checkpoint, request, config = CASES[name]
    if checkpoint not in models:
        models[checkpoint] = load_model(CHECKPOINTS / f"{checkpoint}.pt")
    return sample(models[checkpoint], _request(request), SamplingConfig(**config))


def as_record(trajectory) -> dict:
    return {field: getattr(trajectory, field) for field in FIELDS}


def _source_changes() -> str:
    return subprocess.run(["git", "diff", "--stat", "HEAD", "--", *SAMPLING_SOURCES], cwd=ROOT, capture_output=True,
                          text=True, check=True).stdout.strip()


def main() -> int:
    changed = _source_changes()
    if changed and "--force" not in sys.argv:
        print(f"the sampling code differs from the commit; references must come from committed code:\n{changed}\n"
              "(pass --force to record anyway)")
        return 1
    torch.set_num_threads(1)
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    models: dict = {}
    cases = {name: as_record(run_case(name, models)) for name in CASES}
    REFERENCE_FILE.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"commit": commit, "torch": str(torch.__version__), "cases": cases}, REFERENCE_FILE)
    print(f"{len(cases)} reference trajectories from {commit[:10]} -> {REFERENCE_FILE.relative_to(ROOT)} "
          f"({REFERENCE_FILE.stat().st_size / 1024:.0f} kB)")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    raise SystemExit(main())
