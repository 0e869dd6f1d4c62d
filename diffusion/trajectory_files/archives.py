"""CIFs (one frame each, read with pymatgen), folders of CIFs, and zips of CIFs or trajectory files (MatterGen's
generated_trajectories.zip, generated_crystals_cif.zip): members listed, sized and unpacked within the limits."""
from __future__ import annotations

import io
import re
import warnings
import zipfile
from pathlib import Path

import numpy as np

from . import base
from .ase_files import _is_separate_crystals, _read_ase, _recorded_steps, _stack_frames
from .base import OpenedTrajectories, TrajectoryFileError, _first_line, _Frames, _opened, _sample, _thin

TRAJECTORY_SUFFIXES = (".extxyz", ".xyz", ".traj")


# ------------------------------------------------------------------------------ CIFs

def _cif_structure(data: bytes, name: str):
    """The one ordered structure of a CIF as (lattice (3, 3), frac (n, 3), numbers (n,))."""
    from pymatgen.io.cif import CifParser

    try:
        text = data.decode("utf-8", errors="strict")
    except UnicodeDecodeError:
        raise TrajectoryFileError(f"{name} is not a text file; a CIF is text") from None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            structures = CifParser(io.StringIO(text)).parse_structures(primitive=False)
    except Exception as exc:
        raise TrajectoryFileError(f"{name} is not a CIF pymatgen can read: {_first_line(exc)}") from None
    if not structures:
        raise TrajectoryFileError(f"{name} holds no structure")
    if len(structures) > 1:
        raise TrajectoryFileError(f"{name} holds {len(structures)} structures; one CIF per frame expected")
    structure = structures[0]
    if not structure.is_ordered:
        raise TrajectoryFileError(f"{name} has partially occupied sites; one element per site expected")
    if len(structure) > base.MAX_ATOMS:
        raise TrajectoryFileError(f"{name} has {len(structure)} atoms, more than MAX_ATOMS = {base.MAX_ATOMS}")
    return (np.asarray(structure.lattice.matrix, np.float64), np.asarray(structure.frac_coords, np.float64),
            np.asarray(structure.atomic_numbers, np.int64))


def natural_key(name: str) -> list:
    """Sort key reading digit runs as numbers: frame_2 before frame_10."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


def _cif_frames(named: list[tuple[str, bytes]], source: str, separate: bool) -> OpenedTrajectories:
    """CIFs (name, bytes) in natural name order: the frames of one sample, or one sample each when ``separate``."""
    named = sorted(named, key=lambda item: natural_key(item[0]))
    if separate:
        kept = named[:base.MAX_SAMPLES]
        samples = []
        for i, (member, data) in enumerate(kept):
            lattice, frac, numbers = _cif_structure(data, f"{source}: {member}")
            samples.append(_sample(_Frames(lattice[None], frac[None], numbers[None]), f"{source}: {member}",
                                   "CIF crystals"))
        return _opened("CIF crystals (one frame per sample)", samples, [], len(named), [])
    keep = _thin(len(named))
    parts = [_cif_structure(named[i][1], f"{source}: {named[i][0]}") for i in keep]
    n0 = len(parts[0][2])
    for i, part in zip(keep, parts):
        if len(part[2]) != n0:
            raise TrajectoryFileError(
                f"{source}: {named[i][0]} has {len(part[2])} atoms but {named[keep[0]][0]} has {n0}; the CIFs are "
                "taken as frames of one trajectory, which keeps its atoms")
    steps = (len(named) - 1 - keep) if len(keep) < len(named) else None
    frames = _Frames(np.stack([p[0] for p in parts]), np.stack([p[1] for p in parts]), np.stack([p[2] for p in parts]),
                     steps)
    sample = _sample(frames, source, "CIF frames")
    notes = [f"{len(named)} CIFs are more than MAX_FRAMES = {base.MAX_FRAMES}; {len(keep)} kept, evenly spaced"] \
        if len(keep) < len(named) else []
    return _opened("CIF frames (one sample)", [sample], notes, 1, [])


# ------------------------------------------------------------------------------ zips

def _zip_members(data: bytes, name: str) -> tuple[zipfile.ZipFile, list[zipfile.ZipInfo]]:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        infos = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError, EOFError) as exc:
        raise TrajectoryFileError(f"{name} is not a readable zip file (truncated or corrupt?): {_first_line(exc)}") \
            from None
    if len(infos) > base.MAX_ZIP_MEMBERS:
        raise TrajectoryFileError(f"{name} has {len(infos)} entries, more than {base.MAX_ZIP_MEMBERS}")
    members = [i for i in infos if not i.is_dir() and not i.filename.startswith("__MACOSX/")
               and not Path(i.filename).name.startswith(".")]
    return archive, members


def _read_members(archive: zipfile.ZipFile, members: list[zipfile.ZipInfo], name: str) -> list[tuple[str, bytes]]:
    """The members' bytes, refusing a member or a total beyond the limits before anything is unpacked."""
    total = 0
    for info in members:
        if info.file_size > base.MAX_FILE_BYTES:
            raise TrajectoryFileError(f"{name}: {info.filename} unpacks to {info.file_size / 2**20:.0f} MB, more than "
                                      f"MAX_FILE_BYTES = {base.MAX_FILE_BYTES // 2**20} MB")
        total += info.file_size
    _refuse_over(total, base.MAX_UNPACKED_BYTES, "MAX_UNPACKED_BYTES", f"{name} unpacks to")
    out = []
    for info in members:
        try:
            with archive.open(info) as handle:
                content = handle.read(info.file_size + 1)   # the declared size bounds what zipfile unpacks
        except Exception as exc:
            raise TrajectoryFileError(f"{name}: {info.filename} cannot be unpacked (corrupt or encrypted?): "
                                      f"{_first_line(exc)}") from None
        if len(content) > info.file_size:
            raise TrajectoryFileError(f"{name}: {info.filename} is larger than its zip entry says")
        out.append((info.filename, content))
    return out


def _read_zip(data: bytes, name: str) -> OpenedTrajectories:
    archive, members = _zip_members(data, name)
    trajectories = [i for i in members if i.filename.lower().endswith(TRAJECTORY_SUFFIXES)]
    cifs = [i for i in members if i.filename.lower().endswith(".cif")]
    if trajectories and cifs:
        raise TrajectoryFileError(f"{name} mixes trajectory files (.extxyz, .xyz, .traj) and CIFs; one kind expected")
    if cifs:
        return _cif_frames(_read_members(archive, cifs, name), name, _is_separate_crystals(name))
    if not trajectories:
        raise TrajectoryFileError(f"{name} holds no .extxyz, .xyz, .traj or .cif files")
    trajectories.sort(key=lambda i: natural_key(i.filename))
    kept = trajectories[:base.MAX_SAMPLES]
    fmt_name = "MatterGen trajectories (zip)" if _mattergen_zip(kept) else "zip of trajectories"
    samples, thinned = [], []
    for member, content in _read_members(archive, kept, name):
        where = f"{name}: {member}"
        frames = _read_ase(content, where, "traj" if member.lower().endswith(".traj") else "extxyz")
        samples.append(_sample(_stack_frames(frames, where, _recorded_steps(frames)), where, fmt_name,
                               thinned=thinned))
    return _opened(fmt_name, samples, [], len(trajectories), thinned)


def _mattergen_zip(members: list[zipfile.ZipInfo]) -> bool:
    """MatterGen names the members of generated_trajectories.zip gen_0.extxyz, gen_1.extxyz, ..."""
    return all(re.fullmatch(r"gen_\d+\.extxyz", Path(i.filename).name) for i in members)


# ------------------------------------------------------------------------------ folders of CIFs

def _read_cif_folder(folder: Path) -> OpenedTrajectories:
    try:
        files = [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() == ".cif"]
    except OSError as exc:
        raise TrajectoryFileError(f"{folder.name}: cannot list the folder ({_first_line(exc)})") from None
    if not files:
        raise TrajectoryFileError(f"{folder.name} holds no .cif files; a folder is read as CIF frames "
                                  "(other formats are opened as files)")
    files.sort(key=lambda p: natural_key(p.name))
    total = sum(p.stat().st_size for p in files)
    _refuse_over(total, base.MAX_FILE_BYTES, "MAX_FILE_BYTES", f"{folder.name}: its CIFs hold")
    named = []
    for p in files:
        try:
            named.append((p.name, p.read_bytes()))
        except OSError as exc:
            raise TrajectoryFileError(f"{folder.name}: cannot read {p.name} ({_first_line(exc)})") from None
    return _cif_frames(named, folder.name, _is_separate_crystals(folder.name))


def _refuse_over(size: int, limit: int, limit_name: str, what: str) -> None:
    """TrajectoryFileError "<what> N MB, more than LIMIT = M MB" when ``size`` bytes exceed ``limit``."""
    if size > limit:
        raise TrajectoryFileError(f"{what} {size / 2**20:.1f} MB, more than {limit_name} = {limit // 2**20} MB")
