"""Extended XYZ, plain XYZ and ASE .traj files (ASE's readers), and MatterGen's extxyz specifics: its
generated_crystals.extxyz (one crystal per frame) and gen_<i>.extxyz trajectories."""
from __future__ import annotations

import io
import re
import warnings
from pathlib import Path

import numpy as np

from ..tolerances import MIN_VOLUME
from . import base
from .base import OpenedTrajectories, TrajectoryFileError, _first_line, _Frames, _opened, _sample


def _read_ase(data: bytes, name: str, fmt: str) -> list:
    """All frames of an extended XYZ (fmt 'extxyz') or ASE trajectory (fmt 'traj') as ase Atoms."""
    import ase.io

    try:
        if fmt == "traj":
            if not data.startswith(b"- of Ulm"):
                raise TrajectoryFileError(f"{name} is not an ASE trajectory (.traj files start with '- of Ulm'; "
                                          "old pickle-based .traj files are not read)")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                frames = ase.io.read(io.BytesIO(data), index=":", format="traj")
        else:
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError:
                raise TrajectoryFileError(f"{name} is not a text file; an extended XYZ file is text") from None
            expected = _xyz_frame_count(text, name)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                frames = ase.io.read(io.StringIO(text), index=":", format="extxyz")
            if len(frames) != expected:
                raise TrajectoryFileError(f"{name}: {expected} frames written but {len(frames)} readable; a frame is "
                                          "malformed (truncated or corrupt?)")
    except TrajectoryFileError:
        raise
    except Exception as exc:
        what = "ASE trajectory" if fmt == "traj" else "extended XYZ file"
        raise TrajectoryFileError(f"{name} is not a readable {what} (truncated or corrupt?): "
                                  f"{_first_line(exc)}") from None
    if not frames:
        raise TrajectoryFileError(f"{name} holds no frames")
    return list(frames)


def _xyz_frame_count(text: str, name: str) -> int:
    """Frames of an (extended) XYZ text, each an atom count, a comment line and that many atom lines; a frame cut
    short is an error (ASE's reader silently drops it)."""
    lines = text.splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    count, i = 0, 0
    while i < len(lines):
        head = lines[i].strip()
        if not head.isdigit():
            raise TrajectoryFileError(f"{name}: line {i + 1} should give frame {count}'s number of atoms, "
                                      f"found '{head[:40]}' (an XYZ frame starts with its atom count)")
        n = int(head)
        if n > base.MAX_ATOMS:
            raise TrajectoryFileError(f"{name}: frame {count} has {n} atoms, more than MAX_ATOMS = {base.MAX_ATOMS}")
        if i + 2 + n > len(lines):
            raise TrajectoryFileError(f"{name}: frame {count} is cut short ({n} atom lines announced, "
                                      f"{max(0, len(lines) - i - 2)} found); the file is truncated")
        last = lines[i + 1 + n].split()
        if len(last) < 4:
            raise TrajectoryFileError(f"{name}: line {i + 2 + n} (frame {count}'s last atom) is incomplete")
        i += 2 + n
        count += 1
    if count == 0:
        raise TrajectoryFileError(f"{name} holds no frames")
    return count


def _atoms_arrays(atoms, name: str, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(lattice (3, 3), frac (n, 3), numbers (n,)) of one ase Atoms frame; a frame without a cell is an error."""
    n = len(atoms)
    if n == 0:
        raise TrajectoryFileError(f"{name}: frame {k} has no atoms")
    if n > base.MAX_ATOMS:
        raise TrajectoryFileError(f"{name}: frame {k} has {n} atoms, more than MAX_ATOMS = {base.MAX_ATOMS}")
    cell = np.asarray(atoms.cell.array, dtype=np.float64)
    if atoms.cell.rank < 3 or abs(np.linalg.det(cell)) < MIN_VOLUME:
        raise TrajectoryFileError(
            f"{name}: frame {k} has no lattice (a plain XYZ file describes a molecule); a crystal's extended XYZ "
            'names its cell in the comment line, e.g. Lattice="a1 a2 a3 b1 b2 b3 c1 c2 c3" pbc="T T T"')
    positions = np.asarray(atoms.positions, dtype=np.float64)
    if not np.isfinite(positions).all() or not np.isfinite(cell).all():
        raise TrajectoryFileError(f"{name}: frame {k} has NaN or infinite positions or lattice")
    frac = np.linalg.solve(cell.T, positions.T).T
    return cell, frac, np.asarray(atoms.numbers, dtype=np.int64)


def _stack_frames(atoms_list, name: str, timesteps: np.ndarray | None = None) -> _Frames:
    """ase Atoms frames of one sample -> _Frames; every frame must have the same number of atoms."""
    n0 = len(atoms_list[0])
    for k, atoms in enumerate(atoms_list):
        if len(atoms) != n0:
            raise TrajectoryFileError(
                f"{name}: frame {k} has {len(atoms)} atoms but frame 0 has {n0}; a trajectory keeps its atoms. "
                "Files of separate crystals, one per frame, are opened as MatterGen's generated_crystals.extxyz "
                "(name the file so)")
    parts = [_atoms_arrays(atoms, name, k) for k, atoms in enumerate(atoms_list)]
    return _Frames(np.stack([p[0] for p in parts]), np.stack([p[1] for p in parts]), np.stack([p[2] for p in parts]),
                   timesteps)


def _recorded_steps(atoms_list) -> np.ndarray | None:
    """The ``step=`` of every frame (this app's export), when each frame has one and they count down."""
    steps = [a.info.get("step") for a in atoms_list]
    if not all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) for s in steps):
        return None
    steps = np.asarray(steps, dtype=np.int64)
    if (steps < 0).any() or (np.diff(steps) >= 0).any():
        return None
    return steps


def _is_separate_crystals(name: str) -> bool:
    """MatterGen's generated_crystals.extxyz / generated_crystals_cif.zip hold one crystal per frame / file."""
    return "generated_crystals" in Path(name).name.lower()


def _read_xyz_like(data: bytes, name: str, fmt: str) -> OpenedTrajectories:
    frames = _read_ase(data, name, fmt)
    if fmt == "extxyz" and _is_separate_crystals(name):
        kept = frames[:base.MAX_SAMPLES]
        samples = []
        for i, atoms in enumerate(kept):
            lattice, frac, numbers = _atoms_arrays(atoms, name, i)
            samples.append(_sample(_Frames(lattice[None], frac[None], numbers[None]), f"{name}, crystal {i}",
                                   "MatterGen crystals"))
        return _opened("MatterGen crystals (one frame per sample)", samples, [], len(frames), [])
    steps = _recorded_steps(frames) if fmt == "extxyz" else None
    if steps is not None:
        fmt_name = "Crystal Diffusion Explorer trajectory (extxyz)"
    elif fmt == "traj":
        fmt_name = "ASE trajectory"
    elif re.fullmatch(r"gen_\d+\.extxyz", Path(name).name.lower()):
        fmt_name = "MatterGen trajectory (extxyz)"
    else:
        fmt_name = "extended XYZ"
    thinned: list[int] = []
    sample = _sample(_stack_frames(frames, name, steps), name, fmt_name, thinned=thinned)
    return _opened(fmt_name, [sample], [], 1, thinned)
