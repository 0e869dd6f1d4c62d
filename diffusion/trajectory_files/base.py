"""Shared pieces of the trajectory readers: the limits, the error, the result, and building a ``Trajectory``.

The ``MAX_*`` limits live here only: the readers in the sibling modules look them up as ``base.MAX_*`` when they
run, so changing them here (``monkeypatch.setattr(base, "MAX_FRAMES", ...)``) changes every reader.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..corruption import MASK, NUM_TYPE_CLASSES
from ..tolerances import MIN_VOLUME
from ..trajectory import Trajectory

MAX_FILE_BYTES = 50 * 2**20          # a file (or a folder's CIFs together) larger than this is refused
MAX_UNPACKED_BYTES = 2 * MAX_FILE_BYTES   # the members read from one zip, uncompressed, together
MAX_SAMPLES = 256                    # samples kept from one file (the first ones; the rest are counted in a note)
MAX_FRAMES = 2000                    # frames per sample; longer trajectories are thinned evenly (first and last kept)
MAX_ATOMS = 200                      # atoms per frame; a larger cell is refused
MAX_ZIP_MEMBERS = 10_000             # entries in a zip

MATTERGEN_MASK_Z = 101   # MatterGen's absorbing "mask" atom type, written to its files as Md (Z = 101)
MAX_Z = 118


class TrajectoryFileError(ValueError):
    """A trajectory file that cannot be opened; the message says which file, what is wrong, what is expected."""


@dataclass(frozen=True)
class OpenedTrajectories:
    """What one file holds: its format (a readable name), one ``Trajectory`` per sample (B = 1 each, at most
    ``MAX_SAMPLES``), and notes on what was changed or left out while reading (thinned frames, dropped samples)."""

    format: str
    samples: tuple[Trajectory, ...]
    notes: tuple[str, ...] = ()


# ------------------------------------------------------------------------------ building a Trajectory

def _as_array(value, name: str, dtype) -> np.ndarray:
    try:
        return np.ascontiguousarray(value.detach().cpu().numpy() if torch.is_tensor(value) else value, dtype=dtype)
    except (TypeError, ValueError) as exc:
        raise TrajectoryFileError(f"{name} is not an array of numbers ({exc})") from None


_SHIFTS = torch.tensor([[i, j, k] for i in (-1, 0, 1) for j in (-1, 0, 1) for k in (-1, 0, 1)], dtype=torch.float64)


def periodic_min_distances(frac: torch.Tensor, lattices: torch.Tensor) -> torch.Tensor:
    """(K, n, 3) fractional coordinates and (K, 3, 3) lattices -> (K,) shortest periodic distance of each frame.

    The same quantity as ``geometry.min_distances`` (minimum-image differences plus the 27 neighbouring cells;
    an atom's own zero-shift image excluded, so a one-atom cell reports its shortest lattice translation),
    computed densely over the pairs i < j of frames that share their atoms: a file's thousands of frames take a
    fraction of the time of the general edge-list version. Chunks of frames bound the memory.
    """
    K, n, _ = frac.shape
    frac, lattices = frac.double(), lattices.double()
    shifts = _SHIFTS @ lattices                                                  # (K, 27, 3) cartesian shifts
    squared = (shifts ** 2).sum(-1)
    squared[:, 13] = float("inf")                                                # shift 13 is (0, 0, 0)
    best = squared.amin(1)                                                       # an atom and its own images
    i, j = torch.triu_indices(n, n, offset=1)
    if len(i):
        chunk = max(1, int(8_000_000 // (27 * len(i))))
        pairs = []
        for start in range(0, K, chunk):
            f, L = frac[start:start + chunk], lattices[start:start + chunk]
            diff = torch.remainder(f[:, j] - f[:, i] + 0.5, 1.0) - 0.5              # (k, P, 3) minimum image
            cart = (diff @ L).float()                                               # (k, P, 3)
            images = cart[:, :, None, :] + shifts[start:start + chunk, None].float()   # (k, P, 27, 3)
            pairs.append((images * images).sum(-1).flatten(1).amin(1).double())
        best = torch.minimum(best, torch.cat(pairs))
    return best.sqrt().float()


def trajectory_from_frames(lattices, frac_coords, atomic_numbers, timesteps=None, *, sampler: str = "",
                           type_probs: torch.Tensor | None = None) -> Trajectory:
    """One crystal's frames as a ``Trajectory`` with B = 1 (the app draws these).

    Args:
        lattices: (K, 3, 3) lattice per frame in angstrom, rows are the vectors a, b, c.
        frac_coords: (K, n, 3) fractional coordinates (wrapped into [0, 1) here).
        atomic_numbers: (n,) the same atoms in every frame, or (K, n) when the types change per frame
            (CDVAE's ab initio Langevin steps). 0 = undecided (MASK) only together with ``type_probs``.
        timesteps: (K,) strictly decreasing integers >= 0; default K-1, ..., 1, 0 (the frame index counted
            down, so the last frame is t = 0).
        sampler: shown with the trajectory (the readers pass the file's format).
        type_probs: (K, n, 101) what each undecided atom becomes (see ``_decided_types``), or None.
    Returns:
        ``Trajectory`` whose x_0 predictions are the frames themselves, whose model diagnostics
        (lattice_noise_norm, coord_score_norm) are NaN, and whose min_distance (periodic, angstrom) and
        volume (cubic angstrom) are computed per frame.
    Raises:
        TrajectoryFileError: wrong shapes, NaN / inf, a cell of (almost) no volume, impossible atomic numbers,
            more than MAX_FRAMES frames or MAX_ATOMS atoms.
    """
    lattice = _as_array(lattices, "the lattices", np.float64)
    frac = _as_array(frac_coords, "the fractional coordinates", np.float64)
    if lattice.ndim != 3 or lattice.shape[1:] != (3, 3) or lattice.shape[0] < 1:
        raise TrajectoryFileError(f"lattices have shape {lattice.shape}; (frames, 3, 3) expected")
    K = lattice.shape[0]
    if frac.ndim != 3 or frac.shape[0] != K or frac.shape[2] != 3 or frac.shape[1] < 1:
        raise TrajectoryFileError(f"fractional coordinates have shape {frac.shape}; ({K}, atoms, 3) expected "
                                  f"for {K} frame(s)")
    n = frac.shape[1]
    if K > MAX_FRAMES:
        raise TrajectoryFileError(f"{K} frames, more than MAX_FRAMES = {MAX_FRAMES}")
    if n > MAX_ATOMS:
        raise TrajectoryFileError(f"{n} atoms in a cell, more than MAX_ATOMS = {MAX_ATOMS}")
    for what, values in (("lattice", lattice), ("fractional coordinates", frac)):
        bad = ~np.isfinite(values).reshape(K, -1).all(axis=1)
        if bad.any():
            raise TrajectoryFileError(f"frame {int(np.argmax(bad))} has NaN or infinite {what}")
    volume = np.abs(np.linalg.det(lattice))
    if (volume < MIN_VOLUME).any():
        k = int(np.argmax(volume < MIN_VOLUME))
        raise TrajectoryFileError(f"frame {k}'s lattice has a volume of {volume[k]:.3g} cubic angstrom; a crystal's "
                                  f"cell needs at least {MIN_VOLUME}")
    numbers = _as_array(atomic_numbers, "the atomic numbers", np.float64)
    if numbers.ndim == 1:
        numbers = np.broadcast_to(numbers, (K, numbers.shape[0]))
    if numbers.shape != (K, n):
        raise TrajectoryFileError(f"atomic numbers have shape {numbers.shape}; ({n},) or ({K}, {n}) expected")
    if not np.isfinite(numbers).all() or (numbers != np.round(numbers)).any():
        raise TrajectoryFileError("atomic numbers must be whole numbers")
    lowest = 0 if type_probs is not None else 1
    if numbers.min() < lowest or numbers.max() > MAX_Z:
        raise TrajectoryFileError(f"atomic number {int(numbers.min() if numbers.min() < lowest else numbers.max())} "
                                  f"is not an element (1-{MAX_Z} expected)")
    if timesteps is None:
        steps = np.arange(K - 1, -1, -1)
    else:
        steps = _as_array(timesteps, "the timesteps", np.float64)
        if steps.shape != (K,) or not np.isfinite(steps).all() or (steps != np.round(steps)).any():
            raise TrajectoryFileError(f"timesteps must be {K} whole numbers, one per frame")
        if (steps < 0).any() or (np.diff(steps) >= 0).any():
            raise TrajectoryFileError("timesteps must count down (strictly decreasing) to 0 or more")
    if type_probs is not None and tuple(type_probs.shape) != (K, n, NUM_TYPE_CLASSES):
        raise TrajectoryFileError(f"type probabilities have shape {tuple(type_probs.shape)}; "
                                  f"({K}, {n}, {NUM_TYPE_CLASSES}) expected")

    frac_t = torch.from_numpy(np.mod(frac, 1.0))
    lattice_t = torch.from_numpy(lattice)
    lattice32, frac32 = lattice_t.float().unsqueeze(1), frac_t.float()
    frac32[frac32 >= 1.0] = 0.0      # 1 - 1e-9 rounds to 1.0 in float32 (and np.mod(-1e-17, 1.0) == 1.0)
    nan = torch.full((K, 1), float("nan"))
    return Trajectory(
        timesteps=torch.from_numpy(steps.astype(np.int64)),
        num_atoms=torch.tensor([n], dtype=torch.long),
        lattice=lattice32,
        frac_coords=frac32,
        types=torch.from_numpy(numbers.astype(np.int64)),
        type_probs=type_probs,
        pred_lattice=lattice32.clone(),
        pred_frac_coords=frac32.clone(),
        lattice_noise_norm=nan,
        coord_score_norm=nan.clone(),
        min_distance=periodic_min_distances(frac_t, lattice_t).unsqueeze(1),
        volume=torch.from_numpy(volume).float().unsqueeze(1),
        sampler=sampler,
    )


# ------------------------------------------------------------------------------ frames -> samples

@dataclass
class _Frames:
    """One sample as read, before checks: lattices (K, 3, 3), frac (K, n, 3), numbers (K, n), timesteps or None."""

    lattices: np.ndarray
    frac: np.ndarray
    numbers: np.ndarray
    timesteps: np.ndarray | None = None


def _thin(count: int) -> np.ndarray:
    """Indices of at most MAX_FRAMES frames evenly spaced over ``count``, first and last included."""
    if count <= MAX_FRAMES:
        return np.arange(count)
    return np.unique(np.round(np.linspace(0, count - 1, MAX_FRAMES)).astype(int))


def _decided_types(numbers: np.ndarray) -> tuple[np.ndarray, torch.Tensor | None]:
    """MatterGen's undecided atoms (Md, Z = 101, in the frames before their type is drawn) as MASK.

    (K, n) atomic numbers -> (K, n) types with MASK where the atom is still undecided, and (K, n, 101) type
    "probabilities": one-hot at the element each atom ends up as in the last frame (the file holds no
    probabilities; an expanded view, no K x n x 101 copy). An atom still undecided in the last frame keeps
    Z = 101 (Md) in every frame. Returns (numbers, None) when no atom is undecided and later decided.
    """
    undecided = numbers == MATTERGEN_MASK_Z
    if not undecided.any():
        return numbers, None
    final = numbers[-1]
    becomes = (final >= 1) & (final < NUM_TYPE_CLASSES)      # (n,) decided by the last frame, as a type class
    types = np.where(undecided & becomes[None, :], MASK, numbers)
    if not (types == MASK).any():
        return numbers, None
    onehot = torch.zeros(1, numbers.shape[1], NUM_TYPE_CLASSES)
    for i in np.flatnonzero(becomes):
        onehot[0, i, int(final[i])] = 1.0
    return types, onehot.expand(numbers.shape[0], -1, -1)


def _check_same_atoms(frames: _Frames, allow_changing_types: bool) -> None:
    """A trajectory keeps its atoms: each atom has one element in every frame. MatterGen's undecided atoms (Md)
    may turn into an element; with ``allow_changing_types`` (CDVAE's ab initio steps) any type may change."""
    if allow_changing_types:
        return
    numbers = frames.numbers
    decided = numbers != MATTERGEN_MASK_Z
    lowest = np.where(decided, numbers, np.iinfo(np.int64).max).min(0)
    highest = np.where(decided, numbers, -1).max(0)
    changes = decided.any(0) & (lowest != highest)
    if changes.any():
        i = int(np.argmax(changes))
        column = numbers[:, i]
        k0 = int(np.argmax(decided[:, i]))
        k = int(np.argmax(decided[:, i] & (column != column[k0])))
        raise TrajectoryFileError(f"atom {i} is Z = {int(column[k0])} in frame {k0} but Z = {int(column[k])} in "
                                  f"frame {k}; a trajectory keeps its atoms (same elements, same order)")


def _sample(frames: _Frames, where: str, sampler: str, allow_changing_types: bool = False,
            thinned: list | None = None) -> Trajectory:
    """Check one sample's frames, thin them to MAX_FRAMES, and build its Trajectory; errors name ``where``."""
    try:
        K = frames.numbers.shape[0]
        if frames.lattices.shape[0] != K or frames.frac.shape[0] != K:
            raise TrajectoryFileError("the frames' lattices, coordinates and atoms do not line up")
        _check_same_atoms(frames, allow_changing_types)
        keep = _thin(K)
        steps = frames.timesteps
        if len(keep) < K:
            if thinned is not None:
                thinned.append(K)
            steps = (K - 1 - keep) if steps is None else steps[keep]
        numbers, type_probs = _decided_types(frames.numbers[keep])
        return trajectory_from_frames(frames.lattices[keep], frames.frac[keep], numbers, steps, sampler=sampler,
                                      type_probs=type_probs)
    except TrajectoryFileError as exc:
        raise TrajectoryFileError(f"{where}: {exc}") from None


def _opened(fmt: str, samples: list[Trajectory], notes: list[str], total: int,
            thinned: list[int]) -> OpenedTrajectories:
    """The OpenedTrajectories of a file, with notes on what was cut and on MatterGen's undecided atoms."""
    undecided = sum(s.type_probs is not None for s in samples)
    if undecided:
        notes.append(f"{undecided} sample(s) have atoms whose element is not drawn yet in the early frames (MatterGen "
                     "writes them as Md, Z = 101): they are shown as undecided, and as the element they end up as")
    left = sum(bool((s.types[-1] == MATTERGEN_MASK_Z).any()) for s in samples)
    if left:
        notes.append(f"{left} sample(s) still have undecided atoms (Md, Z = 101) in their last frame; "
                     "they are kept as Md")
    if total > len(samples):
        notes.insert(0, f"{len(samples)} of {total} samples kept: MAX_SAMPLES = {MAX_SAMPLES}")
    if thinned:
        notes.append(f"{len(thinned)} sample(s) had more than MAX_FRAMES = {MAX_FRAMES} frames (up to "
                     f"{max(thinned)}); their frames were thinned evenly to {MAX_FRAMES}, first and last kept")
    return OpenedTrajectories(format=fmt, samples=tuple(samples), notes=tuple(notes))


# ------------------------------------------------------------------------------ messages

def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0][:160] if text else type(exc).__name__)
