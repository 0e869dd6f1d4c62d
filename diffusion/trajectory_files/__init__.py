"""Open trajectories written by other crystal generative models as ``Trajectory`` objects.

Formats (what each holds, who writes it, with links: docs/formats.md):

    MatterGen     generated_trajectories.zip (one extended XYZ per sample, every recorded step) and
                  generated_crystals.extxyz (one frame per sample) / generated_crystals_cif.zip
    CDVAE         eval_recon.pt, eval_gen.pt, eval_opt.pt (torch.save dicts; with --save_traj every
                  Langevin step in all_frac_coords_stack / all_atom_types_stack)
    DiffCSP       eval_diff.pt, eval_gen.pt (final structures only)
    ASE           any multi-frame extended XYZ with a lattice, and ASE .traj files
    CIF           a folder or a zip of CIFs: the frames of one sample, in natural name order
    this app      ``Trajectory.to_extxyz`` (its ``step=`` values become the timesteps again)

Every problem with a file is a ``TrajectoryFileError`` (a ValueError) whose one-line message names the file,
what is wrong and what was expected; nothing a reader raises escapes as another exception. Nothing in a file
runs code: torch files are read with ``torch.load(weights_only=True)``, the rest are parsed as text or arrays.

A sample is one ``Trajectory`` with B = 1 crystal: frames k = 0..K-1 in the file's order (first = noisiest),
timesteps counted down to 0 at the last frame unless the file records them. Sizes are bounded by the
``MAX_*`` constants of ``base``; what was cut is said in ``OpenedTrajectories.notes``.

Modules: ``base`` (limits, errors, building a ``Trajectory`` from frames), ``ase_files`` (extended XYZ, XYZ, .traj),
``archives`` (CIFs, folders and zips), ``torch_files`` (CDVAE / DiffCSP); this module tells the format and dispatches.
The limits are read from ``base`` when a file is read: change them there, not in the names re-exported here.
"""
from __future__ import annotations

import io
import zipfile
from pathlib import Path

from . import base
from .archives import TRAJECTORY_SUFFIXES, _cif_frames, _read_cif_folder, _read_zip, natural_key
from .ase_files import _read_xyz_like
from .base import (MATTERGEN_MASK_Z, MAX_ATOMS, MAX_FILE_BYTES, MAX_FRAMES, MAX_SAMPLES, MAX_UNPACKED_BYTES, MAX_Z,
                   MAX_ZIP_MEMBERS, OpenedTrajectories, TrajectoryFileError, _first_line, periodic_min_distances,
                   trajectory_from_frames)
from .torch_files import _read_torch

__all__ = [
    "MATTERGEN_MASK_Z", "MAX_ATOMS", "MAX_FILE_BYTES", "MAX_FRAMES", "MAX_SAMPLES", "MAX_UNPACKED_BYTES", "MAX_Z",
    "MAX_ZIP_MEMBERS", "SUPPORTED", "TORCH_SUFFIXES", "TRAJECTORY_SUFFIXES", "OpenedTrajectories",
    "TrajectoryFileError", "natural_key", "periodic_min_distances", "read_trajectory_bytes", "read_trajectory_file",
    "trajectory_from_frames",
]

TORCH_SUFFIXES = (".pt", ".pth")
SUPPORTED = ("MatterGen generated_trajectories.zip / generated_crystals.extxyz, CDVAE or DiffCSP eval_*.pt, "
             "an extended XYZ or ASE .traj with a lattice, a zip or folder of CIFs, or this app's .extxyz")


# ------------------------------------------------------------------------------ entry points

def _kind(data: bytes, name: str) -> str:
    """'torch', 'zip', 'traj', 'cif' or 'extxyz' from the name and the first bytes."""
    lower = Path(name).name.lower()
    if data.startswith(b"PK\x03\x04") or data.startswith(b"PK\x05\x06"):
        if lower.endswith(TORCH_SUFFIXES):
            return "torch"
        try:
            names = zipfile.ZipFile(io.BytesIO(data)).namelist()
        except Exception:
            return "zip"          # reported by the zip reader
        return "torch" if any(n.endswith("/data.pkl") or n == "data.pkl" for n in names) else "zip"
    if lower.endswith(TORCH_SUFFIXES):
        return "torch"
    if lower.endswith(".zip"):
        return "zip"
    if lower.endswith(".traj") or data.startswith(b"- of Ulm"):
        return "traj"
    if lower.endswith(".cif"):
        return "cif"
    if lower.endswith((".extxyz", ".xyz")):
        return "extxyz"
    if data[:1] == b"\x80":            # a pickle: torch's legacy (non-zip) format
        return "torch"
    head = data[:4096].decode("utf-8", errors="replace")
    first = head.strip().splitlines()[0].strip() if head.strip() else ""
    if first.isdigit():
        return "extxyz"
    if "_cell_length_a" in head or head.lstrip().startswith("data_"):
        return "cif"
    raise TrajectoryFileError(f"{name}: not a trajectory format this app reads; expected {SUPPORTED}")


def read_trajectory_bytes(data: bytes, name: str) -> OpenedTrajectories:
    """Open a trajectory file given as bytes (an upload); ``name`` (its file name) helps tell the format.

    Raises TrajectoryFileError for every problem (too large, unknown format, corrupt, inconsistent frames).
    """
    name = Path(str(name) or "upload").name or "upload"
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TrajectoryFileError(f"{name}: bytes expected, got {type(data).__name__}")
    data = bytes(data)
    if len(data) > base.MAX_FILE_BYTES:
        raise TrajectoryFileError(f"{name} is {len(data) / 2**20:.1f} MB, more than MAX_FILE_BYTES = "
                                  f"{base.MAX_FILE_BYTES // 2**20} MB")
    if not data:
        raise TrajectoryFileError(f"{name} is empty")
    kind = _kind(data, name)
    try:
        if kind == "torch":
            return _read_torch(data, name)
        if kind == "zip":
            return _read_zip(data, name)
        if kind == "cif":
            return _cif_frames([(name, data)], name, False)
        return _read_xyz_like(data, name, "traj" if kind == "traj" else "extxyz")
    except TrajectoryFileError:
        raise
    except MemoryError:
        raise TrajectoryFileError(f"{name} needs more memory than this machine has to open") from None
    except Exception as exc:  # a reader's unexpected failure still ends as one clear line
        raise TrajectoryFileError(f"{name} could not be read ({type(exc).__name__}: {_first_line(exc)})") from None


def read_trajectory_file(path, name: str | None = None) -> OpenedTrajectories:
    """Open a trajectory file, or a folder of CIFs (frames in natural name order), from disk.

    ``name`` (default: the path's own name) is the file name used to tell the format and in messages.
    """
    path = Path(path)
    label = name or path.name
    try:
        if path.is_dir():
            return _read_cif_folder(path)
        if not path.is_file():
            raise TrajectoryFileError(f"{label}: file not found")
        size = path.stat().st_size
        if size > base.MAX_FILE_BYTES:
            raise TrajectoryFileError(f"{label} is {size / 2**20:.1f} MB, more than MAX_FILE_BYTES = "
                                      f"{base.MAX_FILE_BYTES // 2**20} MB")
        data = path.read_bytes()
    except OSError as exc:
        raise TrajectoryFileError(f"{label}: cannot read it ({_first_line(exc)})") from None
    return read_trajectory_bytes(data, label)
