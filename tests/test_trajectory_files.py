"""diffusion.trajectory_files: other models' trajectory files, written here with the real writers (ase.io.write,
ASE's Trajectory, torch.save of the documented dicts, zipfile laid out as MatterGen lays it out, pymatgen's CIF
writer, this app's ``Trajectory.to_extxyz``), read back and compared; bad and hostile files end as one
``TrajectoryFileError`` with a clear message; the CLI's ``inspect`` and ``render --trajectory-file``."""
from __future__ import annotations

import argparse
import io
import json
import pickle
import sys
import types
import zipfile
from pathlib import Path

import ase.io
import numpy as np
import pytest
import torch
from PIL import Image
from pymatgen.core import Lattice, Structure
from pymatgen.io.ase import AseAtomsAdaptor

from diffusion import trajectory_files as tf
from diffusion.corruption import MASK
from diffusion.trajectory_files import (OpenedTrajectories, TrajectoryFileError, read_trajectory_bytes,
                                        read_trajectory_file, trajectory_from_frames)


# ------------------------------------------------------------------------------ crystals and frames

def srtio3() -> Structure:
    return Structure.from_spacegroup("Pm-3m", Lattice.cubic(3.905), ["Sr", "Ti", "O"],
                                     [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0]])


def rocksalt() -> Structure:
    return Structure.from_spacegroup("Fm-3m", Lattice.cubic(5.64), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])


def rutile() -> Structure:
    return Structure.from_spacegroup("P4_2/mnm", Lattice.tetragonal(4.594, 2.959), ["Ti", "O"],
                                     [[0, 0, 0], [0.305, 0.305, 0]])


def triclinic_tio2() -> Structure:
    """Rutile's atoms in a triclinic cell (every angle off 90 degrees), to test lattices made from parameters."""
    r = rutile()
    return Structure(Lattice.from_parameters(4.6, 4.7, 3.0, 85, 97, 101), r.species, r.frac_coords)


def noisy_frames(structure: Structure, K: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(K, 3, 3) lattices, (K, n, 3) fractional coordinates, (n,) atomic numbers: from noise to the crystal."""
    rng = np.random.default_rng(seed)
    L = structure.lattice.matrix
    frac = structure.frac_coords
    lattices, coords = [], []
    for k in range(K):
        w = (K - 1 - k) / max(K - 1, 1)
        shear = np.eye(3) + w * 0.15 * rng.standard_normal((3, 3))
        lattices.append(L @ shear * (1 + 0.3 * w))
        coords.append(np.mod(frac + w * 0.2 * rng.standard_normal(frac.shape), 1.0))
    return np.stack(lattices), np.stack(coords), np.asarray(structure.atomic_numbers)


def ase_frames(lattices, frac, numbers):
    """ase Atoms per frame (rows of the lattice are the cell vectors)."""
    from ase import Atoms

    numbers = np.broadcast_to(numbers, frac.shape[:2])
    return [Atoms(numbers=numbers[k], cell=lattices[k], scaled_positions=frac[k], pbc=True) for k in range(len(frac))]


def assert_frames(sample, lattices, frac, numbers, atol=1e-5):
    """The sample's frames equal the written ones (lattice rows, wrapped fractional coordinates, elements)."""
    K = len(frac)
    assert sample.num_frames == K and sample.num_crystals == 1
    assert torch.allclose(sample.lattice[:, 0].double(), torch.as_tensor(lattices, dtype=torch.float64), atol=atol)
    diff = sample.frac_coords.double().numpy() - np.asarray(frac)
    assert np.abs(diff - np.round(diff)).max() < atol          # equal modulo whole cell translations
    expected = np.broadcast_to(np.asarray(numbers), (K, frac.shape[1]))
    assert (sample.types.numpy() == expected).all()


# ------------------------------------------------------------------------------ trajectory_from_frames

def test_trajectory_from_frames_fills_every_field():
    lattices, frac, numbers = noisy_frames(rocksalt(), 5)
    t = trajectory_from_frames(lattices, frac, numbers, sampler="test format")
    assert t.timesteps.tolist() == [4, 3, 2, 1, 0] and t.num_atoms.tolist() == [8]
    assert t.lattice.shape == (5, 1, 3, 3) and t.frac_coords.shape == (5, 8, 3) and t.types.shape == (5, 8)
    assert t.lattice.dtype == torch.float32 and t.types.dtype == torch.int64
    assert (t.frac_coords >= 0).all() and (t.frac_coords < 1).all()
    assert torch.equal(t.pred_lattice, t.lattice) and torch.equal(t.pred_frac_coords, t.frac_coords)
    assert torch.isnan(t.lattice_noise_norm).all() and torch.isnan(t.coord_score_norm).all()
    assert t.lattice_noise_norm.shape == (5, 1) and t.type_probs is None and t.sampler == "test format"
    for k in range(5):
        s = Structure(Lattice(lattices[k]), numbers.tolist(), frac[k])
        shortest = (s.distance_matrix + np.eye(len(s)) * 100).min()
        assert float(t.min_distance[k, 0]) == pytest.approx(shortest, rel=1e-4)
        assert float(t.volume[k, 0]) == pytest.approx(s.volume, rel=1e-5)
    assert t.structure(frame=4).composition.reduced_formula == "NaCl"
    assert t.frame_of_step(0) == 4


@pytest.mark.parametrize("n", [1, 2, 7])
def test_periodic_min_distances_agree_with_the_projects_geometry(n):
    from diffusion.geometry import min_distances

    gen = torch.Generator().manual_seed(n)
    K = 20
    frac = torch.rand(K, n, 3, generator=gen, dtype=torch.float64)
    lattices = 4 * torch.eye(3, dtype=torch.float64) + 1.2 * torch.randn(K, 3, 3, generator=gen, dtype=torch.float64)
    expected = min_distances(frac.reshape(-1, 3), lattices, torch.full((K,), n), torch.arange(K).repeat_interleave(n))
    assert torch.allclose(tf.periodic_min_distances(frac, lattices), expected.float(), rtol=1e-5)


def test_trajectory_from_frames_keeps_given_timesteps_and_per_frame_types():
    lattices, frac, numbers = noisy_frames(srtio3(), 3)
    per_frame = np.stack([[8, 8, 8, 8, 8], [38, 22, 8, 8, 22], numbers])
    t = trajectory_from_frames(lattices, frac, per_frame, timesteps=[100, 50, 0])
    assert t.timesteps.tolist() == [100, 50, 0]
    assert t.types[0].tolist() == [8] * 5 and t.types[2].tolist() == numbers.tolist()


@pytest.mark.parametrize("change,fragment", [
    (lambda L, F, Z, s: (L, F.__setitem__((1, 0, 0), np.nan) or F, Z, s), "nan"),
    (lambda L, F, Z, s: (L, F.__setitem__((2, 1, 1), np.inf) or F, Z, s), "infinite"),
    (lambda L, F, Z, s: (L.__setitem__((1, 2), L[1, 0]) or L, F, Z, s), "volume"),
    (lambda L, F, Z, s: (L[:, :2], F, Z, s), "(frames, 3, 3)"),
    (lambda L, F, Z, s: (L, F[:2], Z, s), "expected"),
    (lambda L, F, Z, s: (L, F, Z[:3], s), "atomic numbers"),
    (lambda L, F, Z, s: (L, F, np.where(Z == 8, 0, Z), s), "not an element"),
    (lambda L, F, Z, s: (L, F, np.where(Z == 8, 130, Z), s), "not an element"),
    (lambda L, F, Z, s: (L, F, Z + 0.5, s), "whole numbers"),
    (lambda L, F, Z, s: (L, F, Z, [0, 1, 2, 3]), "count down"),
    (lambda L, F, Z, s: (L, F, Z, [3, 2, 1]), "4 whole numbers"),
])
def test_trajectory_from_frames_refuses_bad_frames(change, fragment):
    lattices, frac, numbers = noisy_frames(srtio3(), 4)
    args = change(lattices.copy(), frac.copy(), numbers.copy(), None)
    with pytest.raises(TrajectoryFileError) as err:
        trajectory_from_frames(*args)
    assert fragment.lower() in str(err.value).lower()


def test_trajectory_from_frames_limits(monkeypatch):
    lattices, frac, numbers = noisy_frames(rocksalt(), 4)
    monkeypatch.setattr(tf.base, "MAX_ATOMS", 7)
    with pytest.raises(TrajectoryFileError, match="MAX_ATOMS = 7"):
        trajectory_from_frames(lattices, frac, numbers)
    monkeypatch.setattr(tf.base, "MAX_FRAMES", 3)
    monkeypatch.setattr(tf.base, "MAX_ATOMS", 200)
    with pytest.raises(TrajectoryFileError, match="MAX_FRAMES = 3"):
        trajectory_from_frames(lattices, frac, numbers)


# ------------------------------------------------------------------------------ ASE: extended XYZ and .traj

def test_multi_frame_extxyz_written_by_ase(tmp_path):
    lattices, frac, numbers = noisy_frames(rutile(), 7)
    path = tmp_path / "relaxation.extxyz"
    ase.io.write(path, ase_frames(lattices, frac, numbers), format="extxyz")
    opened = read_trajectory_file(path)
    assert isinstance(opened, OpenedTrajectories) and opened.format == "extended XYZ" and opened.notes == ()
    (sample,) = opened.samples
    assert_frames(sample, lattices, frac, numbers)
    assert sample.timesteps.tolist() == list(range(6, -1, -1)) and sample.sampler == "extended XYZ"
    same = read_trajectory_bytes(path.read_bytes(), "relaxation.extxyz")      # the upload path agrees
    assert torch.equal(same.samples[0].frac_coords, sample.frac_coords)


def test_ase_traj_file(tmp_path):
    from ase.io.trajectory import Trajectory as AseTrajectory

    lattices, frac, numbers = noisy_frames(srtio3(), 5, seed=3)
    path = tmp_path / "md.traj"
    with AseTrajectory(str(path), "w") as writer:
        for atoms in ase_frames(lattices, frac, numbers):
            writer.write(atoms)
    opened = read_trajectory_file(path)
    assert opened.format == "ASE trajectory"
    assert_frames(opened.samples[0], lattices, frac, numbers)


def test_plain_xyz_without_a_lattice_is_refused(tmp_path):
    from ase import Atoms

    path = tmp_path / "water.xyz"
    ase.io.write(path, [Atoms("H2O", positions=[[0, 0, 0], [0.96, 0, 0], [-0.24, 0.93, 0]])] * 2, format="xyz")
    with pytest.raises(TrajectoryFileError) as err:
        read_trajectory_file(path)
    assert "water.xyz" in str(err.value) and "no lattice" in str(err.value) and "Lattice=" in str(err.value)


def test_frames_that_change_their_atoms_are_refused(tmp_path):
    lattices, frac, numbers = noisy_frames(srtio3(), 3)
    frames = ase_frames(lattices, frac, numbers)
    frames[2].numbers = [38, 22, 8, 8, 9]            # an O became F
    ase.io.write(tmp_path / "a.extxyz", frames, format="extxyz")
    with pytest.raises(TrajectoryFileError, match="keeps its atoms") as err:
        read_trajectory_file(tmp_path / "a.extxyz")
    assert "atom 4" in str(err.value) and "frame 2" in str(err.value)
    ase.io.write(tmp_path / "b.extxyz", ase_frames(*noisy_frames(srtio3(), 2)) + ase_frames(*noisy_frames(rutile(), 1)),
                 format="extxyz")
    with pytest.raises(TrajectoryFileError, match="frame 2 has 6 atoms but frame 0 has 5"):
        read_trajectory_file(tmp_path / "b.extxyz")


# ------------------------------------------------------------------------------ MatterGen

def mattergen_structures(structure: Structure, K: int, seed: int, undecided_frames: int = 0) -> list[Structure]:
    """Frames as MatterGen builds them: Lattice.from_parameters of the cell's lengths and angles, fractional
    coordinates, atomic numbers; its undecided (masked) atom types are Z = 101 (Md) until they are drawn."""
    lattices, frac, numbers = noisy_frames(structure, K, seed)
    frames = []
    for k in range(K):
        lattice = Lattice(lattices[k])
        species = list(numbers)
        if k < undecided_frames:       # frame k: the first (undecided_frames - k) atoms still undecided
            species = [101] * (undecided_frames - k) + species[undecided_frames - k:]
        frames.append(Structure(Lattice.from_parameters(*lattice.abc, *lattice.angles), species, frac[k]))
    return frames


def write_mattergen_zip(path: Path, trajectories: list[list[Structure]]) -> None:
    """generated_trajectories.zip as mattergen/generator.py's dump_trajectories writes it."""
    with zipfile.ZipFile(path, "w") as archive:
        for ix, strucs in enumerate(trajectories):
            text = io.StringIO()
            ase.io.write(text, [AseAtomsAdaptor.get_atoms(s) for s in strucs], format="extxyz")
            archive.writestr(f"gen_{ix}.extxyz", text.getvalue())


def test_mattergen_generated_trajectories_zip(tmp_path):
    crystals = [srtio3(), rocksalt(), rutile()]
    trajectories = [mattergen_structures(crystals[i % 3], K=4 + i, seed=i, undecided_frames=3 if i == 0 else 0)
                    for i in range(12)]
    path = tmp_path / "generated_trajectories.zip"
    write_mattergen_zip(path, trajectories)
    opened = read_trajectory_file(path)
    assert opened.format == "MatterGen trajectories (zip)" and len(opened.samples) == 12
    # natural order of the members: gen_2 before gen_10 (sample i has 4 + i frames)
    assert [s.num_frames for s in opened.samples] == [4 + i for i in range(12)]
    for i in (1, 2, 10):
        strucs = trajectories[i]
        assert_frames(opened.samples[i], np.stack([s.lattice.matrix for s in strucs]),
                      np.stack([s.frac_coords for s in strucs]), np.asarray(strucs[-1].atomic_numbers))
    assert opened.samples[10].structure(frame=13).composition.reduced_formula == "NaCl"
    # sample 0: MatterGen's undecided atoms (Md) are undecided here, and become the element they are drawn as
    first = opened.samples[0]
    assert (first.types[0, :3] == MASK).all() and first.masked(0)[:3].all() and not first.masked(3).any()
    assert first.element_numbers(0).tolist() == list(srtio3().atomic_numbers) == first.types[3].tolist()
    assert first.structure(frame=0).composition.reduced_formula == "SrTiO3"
    assert "1 sample(s) have atoms whose element is not drawn yet" in opened.notes[0]


def test_mattergen_generated_crystals_extxyz(tmp_path):
    """mattergen/common/utils/eval_utils.py save_structures: one frame per generated crystal."""
    crystals = [srtio3(), rocksalt(), rutile()]
    path = tmp_path / "generated_crystals.extxyz"
    ase.io.write(path, [AseAtomsAdaptor.get_atoms(s) for s in crystals])
    opened = read_trajectory_file(path)
    assert opened.format.startswith("MatterGen crystals") and len(opened.samples) == 3
    assert [s.num_frames for s in opened.samples] == [1, 1, 1]
    assert [s.structure(frame=0).composition.reduced_formula for s in opened.samples] == ["SrTiO3", "NaCl", "TiO2"]
    assert np.allclose(opened.samples[1].lattice[0, 0].numpy(), rocksalt().lattice.matrix, atol=1e-5)


def test_zip_limits_and_zip_bomb(tmp_path, monkeypatch):
    path = tmp_path / "generated_trajectories.zip"
    write_mattergen_zip(path, [mattergen_structures(srtio3(), K=9, seed=i) for i in range(5)])
    monkeypatch.setattr(tf.base, "MAX_SAMPLES", 2)
    monkeypatch.setattr(tf.base, "MAX_FRAMES", 4)
    opened = read_trajectory_file(path)
    assert len(opened.samples) == 2 and opened.notes[0] == "2 of 5 samples kept: MAX_SAMPLES = 2"
    assert "MAX_FRAMES = 4" in opened.notes[1]
    thin = opened.samples[0]
    assert thin.num_frames == 4 and thin.timesteps.tolist() == [8, 5, 3, 0]   # evenly, first and last kept
    assert torch.allclose(thin.frac_coords[-1].double(),
                          torch.as_tensor(np.mod(srtio3().frac_coords, 1.0)), atol=1e-5)
    monkeypatch.undo()
    # a member that unpacks far beyond the limit is refused from its zip entry, before it is unpacked
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("gen_0.extxyz", b"0" * (2 * 2**20))
    assert bomb.stat().st_size < 20_000
    monkeypatch.setattr(tf.base, "MAX_FILE_BYTES", 2**20)
    with pytest.raises(TrajectoryFileError, match=r"gen_0.extxyz unpacks to 2 MB, more than MAX_FILE_BYTES = 1 MB"):
        read_trajectory_file(bomb)
    monkeypatch.setattr(tf.base, "MAX_FILE_BYTES", 50 * 2**20)
    monkeypatch.setattr(tf.base, "MAX_UNPACKED_BYTES", 2**20)
    with pytest.raises(TrajectoryFileError, match="MAX_UNPACKED_BYTES"):
        read_trajectory_file(bomb)


def test_oversized_file_is_refused_before_reading(tmp_path, monkeypatch):
    lattices, frac, numbers = noisy_frames(srtio3(), 4)
    path = tmp_path / "big.extxyz"
    ase.io.write(path, ase_frames(lattices, frac, numbers), format="extxyz")
    monkeypatch.setattr(tf.base, "MAX_FILE_BYTES", 100)
    for call in (lambda: read_trajectory_file(path), lambda: read_trajectory_bytes(path.read_bytes(), "big.extxyz")):
        with pytest.raises(TrajectoryFileError, match="big.extxyz is .* MB, more than MAX_FILE_BYTES"):
            call()


def test_too_many_atoms_names_the_limit(tmp_path, monkeypatch):
    path = tmp_path / "t.extxyz"
    ase.io.write(path, ase_frames(*noisy_frames(rocksalt(), 2)), format="extxyz")
    monkeypatch.setattr(tf.base, "MAX_ATOMS", 6)
    with pytest.raises(TrajectoryFileError, match="8 atoms, more than MAX_ATOMS = 6"):
        read_trajectory_file(path)


# ------------------------------------------------------------------------------ CDVAE and DiffCSP torch files

def crystal_arrays(structures: list[Structure]):
    frac = np.concatenate([s.frac_coords for s in structures])
    types = np.concatenate([s.atomic_numbers for s in structures])
    lengths = np.array([s.lattice.abc for s in structures])
    angles = np.array([s.lattice.angles for s in structures])
    return frac, types, lengths, angles, np.array([len(s) for s in structures])


def cdvae_recon(E: int = 2, K: int = 6):
    """eval_recon.pt with --save_traj as CDVAE's scripts/evaluate.py saves it (E evaluation runs, B = 3)."""
    structures = [srtio3(), rocksalt(), triclinic_tio2()]
    frac, types, lengths, angles, counts = crystal_arrays(structures)
    N = len(types)
    rng = np.random.default_rng(0)
    stack = np.mod(frac[None, None] + 0.1 * rng.standard_normal((E, K, N, 3)), 1.0)
    type_stack = np.broadcast_to(types, (E, K, N)).copy()
    type_stack[:, 0] = 6                                    # ab initio: early Langevin steps predict other types
    type_stack[:, 1, ::2] = 7
    final = stack[:, -1].copy()
    final[E - 1] = frac                                     # the last run's sample comes after its last saved step
    return {
        "eval_setting": argparse.Namespace(model_path="/hydra/singlerun/mp20", tasks=["recon"], save_traj=True,
                                           n_step_each=100, step_lr=1e-4, num_evals=E, down_sample_traj_step=10),
        "frac_coords": torch.tensor(final, dtype=torch.float32),
        "num_atoms": torch.tensor(np.broadcast_to(counts, (E, 3)).copy()),
        "atom_types": torch.tensor(np.broadcast_to(types, (E, N)).copy()),
        "lengths": torch.tensor(np.broadcast_to(lengths, (E, 3, 3)).copy(), dtype=torch.float32),
        "angles": torch.tensor(np.broadcast_to(angles, (E, 3, 3)).copy(), dtype=torch.float32),
        "all_frac_coords_stack": torch.tensor(stack, dtype=torch.float32),
        "all_atom_types_stack": torch.tensor(type_stack),
        "time": 12.5,
    }, structures


def test_cdvae_eval_recon_with_trajectories(tmp_path):
    data, structures = cdvae_recon()
    path = tmp_path / "eval_recon.pt"
    torch.save(data, path)
    opened = read_trajectory_file(path)
    assert opened.format == "CDVAE eval_recon.pt" and len(opened.samples) == 6
    assert "2 evaluation runs of 3 crystals" in " ".join(opened.notes)
    frac = data["all_frac_coords_stack"].double().numpy()
    for index, sample in enumerate(opened.samples):
        e, b = divmod(index, 3)
        n = len(structures[b])
        start = sum(len(s) for s in structures[:b])
        appended = e == 1                                   # its sample differs from the last saved step
        assert sample.num_frames == 6 + appended
        expected_frac = frac[e, :, start:start + n]
        if appended:
            final = data["frac_coords"][e, start:start + n].double().numpy()
            expected_frac = np.concatenate([expected_frac, final[None]])
        lattice = Lattice.from_parameters(*structures[b].lattice.abc, *structures[b].lattice.angles).matrix
        expected_types = data["all_atom_types_stack"][e, :, start:start + n].numpy()
        if appended:
            expected_types = np.concatenate([expected_types, expected_types[-1:]])
        assert_frames(sample, np.broadcast_to(lattice, (sample.num_frames, 3, 3)), expected_frac, expected_types,
                      atol=1e-4)
        assert sample.types[0].tolist() == [6] * n           # types change per frame (ab initio), kept per frame
    assert opened.samples[4].structure(frame=6).composition.reduced_formula == "NaCl"


def test_cdvae_final_structures_and_opt(tmp_path):
    data, structures = cdvae_recon(E=1)
    data["all_frac_coords_stack"], data["all_atom_types_stack"] = [], []    # evaluate.py without --save_traj
    torch.save(data, tmp_path / "eval_gen.pt")
    opened = read_trajectory_file(tmp_path / "eval_gen.pt")
    assert opened.format == "CDVAE eval_gen.pt" and [s.num_frames for s in opened.samples] == [1, 1, 1]
    assert "final structures only" in opened.notes[0]
    assert [s.structure(frame=0).composition.reduced_formula for s in opened.samples] == ["SrTiO3", "NaCl", "TiO2"]
    # eval_opt.pt: torch.cat of the decoded crystals of every saved optimization step, then unsqueeze(0)
    opt = {k: data[k] for k in ("frac_coords", "atom_types", "num_atoms", "lengths", "angles")}
    opt = {k: torch.cat([v[0], v[0]]).unsqueeze(0) for k, v in opt.items()}
    opt.update(eval_setting=argparse.Namespace(tasks=["opt"], start_from="data"), time=3.0)
    torch.save(opt, tmp_path / "eval_opt.pt")
    opened = read_trajectory_file(tmp_path / "eval_opt.pt")
    assert opened.format == "CDVAE eval_opt.pt" and len(opened.samples) == 6 and "optimized" in opened.notes[0]


def test_diffcsp_eval_diff_and_eval_gen(tmp_path):
    structures = [triclinic_tio2(), srtio3()]
    frac, types, lengths, angles, counts = crystal_arrays(structures)
    E = 2
    lattices = np.stack([s.lattice.matrix for s in structures])
    torch.save({
        "eval_setting": argparse.Namespace(model_path="x", dataset="mp_20", step_lr=-1, num_evals=E, label=""),
        "frac_coords": torch.tensor(np.broadcast_to(frac, (E, len(types), 3)).copy()),
        "num_atoms": torch.tensor(np.broadcast_to(counts, (E, 2)).copy()),
        "atom_types": torch.tensor(np.broadcast_to(types, (E, len(types))).copy()),
        "lattices": torch.tensor(np.broadcast_to(lattices, (E, 2, 3, 3)).copy()),
        "lengths": torch.tensor(np.broadcast_to(lengths, (E, 2, 3)).copy()),
        "angles": torch.tensor(np.broadcast_to(angles, (E, 2, 3)).copy()),
        "time": 1.0,
    }, tmp_path / "eval_diff.pt")
    opened = read_trajectory_file(tmp_path / "eval_diff.pt")
    assert opened.format == "DiffCSP eval_diff.pt" and len(opened.samples) == 4
    assert_frames(opened.samples[3], lattices[1:2], srtio3().frac_coords[None], srtio3().atomic_numbers)
    # DiffCSP's scripts/generation.py: no leading run dimension, lengths and angles only
    torch.save({"eval_setting": argparse.Namespace(dataset="mp_20"), "frac_coords": torch.tensor(frac),
                "num_atoms": torch.tensor(counts), "atom_types": torch.tensor(types),
                "lengths": torch.tensor(lengths), "angles": torch.tensor(angles)}, tmp_path / "eval_gen.pt")
    opened = read_trajectory_file(tmp_path / "eval_gen.pt")
    assert opened.format == "DiffCSP eval_gen.pt" and len(opened.samples) == 2
    expected = Lattice.from_parameters(4.6, 4.7, 3.0, 85, 97, 101).matrix
    assert_frames(opened.samples[0], expected[None], rutile().frac_coords[None], rutile().atomic_numbers)


def test_legacy_torch_format_is_read(tmp_path):
    data, _ = cdvae_recon(E=1, K=3)
    torch.save(data, tmp_path / "eval_recon.pt", _use_new_zipfile_serialization=False)
    assert len(read_trajectory_file(tmp_path / "eval_recon.pt").samples) == 3


def test_wrong_keys_and_shapes_are_explained(tmp_path):
    torch.save({"frac_coords": torch.zeros(1, 5, 3)}, tmp_path / "eval_gen.pt")
    with pytest.raises(TrajectoryFileError, match="has no 'atom_types', 'num_atoms', 'lengths', 'angles'"):
        read_trajectory_file(tmp_path / "eval_gen.pt")
    data, _ = cdvae_recon(E=1)
    data["num_atoms"] = data["num_atoms"] + 1
    torch.save(data, tmp_path / "eval_recon.pt")
    with pytest.raises(TrajectoryFileError, match="num_atoms does not add up"):
        read_trajectory_file(tmp_path / "eval_recon.pt")
    torch.save([1, 2, 3], tmp_path / "list.pt")
    with pytest.raises(TrajectoryFileError, match="holds a list; a dict with frac_coords"):
        read_trajectory_file(tmp_path / "list.pt")


class MarkerWriter:
    """Unpickling this would run code: it writes a marker file."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return exec, (f"open({self.marker!r}, 'w').write('ran')",)


def test_a_pickle_that_would_run_code_runs_nothing(tmp_path):
    marker = tmp_path / "marker"
    data, _ = cdvae_recon(E=1)
    data["eval_setting"] = MarkerWriter(marker)
    torch.save(data, tmp_path / "eval_recon.pt")
    (tmp_path / "eval_gen.pt").write_bytes(pickle.dumps(MarkerWriter(marker), protocol=2))    # a bare pickle
    (tmp_path / "old.traj").write_bytes(pickle.dumps(MarkerWriter(marker)))
    for name in ("eval_recon.pt", "eval_gen.pt"):
        with pytest.raises(TrajectoryFileError) as err:
            read_trajectory_file(tmp_path / name)
        assert "exec" in str(err.value) and "not allowed" in str(err.value), str(err.value)
    with pytest.raises(TrajectoryFileError, match="not an ASE trajectory"):
        read_trajectory_file(tmp_path / "old.traj")
    assert not marker.exists()
    # the upload path is the same
    with pytest.raises(TrajectoryFileError, match="exec"):
        read_trajectory_bytes((tmp_path / "eval_recon.pt").read_bytes(), "eval_recon.pt")
    assert not marker.exists()


def test_a_class_we_do_not_allow_is_named(tmp_path):
    from fractions import Fraction

    data, _ = cdvae_recon(E=1)
    data["time"] = Fraction(1, 3)
    torch.save(data, tmp_path / "eval_recon.pt")
    with pytest.raises(TrajectoryFileError, match="fractions.Fraction"):
        read_trajectory_file(tmp_path / "eval_recon.pt")


@pytest.fixture
def fake_torch_geometric(tmp_path, monkeypatch):
    """Modules named like torch_geometric whose objects pickle as PyG 1.7 (Batch(Data): NEWOBJ + BUILD) and 2.x
    (Batch.__reduce__ -> DynamicInheritanceGetter()(Batch, Data), state) pickle them; unpickling them for real
    would write a marker file. They exist only while the file is written."""
    marker = tmp_path / "pyg_marker"
    names = ["torch_geometric", "torch_geometric.data", "torch_geometric.data.data", "torch_geometric.data.batch"]
    modules = {name: types.ModuleType(name) for name in names}

    def touch(*args):
        marker.write_text("ran")

    class Data:
        def __setstate__(self, state):
            touch()
            self.__dict__.update(state)

    class DynamicInheritanceGetter:
        def __call__(self, cls, base):
            touch()
            return type(cls.__name__, (cls, base), {})()

    class Batch(Data):
        pass

    class BatchV2:
        def __reduce__(self):
            return DynamicInheritanceGetter(), (BatchV2, Data), {"_store": {"x": torch.ones(2)}}

    Data.__module__, Data.__qualname__ = "torch_geometric.data.data", "Data"
    for cls, qual in ((DynamicInheritanceGetter, "DynamicInheritanceGetter"), (Batch, "Batch"), (BatchV2, "Batch")):
        cls.__module__ = "torch_geometric.data.batch"
        cls.__qualname__ = cls.__name__ = qual
    modules["torch_geometric.data.data"].Data = Data
    modules["torch_geometric.data.batch"].DynamicInheritanceGetter = DynamicInheritanceGetter
    for name, module in modules.items():
        monkeypatch.setitem(sys.modules, name, module)

    def make(version: str):
        modules["torch_geometric.data.batch"].Batch = Batch if version == "1.7" else BatchV2
        if version == "1.7":
            batch = Batch()
            batch.__dict__.update(x=torch.ones(3), __data_class__=Data)
            return batch
        return BatchV2()

    def forget():
        for name in names:
            monkeypatch.delitem(sys.modules, name)

    return make, forget, marker


@pytest.mark.parametrize("version", ["1.7", "2.x"])
def test_cdvae_ground_truth_batch_is_skipped_without_running_it(tmp_path, fake_torch_geometric, version):
    """eval_recon.pt / eval_diff.pt keep the ground truth as a torch_geometric Batch (input_data_batch): it is
    skipped (nothing of torch_geometric imported or run) and the rest is read."""
    make, forget, marker = fake_torch_geometric
    data, _ = cdvae_recon(E=1, K=3)
    data["input_data_batch"] = make(version)
    torch.save(data, tmp_path / "eval_recon.pt")
    forget()
    opened = read_trajectory_file(tmp_path / "eval_recon.pt")
    assert len(opened.samples) == 3 and opened.samples[0].num_frames == 4    # 3 saved steps, then the sample
    assert not marker.exists() and "torch_geometric" not in sys.modules


# ------------------------------------------------------------------------------ CIFs

def write_cif_frames(folder: Path, names: list[str]) -> list[Structure]:
    """CIFs written with pymatgen, each a frame; frame i's cell is scaled by 1 + 0.01 * (its number)."""
    folder.mkdir(parents=True, exist_ok=True)
    structures = []
    for name in names:
        number = int("".join(c for c in name if c.isdigit()))
        s = rocksalt()
        s.scale_lattice(s.volume * (1 + 0.01 * number) ** 3)
        s.to(filename=str(folder / name))
        structures.append(s)
    return structures


def test_folder_and_zip_of_cifs_in_natural_order(tmp_path):
    names = ["frame_10.cif", "frame_2.cif", "frame_1.cif"]
    written = dict(zip(names, write_cif_frames(tmp_path / "frames", names)))
    order = ["frame_1.cif", "frame_2.cif", "frame_10.cif"]
    expected_lattices = np.stack([written[n].lattice.matrix for n in order])
    opened = read_trajectory_file(tmp_path / "frames")
    assert opened.format == "CIF frames (one sample)" and len(opened.samples) == 1
    sample = opened.samples[0]
    assert np.allclose(sample.lattice[:, 0].numpy(), expected_lattices, atol=1e-4)
    assert (sample.types == torch.tensor(rocksalt().atomic_numbers)).all()
    path = tmp_path / "frames.zip"
    with zipfile.ZipFile(path, "w") as archive:
        for name in names:
            archive.write(tmp_path / "frames" / name, arcname=f"run/{name}")
    zipped = read_trajectory_file(path).samples[0]
    assert torch.allclose(zipped.lattice, sample.lattice) and torch.allclose(zipped.frac_coords, sample.frac_coords)


def test_bad_cifs_are_refused(tmp_path):
    write_cif_frames(tmp_path / "frames", ["f_1.cif", "f_2.cif"])
    (tmp_path / "frames" / "f_3.cif").write_text("data_broken\n_cell_length_a 4.0\n_cell_length_b\nloop_\n_atom_site\n")
    with pytest.raises(TrajectoryFileError, match="f_3.cif is not a CIF pymatgen can read"):
        read_trajectory_file(tmp_path / "frames")
    (tmp_path / "frames" / "f_3.cif").unlink()
    srtio3().to(filename=str(tmp_path / "frames" / "f_3.cif"))
    with pytest.raises(TrajectoryFileError, match="f_3.cif has 5 atoms but f_1.cif has 8"):
        read_trajectory_file(tmp_path / "frames")
    (tmp_path / "empty").mkdir()
    with pytest.raises(TrajectoryFileError, match="holds no .cif files"):
        read_trajectory_file(tmp_path / "empty")


# ------------------------------------------------------------------------------ this app's own export

def test_round_trip_of_the_apps_extxyz():
    lattices, frac, numbers = noisy_frames(srtio3(), 5, seed=7)
    original = trajectory_from_frames(lattices, frac, numbers, timesteps=[400, 300, 200, 100, 0])
    text = original.to_extxyz()
    opened = read_trajectory_bytes(text.encode(), "SrTiO3_perov_5_ddim20_seed0.extxyz")
    assert opened.format == "Crystal Diffusion Explorer trajectory (extxyz)"
    (back,) = opened.samples
    assert back.timesteps.tolist() == [400, 300, 200, 100, 0]
    assert torch.allclose(back.lattice, original.lattice, atol=1e-5)
    diff = (back.frac_coords - original.frac_coords).double()
    assert (diff - diff.round()).abs().max() < 1e-5
    assert torch.equal(back.types, original.types)
    assert torch.allclose(back.min_distance, original.min_distance, atol=1e-4)


# ------------------------------------------------------------------------------ corrupt and truncated files

def valid_files(tmp_path: Path) -> dict[str, bytes]:
    lattices, frac, numbers = noisy_frames(srtio3(), 4)
    text = io.StringIO()
    ase.io.write(text, ase_frames(lattices, frac, numbers), format="extxyz")
    write_mattergen_zip(tmp_path / "z.zip", [mattergen_structures(srtio3(), 4, 0)])
    data, _ = cdvae_recon(E=1, K=3)
    torch.save(data, tmp_path / "r.pt")
    from ase.io.trajectory import Trajectory as AseTrajectory
    with AseTrajectory(str(tmp_path / "t.traj"), "w") as writer:
        for atoms in ase_frames(lattices, frac, numbers):
            writer.write(atoms)
    return {"a.extxyz": text.getvalue().encode(), "generated_trajectories.zip": (tmp_path / "z.zip").read_bytes(),
            "eval_recon.pt": (tmp_path / "r.pt").read_bytes(), "t.traj": (tmp_path / "t.traj").read_bytes()}


def test_truncated_and_corrupt_files_give_one_clear_error(tmp_path):
    for name, data in valid_files(tmp_path).items():
        assert read_trajectory_bytes(data, name).samples                          # the whole file reads
        cut = data[: int(len(data) * 0.6)]
        if name.endswith(".extxyz"):      # 4 frames of 7 lines: keep frame 2's count, comment and one atom line
            lines = data.decode().splitlines()
            cut = "\n".join(lines[: len(lines) // 2 + 3]).encode()
        with pytest.raises(TrajectoryFileError) as err:
            read_trajectory_bytes(cut, name)
        message = str(err.value)
        assert name in message and "\n" not in message, message
    rng = np.random.default_rng(0)
    for name in ("x.pt", "x.zip", "x.extxyz", "x.xyz", "x.traj", "x.cif", "noextension"):
        with pytest.raises(TrajectoryFileError) as err:
            read_trajectory_bytes(rng.bytes(3000), name)
        assert name in str(err.value)
    with pytest.raises(TrajectoryFileError, match="is empty"):
        read_trajectory_bytes(b"", "x.extxyz")
    with pytest.raises(TrajectoryFileError, match="file not found"):
        read_trajectory_file(tmp_path / "missing.extxyz")
    with pytest.raises(TrajectoryFileError, match="not a trajectory format"):
        read_trajectory_bytes(b"hello world\n", "notes.txt")


# ------------------------------------------------------------------------------ the command line

@pytest.fixture
def two_sample_zip(tmp_path) -> Path:
    path = tmp_path / "generated_trajectories.zip"
    write_mattergen_zip(path, [mattergen_structures(rocksalt(), 6, 0), mattergen_structures(srtio3(), 8, 1)])
    return path


def test_inspect_prints_one_line_per_sample(two_sample_zip, capsys):
    from diffusion.cli import main

    assert main(["inspect", str(two_sample_zip)]) == 0
    out, err = capsys.readouterr()
    assert out.splitlines() == ["sample 0: 6 frames, NaCl, space group 225",
                                "sample 1: 8 frames, SrTiO3, space group 221"]
    assert "MatterGen trajectories (zip), 2 samples" in err
    assert main(["inspect", str(two_sample_zip), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["format"] == "MatterGen trajectories (zip)"
    assert report["samples"] == [{"index": 0, "frames": 6, "formula": "NaCl", "space_group": 225},
                                 {"index": 1, "frames": 8, "formula": "SrTiO3", "space_group": 221}]


def test_inspect_and_render_errors_are_one_line(tmp_path, two_sample_zip, capsys):
    from diffusion.cli import main

    (tmp_path / "bad.pt").write_bytes(b"PK\x03\x04 not a zip at all")
    cases = [
        (["inspect", str(tmp_path / "bad.pt")], "bad.pt is not a readable"),
        (["inspect", str(tmp_path / "missing.zip")], "file not found"),
        (["render", "--trajectory-file", str(two_sample_zip), "--sample", "2", "--out", str(tmp_path / "x.png")],
         "--sample must be between 0 and 1"),
        (["render", "--trajectory-file", str(two_sample_zip), "--composition", "NaCl",
          "--out", str(tmp_path / "x.png")],
         "--composition is for sampling a model"),
        (["render", "--out", str(tmp_path / "x.png")], "--checkpoint"),
        (["render", "--checkpoint", "x", "--sample", "1", "--out", str(tmp_path / "x.png")], "--trajectory-file"),
    ]
    for args, fragment in cases:
        assert main(args) == 2, args
        out, err = capsys.readouterr()
        lines = [line for line in err.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0], (args, err)
    assert not (tmp_path / "x.png").exists()


def test_render_draws_a_sample_of_a_file(two_sample_zip, tmp_path):
    """The real console command (a subprocess): ``render --trajectory-file ... --sample 1`` writes a PNG strip."""
    from test_cli import cli

    png = tmp_path / "x.png"
    r = cli("render", "--trajectory-file", str(two_sample_zip), "--sample", "1", "--frames", "3", "--size", "160",
            "--out", str(png))
    assert r.returncode == 0, r.stderr
    assert "sample 1 of MatterGen trajectories (zip); 3 frames: t = 7, 3, 0" in r.stdout
    image = Image.open(png)
    assert image.format == "PNG" and image.size == (3 * 160, 160)
