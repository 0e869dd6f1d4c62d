"""Where each crystal of a batch starts, and the one function that samples such a batch.

A crystal starts from noise at T, from its retrieved template noised to t0 (SDEdit, ``templates.py``), or
inside its Wyckoff cell (``wyckoff.py``: the frames are projected onto the group at every step, from
noise or from the ideal cell noised to t0). ``build_request`` is the single place a ``SampleRequest`` is
assembled from per-crystal lists (the CLI, ``evaluate`` and the app all call it); ``sample_placed`` splits a
request by start, runs each part once and hands the results back in request order.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Sequence

from .crystal import Crystal
from .crystal_diffusion import CrystalDiffusion
from .samplers.config import PER_CRYSTAL_FIELDS
from .sampling import ProgressCallback, SampleRequest, SamplingConfig, sample
from .trajectory import Trajectory


def build_request(seeds: Sequence[int], atoms: Sequence[Sequence[int]] | None = None,
                  num_atoms: Sequence[int] | None = None, prop: float | Sequence[float] | None = None,
                  space_groups: Sequence[int] | None = None) -> SampleRequest:
    """A request for ``len(seeds)`` crystals.

    atoms: each crystal's atomic numbers (structure prediction; the atom counts follow from them), or None
    with ``num_atoms`` (ab initio). prop: one target for all, or one per crystal. space_groups: one group
    per crystal, 0 = unconditional for that crystal (a space-group model then sees the null token).
    """
    B = len(seeds)
    if atoms is not None:
        atoms = tuple(tuple(int(z) for z in a) for a in atoms)
        counts = tuple(len(a) for a in atoms)
    elif num_atoms is not None:
        counts = tuple(int(n) for n in num_atoms)
    else:
        raise ValueError("give the atoms of each crystal or the number of atoms")
    if len(counts) != B:
        raise ValueError("give one seed per crystal")
    if prop is not None:
        prop = (float(prop),) * B if isinstance(prop, (int, float)) else tuple(float(p) for p in prop)
    groups = None if space_groups is None else tuple(int(g) for g in space_groups)
    return SampleRequest(num_atoms=counts, seeds=tuple(int(s) for s in seeds), atomic_numbers=atoms, prop=prop,
                         space_group=groups)


@dataclass(frozen=True)
class PlacedSample:
    """One crystal's result: row ``index`` of a trajectory, or ``start`` itself when t0 = 0 (no diffusion).

    start: the crystal it began from (a template, or a Wyckoff cell's ideal crystal), None from noise.
    """

    trajectory: Trajectory | None
    index: int
    start: Crystal | None

    def structure(self):
        if self.trajectory is None:
            return self.start.to_structure()
        return self.trajectory.structure(frame=self.trajectory.num_frames - 1, crystal=self.index)

    def extxyz(self) -> str | None:
        return None if self.trajectory is None else self.trajectory.to_extxyz(self.index)


@dataclass(frozen=True)
class Starts:
    """How each crystal of a request begins (None entries and None lists mean: from noise).

    templates: one ``Template`` (or None) per crystal, used when ``template_step`` is set;
    cells: one ``SymmetricCell`` (or None) per crystal: sampled inside it (its atom order, its group),
    from noise or, with ``template_step``, from its ideal cell noised to that step;
    template_step: t0 (0 = take the start crystal as it is).
    """

    templates: Sequence | None = None
    cells: Sequence | None = None
    template_step: int | None = None

    def kind(self, i: int) -> str:
        if self.cells is not None and self.cells[i] is not None:
            return "symmetric"
        if self.template_step is not None and self.templates is not None and self.templates[i] is not None:
            return "template"
        return "noise"


def _subset(request: SampleRequest, indices: list[int]) -> SampleRequest:
    picked = {name: None if getattr(request, name) is None else tuple(getattr(request, name)[i] for i in indices)
              for name in PER_CRYSTAL_FIELDS}
    return replace(request, **picked)


def sample_placed(model: CrystalDiffusion, request: SampleRequest, config: SamplingConfig,
                  starts: Starts = Starts(), progress: ProgressCallback | None = None) -> list[PlacedSample]:
    """Sample every crystal of ``request`` from its start; results in request order.

    Each kind of start (noise, template, Wyckoff cell) is one ``sample`` call; ``progress`` sees each call's
    steps (a batch of one kind reports once through).
    """
    from .wyckoff import symmetric_request

    B = len(request.num_atoms)
    for name, values in (("templates", starts.templates), ("cells", starts.cells)):
        if values is not None and len(values) != B:
            raise ValueError(f"give one entry of {name} (or None) per crystal")
    if starts.template_step is not None and not 0 <= starts.template_step <= model.num_steps:
        raise ValueError(f"the template step must be between 0 and the model's T = {model.num_steps}, "
                         f"got {starts.template_step}")
    groups: dict[str, list[int]] = {"noise": [], "template": [], "symmetric": []}
    for i in range(B):
        groups[starts.kind(i)].append(i)
    results: list[PlacedSample | None] = [None] * B
    as_is = starts.template_step == 0

    if groups["template"]:
        rows = groups["template"]
        begins = tuple(starts.templates[i].crystal for i in rows)
        if as_is:
            for i, crystal in zip(rows, begins):
                results[i] = PlacedSample(None, 0, crystal)
        else:
            part = replace(_subset(request, rows), atomic_numbers=tuple(tuple(c.atomic_numbers.tolist()) for c in begins),
                           start=begins, start_step=starts.template_step)
            trajectory = sample(model, part, config, progress)
            for row, i in enumerate(rows):
                results[i] = PlacedSample(trajectory, row, begins[row])
    if groups["symmetric"]:
        rows = groups["symmetric"]
        cells = [starts.cells[i] for i in rows]
        if as_is:
            for i, cell in zip(rows, cells):
                results[i] = PlacedSample(None, 0, cell.crystal)
        else:
            part = symmetric_request(cells, [request.seeds[i] for i in rows],
                                     None if request.prop is None else [request.prop[i] for i in rows],
                                     condition=request.space_group is not None, start_step=starts.template_step)
            trajectory = sample(model, part, config, progress)
            for row, i in enumerate(rows):
                results[i] = PlacedSample(trajectory, row, cells[row].crystal if starts.template_step else None)
    if groups["noise"]:
        rows = groups["noise"]
        trajectory = sample(model, _subset(request, rows), config, progress)
        for row, i in enumerate(rows):
            results[i] = PlacedSample(trajectory, row, None)
    return results


def wyckoff_cells(library, atoms: Sequence[Sequence[int]], groups: Sequence[int]) -> dict:
    """For each distinct (atoms, group) pair: (template, its ``SymmetricCell``), with a ``ValueError`` in place of
    the cell when the template's sites do not fit the group, and (None, None) without a group or a template.

    The template is the nearest training crystal of the composition's prototype in that group
    (``TemplateLibrary.template``); its Wyckoff positions are what the sampler keeps.
    """
    from .wyckoff import constraint_from_template

    found: dict = {}
    for key in set(zip((tuple(a) for a in atoms), (int(g or 0) for g in groups))):
        numbers, group = key
        template = library.template(numbers, group) if group else None
        if template is None:
            found[key] = (None, None)
            continue
        try:
            found[key] = (template, constraint_from_template(template, group))
        except ValueError as error:
            found[key] = (template, error)
    return found


def usable_cells(found: dict, atoms: Sequence[Sequence[int]], groups: Sequence[int]) -> list:
    """One ``SymmetricCell`` or None per crystal, from ``wyckoff_cells``' table."""
    cells = []
    for key in zip((tuple(a) for a in atoms), (int(g or 0) for g in groups)):
        cell = found[key][1]
        cells.append(cell if cell is not None and not isinstance(cell, ValueError) else None)
    return cells


@dataclass(frozen=True)
class Retrieved:
    """What a sampling setting takes from the training crystals for one composition.

    space_group: the asked or voted group (None: none); template: the nearest training crystal of the
    prototype (in that group when there is one), used when the setting starts from a template or keeps
    Wyckoff sites; cell: the Wyckoff constraint (None: sampled free); notes: what could not be retrieved;
    vote: the training crystals' ``SpaceGroupGuess`` when the group was voted (its nearest crystals name where
    the group came from).
    """

    space_group: int | None
    template: object | None
    cell: object | None
    notes: tuple[str, ...] = ()
    vote: object | None = None


def retrieve(numbers: Sequence[int], setting, predictor=None, library=None, space_group: int | None = None) -> Retrieved:
    """The group, template and Wyckoff cell a ``recommended.SamplingSetting`` uses for this composition; what is
    missing is said in ``notes`` and sampling goes on without it (the CLI's fallback for a card default)."""
    from .wyckoff import constraint_from_template

    notes = []
    group, guess = space_group, None
    if group is None and setting.space_group == "predicted" and predictor is not None:
        guess = predictor.predict(list(numbers))
        group = guess.space_group if guess is not None else None
        if guess is None:
            notes.append("no training crystal of this prototype: no group voted")
    wants_template = setting.template_step is not None or setting.symmetry == "wyckoff"
    template = library.template(list(numbers), group) if wants_template and library is not None else None
    if wants_template and template is None:
        notes.append("no template")
    cell = None
    if setting.symmetry == "wyckoff" and group is not None and template is not None:
        try:
            cell = constraint_from_template(template, group)
        except ValueError as error:
            notes.append(f"no Wyckoff cell ({error})")
    return Retrieved(group, template, cell, tuple(notes), guess)


def sample_setting(model: CrystalDiffusion, numbers: Sequence[int], setting, seeds: Sequence[int],
                   predictor=None, library=None, space_group: int | None = None, record: str = "final",
                   precision: str = "float32") -> tuple[list[PlacedSample], Retrieved]:
    """``len(seeds)`` samples of one composition with a ``recommended.SamplingSetting`` (its sampler, steps,
    guidance, voted group, template start and Wyckoff sites), as ``sample`` runs it."""
    got = retrieve(numbers, setting, predictor, library, space_group)
    config = SamplingConfig(sampler=setting.sampler, steps=setting.steps, step_lr=setting.step_lr, record=record,
                            guidance=setting.guidance if got.space_group is not None else 0.0, precision=precision)
    B = len(seeds)
    request = build_request(seeds, atoms=[list(numbers)] * B,
                            space_groups=None if got.space_group is None else [got.space_group] * B)
    template_step = setting.template_step if got.template is not None or got.cell is not None else None
    starts = Starts(templates=[got.template] * B, cells=[got.cell] * B, template_step=template_step)
    return sample_placed(model, request, config, starts), got
