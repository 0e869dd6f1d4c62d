"""Relax generated crystals with the CHGNet universal potential and score how far they moved.

No Streamlit here. CHGNet (Deng et al. 2023, a graph network trained on Materials Project
relaxations) predicts energy, forces and stress in milliseconds, so a generated crystal can
be relaxed to the nearest local minimum of the potential in seconds on a CPU. That gives two
plausibility checks that need no DFT:

* one structure: energy per atom before -> after, the largest force before, how far the
  atoms moved, whether the space group changed (``relax``);
* a batch: the stability proxy, the fraction of samples whose relaxed structure still
  matches the generated one, with the mean RMSD (``relax_batch``; MatterGen reports the
  RMSD between generated and relaxed structures the same way, with DFT instead of CHGNet).

CHGNet is optional: ``load_potential`` raises ``PotentialUnavailable`` (with the pip command)
when it is not installed, and nothing else in ``diffusion`` imports it. The caller loads the
potential once and keeps it (the app caches it with ``st.cache_resource``); there is no hidden
global here.

Definitions used in the results:

* energies are CHGNet's predicted total energy divided by the number of atoms (eV/atom);
* forces are per-atom Cartesian force vectors, the largest norm is reported (eV/Å);
* RMS displacement (Å) is a direct Cartesian RMS on index-matched sites (relaxation keeps the
  site order): the fractional displacement of each site is wrapped to the nearest periodic
  image, the common rigid shift is removed, and the result is expressed in the relaxed cell.
  The change of the cell itself is reported separately as the volume change;
* space groups by spglib through pymatgen's ``SpacegroupAnalyzer`` at symprec 0.1 Å;
* "still matches" uses pymatgen's ``StructureMatcher`` with its default tolerances
  (ltol 0.2, stol 0.3, angle_tol 5: stricter than the CSP matcher) and its normalized RMS,
  i.e. divided by (volume / atoms)^(1/3) as in CDVAE / DiffCSP.
"""
from __future__ import annotations

import contextlib
import io
import math
import threading
import time
import warnings
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
from pymatgen.core import Structure

from .tolerances import SYMPREC

CHGNET_REQUIREMENT = "chgnet==0.4.2"
DEFAULT_MAX_STEPS = 200
HARD_MAX_STEPS = 1000
DEFAULT_FMAX = 0.05          # eV/Å: stop when every force (and the stress term) is below this
MAX_BATCH_RELAX = 32         # the stability proxy relaxes at most this many samples
MATCHER_TOLERANCES = dict(ltol=0.2, stol=0.3, angle_tol=5)   # pymatgen's defaults

# progress(step, max_steps): return False to stop (anything else continues)
Progress = Callable[[int, int], "bool | None"]


class PotentialUnavailable(ImportError):
    """CHGNet cannot be imported; the message says how to install it."""


class RelaxError(RuntimeError):
    """The potential could not relax this structure (e.g. atoms on top of each other)."""


@dataclass(frozen=True)
class Potential:
    """A loaded CHGNet model. Load once with ``load_potential`` and share it (read-only)."""

    model: object        # chgnet.model.CHGNet
    device: str
    version: str
    load_seconds: float  # import + weights, measured


def load_potential(device: str = "cpu") -> Potential:
    """Import CHGNet and load its pretrained weights (shipped inside the wheel, no download).

    Raises ``PotentialUnavailable`` when chgnet is not installed.
    """
    started = time.perf_counter()
    try:
        from chgnet.model import CHGNet
    except ImportError as exc:
        raise PotentialUnavailable(
            f"CHGNet is not installed ({exc}); install it with: pip install {CHGNET_REQUIREMENT}") from exc
    with contextlib.redirect_stdout(io.StringIO()):  # CHGNet prints a banner even with verbose=False
        model = CHGNet.load(verbose=False, use_device=device)
    model.eval()
    return Potential(model, device, str(getattr(model, "version", "") or "?"), time.perf_counter() - started)


def _calculator(potential: Potential):
    """A fresh ASE calculator per relaxation: calculators hold per-call state, the model is shared."""
    from chgnet.model.dynamics import CHGNetCalculator

    with contextlib.redirect_stdout(io.StringIO()):  # "CHGNet will run on cpu"
        return CHGNetCalculator(model=potential.model, use_device=potential.device, on_isolated_atoms="ignore")


def space_group(structure: Structure, symprec: float = SYMPREC) -> tuple[str, int] | None:
    """(symbol, number) found by spglib, or None when the cell is too degenerate to analyse."""
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    try:
        analyzer = SpacegroupAnalyzer(structure, symprec=symprec)
        return str(analyzer.get_space_group_symbol()), int(analyzer.get_space_group_number())
    except Exception:
        return None


def rms_displacement(before: Structure, after: Structure) -> float:
    """RMS distance (Å) between index-matched sites, rigid shift removed, measured in ``after``'s cell."""
    if len(before) != len(after):
        raise ValueError("the structures have different numbers of sites")
    delta = np.asarray(after.frac_coords, float) - np.asarray(before.frac_coords, float)
    delta -= np.round(delta)                       # nearest periodic image
    delta -= delta.mean(axis=0)                    # a common translation changes nothing physically
    delta -= np.round(delta)
    cart = delta @ np.asarray(after.lattice.matrix, float)
    return float(np.sqrt(np.mean(np.sum(cart ** 2, axis=1))))


@dataclass(frozen=True)
class RelaxResult:
    """One relaxation: the structures, CHGNet's numbers before and after, and how it went."""

    initial: Structure
    relaxed: Structure
    energy_before: float               # eV/atom
    energy_after: float                # eV/atom
    max_force_before: float            # eV/Å, largest per-atom force norm
    max_force_after: float             # eV/Å
    rms_displacement: float            # Å (see the module docstring)
    volume_change: float               # V_relaxed / V_initial - 1
    space_group_before: tuple[str, int] | None
    space_group_after: tuple[str, int] | None
    steps: int                         # optimizer steps taken
    max_steps: int
    converged: bool                    # all forces and the stress term below fmax
    cancelled: bool                    # stopped by the caller before converging or reaching the cap
    seconds: float                     # wall time of the relaxation (model loading excluded)
    energies: tuple[float, ...] = ()   # eV/atom at step 0 (initial), 1, ..., steps

    @property
    def space_group_changed(self) -> bool:
        before, after = self.space_group_before, self.space_group_after
        return (before[1] if before else 0) != (after[1] if after else 0)

    @property
    def energy_change(self) -> float:
        return self.energy_after - self.energy_before

    @property
    def stopped_by(self) -> str:
        """Why it ended: 'converged', 'step cap' or 'cancelled'."""
        return "converged" if self.converged else "cancelled" if self.cancelled else "step cap"


def _max_force(forces: np.ndarray) -> float:
    forces = np.asarray(forces, float)
    return float(np.linalg.norm(forces, axis=1).max()) if len(forces) else 0.0


def relax(structure: Structure, potential: Potential, *, max_steps: int = DEFAULT_MAX_STEPS,
          fmax: float = DEFAULT_FMAX, relax_cell: bool = True, progress: Progress | None = None,
          cancel: threading.Event | None = None) -> RelaxResult:
    """Relax atoms (and the cell) to the nearest minimum of CHGNet with ASE's FIRE.

    The cell is relaxed through ASE's ``FrechetCellFilter``, the same set-up as CHGNet's own
    ``StructOptimizer.relax`` (whose calculator is used here); the optimizer is driven step by
    step so that ``progress(step, max_steps)`` is called after every step and can stop the
    run by returning False, as can setting ``cancel``. A stopped run returns the structure
    reached so far with ``cancelled=True``.

    Args:
        structure: the crystal to relax (not modified).
        potential: from ``load_potential``.
        max_steps: optimizer step cap, 1 to ``HARD_MAX_STEPS``.
        fmax: convergence threshold on forces (eV/Å) and the cell's stress term.
        relax_cell: also relax the lattice (otherwise only the positions).
    Raises:
        ValueError for a bad ``max_steps``; ``RelaxError`` when CHGNet fails on the structure
        or predicts non-finite energies (atoms on top of each other).
    """
    from ase.filters import FrechetCellFilter
    from ase.optimize import FIRE
    from pymatgen.io.ase import AseAtomsAdaptor

    if not 1 <= int(max_steps) <= HARD_MAX_STEPS:
        raise ValueError(f"max_steps must be between 1 and {HARD_MAX_STEPS}, not {max_steps}")
    max_steps = int(max_steps)
    started = time.perf_counter()
    initial = structure.copy()
    atoms = AseAtomsAdaptor.get_atoms(initial)
    atoms.calc = _calculator(potential)
    n = len(atoms)
    energies: list[float] = []
    steps, converged, cancelled = 0, False, False
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # CHGNet's tensor-to-scalar UserWarning, every step
            forces_before = atoms.get_forces().copy()
            optimizer = FIRE(FrechetCellFilter(atoms) if relax_cell else atoms, logfile=None)
            for converged in optimizer.irun(fmax=fmax, steps=max_steps):
                steps = int(optimizer.nsteps)
                energy = float(atoms.get_potential_energy()) / n
                if not math.isfinite(energy):
                    raise RelaxError("CHGNet predicted a non-finite energy (are atoms on top of each other?)")
                energies.append(energy)
                if converged:
                    break
                if cancel is not None and cancel.is_set():
                    cancelled = True
                    break
                if progress is not None and progress(steps, max_steps) is False:
                    cancelled = True
                    break
            forces_after = atoms.get_forces().copy()
    except RelaxError:
        raise
    except Exception as exc:  # CHGNet's graph builder or the optimizer gave up on this structure
        raise RelaxError(f"CHGNet could not relax {initial.composition.reduced_formula}: {exc}") from exc
    if cancelled and steps >= max_steps:
        cancelled = False  # the cap was reached on the same step: say so
    relaxed = AseAtomsAdaptor.get_structure(atoms)
    for key in list(relaxed.site_properties):
        relaxed.remove_site_property(key)
    return RelaxResult(
        initial=initial, relaxed=relaxed, energy_before=energies[0], energy_after=energies[-1],
        max_force_before=_max_force(forces_before), max_force_after=_max_force(forces_after),
        rms_displacement=rms_displacement(initial, relaxed), volume_change=relaxed.volume / initial.volume - 1,
        space_group_before=space_group(initial), space_group_after=space_group(relaxed), steps=steps,
        max_steps=max_steps, converged=bool(converged), cancelled=cancelled,
        seconds=time.perf_counter() - started, energies=tuple(energies))


def energies_along(structures: Sequence[Structure], potential: Potential, every: int = 1,
                   batch_size: int = 16) -> list[tuple[int, float]]:
    """CHGNet energy per atom (eV/atom) of every ``every``-th structure, e.g. frames of a trajectory.

    Returns (index, energy) pairs; the last structure is always included. A structure that
    CHGNet cannot handle (e.g. atoms on top of each other) gets NaN rather than an error.
    """
    if every < 1:
        raise ValueError("every must be at least 1")
    indices = list(range(0, len(structures), every))
    if structures and indices[-1] != len(structures) - 1:
        indices.append(len(structures) - 1)
    if not indices:
        return []
    model = potential.model
    values: list[float] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            predictions = model.predict_structure([structures[i] for i in indices], task="e", batch_size=batch_size)
            predictions = predictions if isinstance(predictions, list) else [predictions]
            values = [float(np.asarray(p["e"]).reshape(-1)[0]) for p in predictions]
        except Exception:  # one bad frame spoils a batch: fall back to one at a time
            for i in indices:
                try:
                    values.append(float(np.asarray(model.predict_structure(structures[i], task="e")["e"]).reshape(-1)[0]))
                except Exception:
                    values.append(math.nan)
    return [(i, v if math.isfinite(v) else math.nan) for i, v in zip(indices, values)]


# ---------------------------------------------------------------- the stability proxy of a batch

def _matcher():
    from pymatgen.analysis.structure_matcher import StructureMatcher
    return StructureMatcher(**MATCHER_TOLERANCES)


def still_matches(before: Structure, after: Structure) -> float | None:
    """Normalized RMS of the match between generated and relaxed structure, or None (no longer the same)."""
    try:
        result = _matcher().get_rms_dist(before, after)
    except Exception:
        return None
    return None if result is None else float(result[0])


@dataclass(frozen=True)
class StabilityResult:
    """The stability proxy of a batch: which relaxed samples still match their generated structure."""

    results: tuple[RelaxResult | None, ...]   # None where CHGNet failed on the sample
    errors: tuple[str | None, ...]
    matched: np.ndarray                       # (n,) bool
    match_rms: np.ndarray                     # (n,) normalized RMS of a match, NaN when none
    total: int                                # samples asked for (some may be left out when cancelled)
    cancelled: bool = False
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def relaxed(self) -> int:
        return len(self.results)

    @property
    def fraction_matched(self) -> float:
        return float(np.mean(self.matched)) if len(self.matched) else math.nan

    @property
    def mean_match_rms(self) -> float:
        """Mean normalized RMS over the samples that still match (NaN when none does)."""
        return float(np.nanmean(self.match_rms)) if np.isfinite(self.match_rms).any() else math.nan

    @property
    def mean_displacement(self) -> float:
        """Mean RMS displacement (Å) over the samples CHGNet could relax."""
        values = [r.rms_displacement for r in self.results if r is not None]
        return float(np.mean(values)) if values else math.nan

    @property
    def mean_energy_drop(self) -> float:
        """Mean energy per atom lost on relaxation (eV/atom, >= 0 for a descent)."""
        values = [r.energy_before - r.energy_after for r in self.results if r is not None]
        return float(np.mean(values)) if values else math.nan


def relax_batch(structures: Sequence[Structure], potential: Potential, *, max_samples: int = MAX_BATCH_RELAX,
                max_steps: int = DEFAULT_MAX_STEPS, fmax: float = DEFAULT_FMAX,
                progress: Callable[[int, int, int, int], "bool | None"] | None = None,
                cancel: threading.Event | None = None) -> StabilityResult:
    """Relax the first ``max_samples`` structures one after another and score the stability proxy.

    ``progress(sample, total, step, max_steps)`` is called after every optimizer step (sample
    counts from 0); returning False, or setting ``cancel``, stops after the current sample's
    partial relaxation, which is kept (a stopped sample is scored as it is).
    """
    started = time.perf_counter()
    chosen = list(structures)[: max(0, int(max_samples))]
    total = len(chosen)
    results: list[RelaxResult | None] = []
    errors: list[str | None] = []
    stop = threading.Event()
    for i, structure in enumerate(chosen):
        def step_progress(step: int, cap: int, i: int = i) -> bool | None:
            if progress is not None and progress(i, total, step, cap) is False:
                stop.set()
                return False
            return None

        try:
            result = relax(structure, potential, max_steps=max_steps, fmax=fmax, progress=step_progress,
                           cancel=cancel)
            results.append(result)
            errors.append(None)
        except RelaxError as exc:
            results.append(None)
            errors.append(str(exc))
        if stop.is_set() or (cancel is not None and cancel.is_set()):
            break
    # _or_nan, not `or nan`: a perfect match has RMS 0.0, which is falsy
    rms = np.array([math.nan if r is None else _or_nan(still_matches(r.initial, r.relaxed)) for r in results])
    matched = np.isfinite(rms)
    notes = []
    if len(structures) > total:
        notes.append(f"Only the first {total} of {len(structures)} samples were relaxed.")
    return StabilityResult(tuple(results), tuple(errors), matched, rms, total,
                           cancelled=len(results) < total or any(r is not None and r.cancelled for r in results),
                           seconds=time.perf_counter() - started, notes=notes)


def _or_nan(value: float | None) -> float:
    return math.nan if value is None else float(value)
