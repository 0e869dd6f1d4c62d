"""CDVAE and DiffCSP evaluation files (torch.save dicts), read with ``torch.load(weights_only=True)`` and a small
explicit allowlist: nothing in a file is imported or run."""
from __future__ import annotations

import io
import re
import threading
import warnings
from pathlib import Path

import numpy as np
import torch

from . import base
from .base import OpenedTrajectories, TrajectoryFileError, _first_line, _Frames, _opened, _sample


# ------------------------------------------------------------------------------ CDVAE / DiffCSP torch files

class _Skipped:
    """Stands in for a torch_geometric object of a CDVAE / DiffCSP file (``input_data_batch``, the ground truth
    of eval_recon.pt / eval_diff.pt): nothing of it is imported or run, its state is dropped."""

    def __new__(cls, *args, **kwargs):
        return object.__new__(cls)

    def __init__(self, *args, **kwargs):
        pass

    def __setstate__(self, state):
        pass

    def __repr__(self) -> str:
        return "<torch_geometric object, not read>"


class _SkippedGetter:
    """Stands in for torch_geometric 2.x's ``DynamicInheritanceGetter``: a Batch is pickled as
    ``DynamicInheritanceGetter()(Batch, Data)``; here that call makes a ``_Skipped``."""

    def __new__(cls, *args, **kwargs):
        return _Skipped


def _plain_dict(*args, **kwargs) -> dict:
    """Stands in for ``collections.defaultdict`` (inside torch_geometric 2.x batches); an empty plain dict."""
    return {}


def _allowed_globals(data: bytes) -> list:
    """The explicit allowlist for ``torch.load(weights_only=True)`` of an evaluation file.

    * ``argparse.Namespace``: the ``eval_setting`` entry (the script's parsed arguments) of every CDVAE and
      DiffCSP file. Unpickling one only makes an empty Namespace and sets its attributes (no code runs).
    * names under ``torch_geometric.`` (the ``input_data_batch`` entry) map to the inert ``_Skipped``, and
      ``collections.defaultdict`` / ``builtins.dict`` (inside such a batch) to plain dicts: nothing of
      torch_geometric is imported or called. The names are listed from the file without unpickling it.
    """
    import argparse

    allowed: list = [argparse.Namespace, (_plain_dict, "collections.defaultdict"), (dict, "builtins.dict")]
    try:
        names = torch.serialization.get_unsafe_globals_in_checkpoint(io.BytesIO(data))
    except Exception:
        names = []    # an old (non-zip) file or a torch without the function: torch_geometric objects then fail
    for full in names:
        if full.startswith("torch_geometric."):
            allowed.append((_SkippedGetter if full.endswith(".DynamicInheritanceGetter") else _Skipped, full))
    return allowed


_ALLOWLIST_LOCK = threading.Lock()   # safe_globals changes torch's process-wide allowlist while it is entered


def _torch_load(data: bytes, name: str) -> dict:
    """The dict of a torch.save file, read with weights_only=True and the small allowlist above; nothing runs."""
    try:
        with _ALLOWLIST_LOCK, torch.serialization.safe_globals(_allowed_globals(data)):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                loaded = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:
        text = str(exc)
        found = re.search(r"GLOBAL ([\w.]+)", text) or re.search(r"unrecognized function ([^\s]+)", text)
        if found:
            raise TrajectoryFileError(
                f"{name} needs the Python class or function {found.group(1)}, which is not allowed: only tensors, "
                "numbers, strings and the evaluation scripts' settings are read from a torch file") from None
        if "weights_only" in text or "Weights only" in text:
            detail = next((line.strip() for line in text.splitlines() if "Unsupported" in line or "Can only" in line),
                          "")
            raise TrajectoryFileError(f"{name} holds pickled Python objects that are not allowed in a torch file of "
                                      f"tensors ({detail[:120] or 'not plain data'})") from None
        raise TrajectoryFileError(f"{name} is not a readable torch file (truncated or corrupt?): "
                                  f"{_first_line(exc)}") from None
    if not isinstance(loaded, dict):
        raise TrajectoryFileError(f"{name} holds a {type(loaded).__name__}; a dict with frac_coords, atom_types, "
                                  "num_atoms, lengths and angles (CDVAE / DiffCSP evaluation output) expected")
    return loaded


def _tensor(data: dict, key: str, name: str, dims: tuple[int, ...]) -> torch.Tensor:
    value = data.get(key)
    if not torch.is_tensor(value):
        raise TrajectoryFileError(f"{name}: '{key}' is {type(value).__name__}, a tensor expected")
    if value.dim() not in dims:
        raise TrajectoryFileError(f"{name}: '{key}' has shape {tuple(value.shape)}; "
                                  f"{' or '.join(str(d) for d in dims)} dimensions expected")
    if value.is_complex() or value.dtype == torch.bool:
        raise TrajectoryFileError(f"{name}: '{key}' has dtype {value.dtype}; numbers expected")
    return value


def _evaluation_format(data: dict, name: str, batched: bool) -> str:
    stem = Path(name).name.lower()
    if "lattices" in data or stem.startswith("eval_diff") or (stem.startswith("eval_gen") and not batched):
        model = "DiffCSP"
    elif "all_frac_coords_stack" in data or stem.startswith(("eval_recon", "eval_opt", "eval_gen")):
        model = "CDVAE"
    else:
        model = "CDVAE / DiffCSP"
    task = next((t for t in ("recon", "gen", "opt", "diff") if stem.startswith(f"eval_{t}")), None)
    return f"{model} eval_{task}.pt" if task else f"{model} evaluation file"


def _read_torch(data: bytes, name: str) -> OpenedTrajectories:
    """CDVAE / DiffCSP evaluation output (scripts/evaluate.py, scripts/generation.py of either project).

    Keys and shapes (E evaluation runs, B crystals, N atoms of all B together, K recorded steps):
        frac_coords (E, N, 3), atom_types (E, N) atomic numbers, num_atoms (E, B),
        lengths (E, B, 3) angstrom and angles (E, B, 3) degrees, or lattices (E, B, 3, 3) (DiffCSP eval_diff);
        with CDVAE's --save_traj: all_frac_coords_stack (E, K, N, 3), all_atom_types_stack (E, K, N).
    DiffCSP's eval_gen.pt has no leading E dimension. Sample i is run i // B, crystal i % B.
    """
    loaded = _torch_load(data, name)
    missing = [k for k in ("frac_coords", "atom_types", "num_atoms") if k not in loaded]
    if "lattices" not in loaded:
        missing += [k for k in ("lengths", "angles") if k not in loaded]
    if missing:
        raise TrajectoryFileError(f"{name} has no {', '.join(repr(k) for k in missing)}; a CDVAE / DiffCSP "
                                  "evaluation file has frac_coords, atom_types, num_atoms, lengths and angles")
    num_atoms = _tensor(loaded, "num_atoms", name, (1, 2))
    batched = num_atoms.dim() == 2
    lead = (lambda t: t) if batched else (lambda t: t.unsqueeze(0))
    num_atoms = lead(num_atoms).long()
    frac = lead(_tensor(loaded, "frac_coords", name, (3,) if batched else (2,))).double()
    types = lead(_tensor(loaded, "atom_types", name, (2,) if batched else (1,)))
    if "lattices" in loaded:
        lattices = lead(_tensor(loaded, "lattices", name, (4,) if batched else (3,))).double()
    else:
        lengths = lead(_tensor(loaded, "lengths", name, (3,) if batched else (2,))).double()
        angles = lead(_tensor(loaded, "angles", name, (3,) if batched else (2,))).double()
        if lengths.shape != angles.shape or lengths.shape[-1] != 3:
            raise TrajectoryFileError(f"{name}: lengths {tuple(lengths.shape)} and angles {tuple(angles.shape)} "
                                      "must both be (runs, crystals, 3)")
        lattices = _lattices_from_parameters(lengths, angles)
    E, B = num_atoms.shape
    N = frac.shape[1]
    if frac.shape != (E, N, 3) or types.shape != (E, N) or lattices.shape != (E, B, 3, 3):
        raise TrajectoryFileError(
            f"{name}: shapes do not fit together (frac_coords {tuple(frac.shape)}, atom_types {tuple(types.shape)}, "
            f"num_atoms {tuple(num_atoms.shape)}, lattices {tuple(lattices.shape)}); expected ({E}, N, 3), ({E}, N), "
            f"({E}, {B}), ({E}, {B}, 3, 3)")
    if (num_atoms < 1).any() or (num_atoms.sum(1) != N).any():
        raise TrajectoryFileError(f"{name}: num_atoms does not add up to the {N} atoms of frac_coords")
    stack, type_stack = loaded.get("all_frac_coords_stack"), loaded.get("all_atom_types_stack")
    has_traj = torch.is_tensor(stack) and stack.numel() > 0
    if has_traj:
        stack = _tensor(loaded, "all_frac_coords_stack", name, (4,)).double()
        type_stack = _tensor(loaded, "all_atom_types_stack", name, (3,))
        K = stack.shape[1]
        if stack.shape != (E, K, N, 3) or type_stack.shape != (E, K, N):
            raise TrajectoryFileError(
                f"{name}: all_frac_coords_stack {tuple(stack.shape)} and all_atom_types_stack "
                f"{tuple(type_stack.shape)} do not fit frac_coords {tuple(frac.shape)}; ({E}, steps, {N}, 3) and "
                f"({E}, steps, {N}) expected")
    fmt = _evaluation_format(loaded, name, batched)
    total = E * B
    starts = torch.cumsum(num_atoms, 1) - num_atoms
    samples, thinned = [], []
    for index in range(min(total, base.MAX_SAMPLES)):
        e, b = divmod(index, B)
        n = int(num_atoms[e, b])
        if n > base.MAX_ATOMS:
            raise TrajectoryFileError(f"{name}, sample {index}: {n} atoms, more than MAX_ATOMS = {base.MAX_ATOMS}")
        atoms = slice(int(starts[e, b]), int(starts[e, b]) + n)
        final_frac, final_types = frac[e, atoms].numpy(), types[e, atoms].numpy()
        if has_traj:
            steps_frac = stack[e, :, atoms].numpy()
            steps_types = type_stack[e, :, atoms].numpy()
            # with --down_sample_traj_step the last recorded step may come before the sample: end at the sample
            if not (np.allclose(steps_frac[-1], final_frac) and (steps_types[-1] == final_types).all()):
                steps_frac = np.concatenate([steps_frac, final_frac[None]])
                steps_types = np.concatenate([steps_types, final_types[None]])
        else:
            steps_frac, steps_types = final_frac[None], final_types[None]
        K = steps_frac.shape[0]
        lattice = np.broadcast_to(lattices[e, b].numpy(), (K, 3, 3))
        samples.append(_sample(_Frames(lattice, steps_frac, steps_types.astype(np.float64)), f"{name}, sample {index}",
                               fmt, allow_changing_types=True, thinned=thinned))
    notes = []
    if "eval_opt" in fmt:
        notes.append("crystals decoded while CDVAE optimized a property, in the file's order (each optimization "
                     "step's batch after the other), one frame each")
    elif not has_traj:
        notes.append("final structures only (one frame per sample); CDVAE writes every step with --save_traj")
    if E > 1:
        notes.append(f"{E} evaluation runs of {B} crystals: sample i is run i // {B}, crystal i % {B}")
    return _opened(fmt, samples, notes, total, thinned)


def _lattices_from_parameters(lengths: torch.Tensor, angles: torch.Tensor) -> torch.Tensor:
    """(..., 3) lengths (angstrom) and angles (degrees) -> (..., 3, 3) lattices, rows a, b, c, in pymatgen's
    ``Lattice.from_parameters`` orientation (the one CDVAE and DiffCSP build their structures with)."""
    a, b, c = lengths.unbind(-1)
    alpha, beta, gamma = torch.deg2rad(angles).unbind(-1)
    cos_a, cos_b, cos_g = torch.cos(alpha), torch.cos(beta), torch.cos(gamma)
    sin_a, sin_b = torch.sin(alpha), torch.sin(beta)
    value = ((cos_a * cos_b - cos_g) / (sin_a * sin_b)).clamp(-1.0, 1.0)
    gamma_star = torch.arccos(value)
    zero = torch.zeros_like(a)
    va = torch.stack([a * sin_b, zero, a * cos_b], -1)
    vb = torch.stack([-b * sin_a * torch.cos(gamma_star), b * sin_a * torch.sin(gamma_star), b * cos_a], -1)
    vc = torch.stack([zero, zero, c], -1)
    return torch.stack([va, vb, vc], -2)
