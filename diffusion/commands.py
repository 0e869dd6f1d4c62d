"""What each CLI subcommand does (argument parsing lives in cli.py)."""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import torch

from .api import MAX_ATOMS, MAX_SAMPLES, check_composition, check_space_group, sample_num_atoms
from .checkpoints import load_model
from .data import load_csv
from .device import resolve_device
from .placement import Starts, build_request, sample_placed
from .sampling import SamplingConfig
from .space_group_prediction import NO_PROTOTYPE_MATCH
from .templates import NO_TEMPLATE
from .tolerances import NO_SPACE_GROUP_CONDITION


def run_train(args, command: str) -> int:
    from .train import TrainConfig, train

    fields = TrainConfig.__dataclass_fields__
    config = TrainConfig(**{k: (tuple(v) if k == "data" else v) for k, v in vars(args).items() if k in fields})
    resolve_device(config.device)
    result = train(config, command=command, progress=not args.quiet)
    rank = os.environ.get("RANK")
    prefix = f"[rank {rank}] " if rank is not None else ""
    val = "n/a (rank 0 validates)" if rank not in (None, "0") else f"{result.val_loss:.4f}"
    line = (f"{prefix}step {result.step} ({result.epoch:.1f} epochs), train loss {result.train_loss:.4f}, "
            f"val loss {val}, {result.wall_seconds:.0f} s in total -> {config.out}; "
            f"weights checksum {result.weights_checksum:.10e}\n")
    # One write call: DDP ranks share the pipe, and a write below PIPE_BUF is never interleaved.
    sys.stdout.write(line)
    sys.stdout.flush()
    return 0


def _progress_bar(total: int, desc: str):
    from tqdm import tqdm
    return tqdm(total=total, desc=desc, unit="step", file=sys.stderr, mininterval=1)


def _space_groups(args, rows, atoms, model=None) -> list[int] | None:
    """One group per sample (0 = none for that sample), from --space-group N, csv or predicted."""
    if args.space_group is None:
        return None
    if args.space_group == "predicted":
        return _predicted_space_groups(args, atoms, model)
    if args.space_group == "csv":
        if rows is None:
            raise ValueError("--space-group csv only works with --from-csv")
        missing = [c.material_id for c in rows if not c.space_group]
        if missing:
            raise ValueError(f"rows without spacegroup.number: {', '.join(missing[:5])}")
        return [c.space_group for c in rows]
    try:
        number = int(args.space_group)
    except ValueError:
        raise ValueError(f"--space-group must be a number 1-230, 'csv' or 'predicted', got '{args.space_group}'") from None
    return [number] * (len(rows) if rows is not None else args.num_samples)


def _predicted_space_groups(args, atoms, model=None) -> list[int]:
    from .checkpoints import load_card, resolve
    from .evaluation import training_group_predictor

    if any(a is None for a in atoms):
        raise ValueError("--space-group predicted needs compositions (a structure-prediction model)")
    try:
        predictor = training_group_predictor(load_card(resolve(args.checkpoint)),
                                             getattr(args, "group_choice", None) or "vote", model)
    except (OSError, ValueError) as error:
        raise ValueError(f"cannot predict space groups: {error}") from None
    guesses = {a: predictor.predict(a) for a in set(atoms)}
    if len(guesses) == 1:
        guess = next(iter(guesses.values()))
        if guess is None:
            _unless_default(args, "space_group", NO_PROTOTYPE_MATCH,
                            "give a space-group number or leave --space-group out", "sampling without a space group")
            return [0] * len(atoms)
        near = ", ".join(str(n) for n in guess.neighbours[:3])
        chooser = "the model's weight" if getattr(args, "group_choice", None) == "model" else "the vote"
        print(f"space group {guess.space_group} predicted ({guess.confidence:.0%} of {chooser}; nearest training "
              f"crystals {near})", file=sys.stderr)
    else:
        missing = sum(g is None for g in guesses.values())
        print(f"space groups predicted for {len(guesses) - missing} of {len(guesses)} compositions"
              + (f"; {missing} without a training crystal of the same prototype are sampled without one" if missing else ""),
              file=sys.stderr)
    return [guesses[a].space_group if guesses[a] else 0 for a in atoms]


def _templates(args, model, atoms, groups) -> list:
    """One template (or None) per sample for --template-step, from the model's training crystals (in the
    sample's requested space group when there is one)."""
    from .checkpoints import load_card, resolve
    from .evaluation import training_template_library

    if model.process.task != "csp" or any(a is None for a in atoms):
        raise ValueError("--template-step needs compositions (a structure-prediction model)")
    if args.template_step > model.num_steps:
        raise ValueError(f"--template-step must be between 0 and the model's T = {model.num_steps}, "
                         f"got {args.template_step}")
    try:
        library = training_template_library(load_card(resolve(args.checkpoint)))
    except (OSError, ValueError) as error:
        raise ValueError(f"cannot build templates: {error}") from None
    keys = list(zip(atoms, groups or [0] * len(atoms)))
    found = {key: library.template(key[0], key[1] or None) for key in set(keys)}
    if len(found) == 1:
        template = next(iter(found.values()))
        if template is None:
            _unless_default(args, "template_step", NO_TEMPLATE, "leave --template-step out", "starting from noise")
            return [None] * len(keys)
        print(f"template: {template.describe()}, noised to step {args.template_step}", file=sys.stderr)
    else:
        missing = sum(t is None for t in found.values())
        print(f"templates for {len(found) - missing} of {len(found)} compositions"
              + (f"; {missing} without one start from noise" if missing else ""), file=sys.stderr)
    return [found[key] for key in keys]


def _symmetric_cells(args, model, atoms, groups) -> list:
    """One ``SymmetricCell`` (or None) per sample for --symmetry wyckoff: the space group and Wyckoff positions
    of the template in the sample's group (the nearest training crystal of its prototype, elements substituted)."""
    from .checkpoints import load_card, resolve
    from .evaluation import training_template_library
    from .placement import usable_cells, wyckoff_cells

    if model.process.task != "csp" or any(a is None for a in atoms):
        raise ValueError("--symmetry wyckoff needs compositions (a structure-prediction model)")
    if groups is None:
        _unless_default(args, "symmetry", "--symmetry wyckoff needs a space group",
                        "give --space-group N, predicted or csv", "sampling without the Wyckoff constraint")
        return [None] * len(atoms)
    try:
        library = training_template_library(load_card(resolve(args.checkpoint)))
    except (OSError, ValueError) as error:
        raise ValueError(f"cannot build Wyckoff templates: {error}") from None
    found = wyckoff_cells(library, atoms, groups)
    if len(found) == 1:
        (numbers, group), (template, cell) = next(iter(found.items()))
        free = "sampling without the Wyckoff constraint"
        if not group:
            _unless_default(args, "symmetry", "--symmetry wyckoff needs a space group",
                            "none was predicted for this composition; give one with --space-group", free)
        elif template is None:
            _unless_default(args, "symmetry", f"{NO_TEMPLATE} in space group {group}", "leave --symmetry out", free)
        elif isinstance(cell, ValueError):
            _unless_default(args, "symmetry", f"no Wyckoff template: {cell}",
                            "leave --symmetry out or choose another --space-group", free)
        if not group or template is None or isinstance(cell, ValueError):
            return [None] * len(atoms)
        print(f"symmetry: {cell.describe()}; from {template.describe()}", file=sys.stderr)
        if cell.constraint.num_atoms != len(numbers):
            print(f"the template's primitive cell has {cell.constraint.num_atoms} atoms, not {len(numbers)}: "
                  "sampling that cell", file=sys.stderr)
        return usable_cells(found, atoms, groups)
    cells = usable_cells(found, atoms, groups)
    missing = sum(cell is None for cell in cells)
    print(f"Wyckoff templates for {len(cells) - missing} of {len(cells)} samples"
          + (f"; {missing} without one are sampled without the constraint" if missing else ""), file=sys.stderr)
    return cells


def _cell_of_formula_units(args, model, numbers: tuple[int, ...]) -> tuple[int, ...]:
    """The cell's atoms for --formula-units N, or the training crystals' proposal for 'auto'."""
    from .formula_units import cell_atoms, formula_text, reduced_formula

    formula, _ = reduced_formula(numbers)
    if args.formula_units == "auto":
        from .checkpoints import load_card, resolve
        from .evaluation import training_formula_units
        try:
            advisor = training_formula_units(load_card(resolve(args.checkpoint)))
        except (OSError, ValueError) as error:
            raise ValueError(f"cannot propose formula units: {error}") from None
        proposal = advisor.propose(numbers, model.normalization.max_atoms)
        print(f"cell {proposal.describe()}", file=sys.stderr)
        units = proposal.units
    else:
        try:
            units = int(args.formula_units)
        except ValueError:
            raise ValueError(f"--formula-units must be a whole number or 'auto', got '{args.formula_units}'") from None
        if units < 1:
            raise ValueError(f"--formula-units must be at least 1, got {units}")
    cell = cell_atoms(formula, units)
    if len(cell) > model.normalization.max_atoms:
        raise ValueError(f"{formula_text(formula, units)} has {len(cell)} atoms, more than this model's "
                         f"{model.normalization.max_atoms}")
    return tuple(cell)


def with_setting(args, model) -> argparse.Namespace:
    """``args`` with the sampling flags the user left out filled from the model card's recommendation."""
    from .checkpoints import load_card, resolve
    from .recommended import resolve_sampling_args

    card = load_card(resolve(args.checkpoint)) if model.process.task == "csp" else {}
    setting = resolve_sampling_args(args, card)
    if card.get("recommended") and setting.key:
        print(f"setting: the card's recommendation: {setting.describe()}", file=sys.stderr)
    space_group = args.space_group if args.space_group is not None else setting.space_group
    # the retrieval steps the user did not ask for: when a composition has nothing to retrieve, sampling goes
    # on without them (with a note) instead of failing on a default (``_unless_default``)
    defaulted = {name for name in ("space_group", "template_step", "symmetry") if getattr(args, name, None) is None}
    return argparse.Namespace(**{**vars(args), "sampler": setting.sampler, "steps": setting.steps,
                                 "guidance": setting.guidance, "template_step": setting.template_step,
                                 "step_lr": setting.step_lr, "space_group": space_group,
                                 "symmetry": setting.symmetry, "group_choice": setting.group_choice,
                                 "defaulted": defaulted})


def _unless_default(args, flag: str, why: str, fix: str, instead: str) -> None:
    """ValueError "why: fix" when the user asked for ``flag``; when it only came with the card's default,
    say "why; instead" and return (the caller then samples without it)."""
    if flag in getattr(args, "defaulted", ()):
        print(f"note: {why}; {instead}", file=sys.stderr)
        return
    raise ValueError(f"{why}: {fix}")


def _sample_cdvae(args, model) -> int:
    """``sample`` with a CDVAE checkpoint: latents from the prior decoded by annealed Langevin dynamics
    (``--steps``: Langevin steps per noise level, ``--step-lr``: the step size eta; default the card's)."""
    from .cdvae import LangevinConfig, generate_from_prior

    if args.composition or args.from_csv:
        raise ValueError("a CDVAE model generates from its latent space, composition included: use "
                         "--random-num-atoms (or --num-atoms N)")
    for flag, value in (("--space-group", args.space_group), ("--template-step", args.template_step),
                        ("--guidance", args.guidance), ("--property", args.prop), ("--sampler", args.sampler),
                        ("--start", args.start)):
        if value is not None and value != "none":
            raise ValueError(f"{flag} does not apply to a CDVAE model (it samples by annealed Langevin dynamics)")
    if args.symmetry not in (None, "none"):
        raise ValueError("--symmetry does not apply to a CDVAE model")
    if args.num_samples > MAX_SAMPLES:
        raise ValueError(f"--num-samples must be at most {MAX_SAMPLES}, got {args.num_samples}")
    if args.num_atoms is not None and args.num_atoms > model.normalization.max_atoms:
        raise ValueError(f"--num-atoms must be at most {model.normalization.max_atoms} for this model")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    bar = _progress_bar(args.num_samples, "sampling (Langevin)")
    for start in range(0, args.num_samples, args.batch_size):
        n = min(args.batch_size, args.num_samples - start)
        config = LangevinConfig(steps_per_level=args.steps, step_size=args.step_lr, seed=args.seed + start,
                                record_every=1 if args.trajectory else 10**9)
        counts = None if args.num_atoms is None else torch.full((n,), args.num_atoms, dtype=torch.long)
        trajectory = generate_from_prior(model, n, config, num_atoms=counts).trajectory
        for i in range(n):
            name = f"sample_{start + i:03d}"
            trajectory.structure(frame=trajectory.num_frames - 1, crystal=i).to(filename=str(out / f"{name}.cif"))
            if args.trajectory:
                (out / f"{name}.extxyz").write_text(trajectory.to_extxyz(crystal=i))
        bar.update(n)
    bar.close()
    print(f"wrote {args.num_samples} structure(s) to {out}/")
    return 0


def run_sample(args, command: str) -> int:
    device = resolve_device(args.device)
    model = load_model(args.checkpoint, device)
    if getattr(model, "family", "diffusion") == "cdvae":
        return _sample_cdvae(args, model)
    args = with_setting(args, model)
    if args.space_group == "none":
        args.space_group = None
    config = SamplingConfig(sampler=args.sampler, steps=args.steps, guidance=args.guidance, step_lr=args.step_lr,
                            record="all" if args.trajectory else "final", precision=args.precision)
    config.validate(model.num_steps)
    if args.num_samples > MAX_SAMPLES:
        raise ValueError(f"--num-samples must be at most {MAX_SAMPLES}, got {args.num_samples}")
    rows = None
    names: list[str]
    if args.from_csv:
        if model.process.task != "csp":
            raise ValueError("--from-csv needs a structure-prediction (csp) model")
        rows = load_csv(args.from_csv).crystals[: args.limit]
        atoms = [tuple(c.atomic_numbers.tolist()) for c in rows]
        known = set(model.normalization.elements)
        keep = [i for i, a in enumerate(atoms) if not known or set(a) <= known]
        if len(keep) < len(rows):
            print(f"skipping {len(rows) - len(keep)} rows with elements the model does not know", file=sys.stderr)
        rows, atoms = [rows[i] for i in keep], [atoms[i] for i in keep]
        names = [c.material_id for c in rows]
        seeds = [args.seed + i for i in range(len(rows))]
    elif args.composition:
        if model.process.task != "csp":
            raise ValueError("this is an ab initio model: use --num-atoms instead of --composition")
        numbers = tuple(check_composition(model, args.composition))
        if args.formula_units is not None:
            numbers = _cell_of_formula_units(args, model, numbers)
        atoms = [numbers] * args.num_samples
        names = [f"sample_{i:03d}" for i in range(args.num_samples)]
        seeds = [args.seed + i for i in range(args.num_samples)]
    else:
        if model.process.task != "gen":
            raise ValueError("this model predicts structures from a composition: use --composition")
        if args.num_atoms is not None and args.num_atoms > MAX_ATOMS:
            raise ValueError(f"--num-atoms must be at most {MAX_ATOMS}")
        counts = ([args.num_atoms] * args.num_samples if args.num_atoms
                  else sample_num_atoms(model, args.num_samples, torch.Generator().manual_seed(args.seed)))
        atoms = [None] * args.num_samples
        names = [f"sample_{i:03d}" for i in range(args.num_samples)]
        seeds = [args.seed + i for i in range(args.num_samples)]
    if args.space_group is not None and not model.model_config.use_space_group:
        raise ValueError(NO_SPACE_GROUP_CONDITION)
    groups = _space_groups(args, rows, atoms, model)
    for g in set(groups or []) - {0}:
        check_space_group(model, g)
    if args.prop is not None and not model.model_config.use_property:
        raise ValueError("this model was not trained with a property condition (--property)")
    if not names:
        raise ValueError("nothing to sample")
    symmetric = _symmetric_cells(args, model, atoms, groups) if getattr(args, "symmetry", "none") == "wyckoff" else None
    # crystals without a Wyckoff cell still start from their template when one is asked for
    templates = (_templates(args, model, atoms, groups) if args.template_step is not None
                 and (symmetric is None or None in symmetric) else None)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    bar = _progress_bar(len(names), "sampling")
    for start in range(0, len(names), args.batch_size):
        chunk = slice(start, start + args.batch_size)
        n = len(names[chunk])
        request = build_request(
            seeds[chunk], atoms=atoms[chunk] if model.process.task == "csp" else None,
            num_atoms=None if model.process.task == "csp" else [args.num_atoms or counts[start + i] for i in range(n)],
            prop=args.prop, space_groups=None if groups is None else groups[chunk])
        starts = Starts(templates=None if templates is None else templates[chunk],
                        cells=None if symmetric is None else symmetric[chunk], template_step=args.template_step)
        placed = sample_placed(model, request, config, starts)
        for name, result in zip(names[chunk], placed):
            result.structure().to(filename=str(out / f"{name}.cif"))
            frames = result.extxyz() if args.trajectory else None
            if frames is not None:
                (out / f"{name}.extxyz").write_text(frames)
        bar.update(n)
    bar.close()
    print(f"wrote {len(names)} structure(s) to {out}/")
    return 0


def run_evaluate(args, command: str) -> int:
    from .evaluation import EvaluationConfig, evaluate_checkpoint

    results = evaluate_checkpoint(EvaluationConfig.from_args(args), command)   # fills unset flags from the card
    text = json.dumps(results, indent=2)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n")
    return 0


def run_render(args, command: str) -> int:
    from .api import generate
    from .render import MAX_FRAMES, MAX_SIZE, MAX_STRIP_PANELS, MIN_SIZE, evenly_spaced_steps, render_gif, render_strip

    out = Path(args.out)
    kind = out.suffix.lower()
    if kind not in (".gif", ".png"):
        raise ValueError(f"--out must end in .gif (animation) or .png (strip), got '{out.name}'")
    limit = MAX_FRAMES if kind == ".gif" else MAX_STRIP_PANELS
    frames = args.frames or (20 if kind == ".gif" else 6)
    if frames > limit:
        raise ValueError(f"--frames must be at most {limit} for a {kind[1:].upper()}, got {frames}")
    size = args.size or (480 if kind == ".gif" else 320)
    if not MIN_SIZE <= size <= MAX_SIZE:
        raise ValueError(f"--size must be between {MIN_SIZE} and {MAX_SIZE} pixels, got {size}")
    if getattr(args, "trajectory_file", None) is not None:
        return _render_trajectory_file(args, out, kind, frames, size)
    if getattr(args, "sample", None) is not None:
        raise ValueError("--sample picks a sample of --trajectory-file; give the file too")
    if args.checkpoint is None:
        raise ValueError("render needs --checkpoint (to sample a model) or --trajectory-file (to draw a file's "
                         "trajectory)")
    device = resolve_device(args.device)
    model = load_model(args.checkpoint, device)
    if getattr(model, "family", "diffusion") == "cdvae":
        trajectory = _cdvae_render_trajectory(args, model)
        return _write_render(trajectory, out, kind, frames, size)
    if model.process.task == "csp" and not args.composition:
        raise ValueError("this model predicts structures from a composition: use --composition")
    if model.process.task == "gen" and args.composition:
        raise ValueError("this is an ab initio model: use --num-atoms instead of --composition")
    if args.num_atoms is not None and args.num_atoms > MAX_ATOMS:
        raise ValueError(f"--num-atoms must be at most {MAX_ATOMS}")
    steps = args.steps or (min(100, model.num_steps) if args.sampler == "ddim" else model.num_steps)
    if steps > model.num_steps:
        raise ValueError(f"--steps must be at most the model's T = {model.num_steps}, got {steps}")
    bars = []  # created at the first step, so that input errors stay one line

    def progress(done: int, total: int) -> None:
        if not bars:
            bars.append(_progress_bar(total, "sampling"))
        bars[0].update(done - bars[0].n)

    start = {}
    if args.template_step is not None:
        if args.template_step == 0:
            raise ValueError("--template-step must be at least 1 for a render (0 is the template itself, no steps)")
        if model.process.task != "csp":
            raise ValueError("--template-step needs compositions (a structure-prediction model)")
        numbers = tuple(check_composition(model, args.composition))
        template = _templates(args, model, [numbers], [args.space_group or 0])[0]
        start = dict(start=template.crystal, start_step=args.template_step)
    trajectory = generate(model, composition=args.composition, num_atoms=args.num_atoms, sampler=args.sampler,
                          steps=steps, seed=args.seed, space_group=args.space_group, prop=args.prop,
                          guidance=args.guidance, progress=progress, precision=args.precision, **start)
    for bar in bars:
        bar.close()
    return _write_render(trajectory, out, kind, frames, size)


def _write_render(trajectory, out: Path, kind: str, frames: int, size: int) -> int:
    from .render import evenly_spaced_steps, render_gif, render_strip

    shown = evenly_spaced_steps(trajectory, frames)
    draw = render_gif if kind == ".gif" else render_strip
    data = draw(trajectory, shown, size=size)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(data)
    print(f"wrote {out} ({len(shown)} frames: t = {', '.join(map(str, shown))}; {len(data) / 1024:.0f} KiB)")
    return 0


def _cdvae_render_trajectory(args, model):
    """A CDVAE's trajectory for ``render``: z from the seed, decoded by annealed Langevin dynamics (``--steps`` per
    level, default the card's); ``--composition`` fixes the atoms (the composition-given mode), ``--num-atoms``
    the count. The frame numbers are the Langevin steps still to come."""
    from .cdvae import LangevinConfig, generate_from_prior

    for flag, value in (("--space-group", args.space_group), ("--property", args.prop),
                        ("--template-step", args.template_step)):
        if value is not None:
            raise ValueError(f"{flag} does not apply to a CDVAE model (it decodes a latent by annealed Langevin dynamics)")
    counts = types = None
    if args.composition:
        numbers = check_composition(model, args.composition)
        types, counts = torch.tensor(numbers), torch.tensor([len(numbers)])
    elif args.num_atoms is not None:
        counts = torch.tensor([args.num_atoms])
    if counts is not None and int(counts[0]) > model.normalization.max_atoms:
        raise ValueError(f"this model decodes at most {model.normalization.max_atoms} atoms per cell")
    bar = _progress_bar(1, "sampling (Langevin)")

    def progress(done: int, total: int) -> None:
        bar.total = total
        bar.update(done - bar.n)

    try:
        return generate_from_prior(model, 1, LangevinConfig(steps_per_level=args.steps, seed=args.seed),
                                   num_atoms=counts, types=types, progress=progress).trajectory
    finally:
        bar.close()


def _render_trajectory_file(args, out: Path, kind: str, frames: int, size: int) -> int:
    """``render --trajectory-file PATH [--sample I]``: draw a sample of another model's file (no model)."""
    from .render import evenly_spaced_steps, render_gif, render_strip
    from .trajectory_files import read_trajectory_file

    model_flags = (("--checkpoint", args.checkpoint), ("--composition", args.composition),
                   ("--num-atoms", args.num_atoms), ("--steps", args.steps), ("--space-group", args.space_group),
                   ("--property", args.prop), ("--template-step", args.template_step))
    given = [flag for flag, value in model_flags if value is not None]
    if given:
        raise ValueError(f"{given[0]} is for sampling a model; with --trajectory-file the file's frames are drawn "
                         f"(leave {given[0]} out)")
    opened = read_trajectory_file(args.trajectory_file)
    index = args.sample or 0
    count = len(opened.samples)
    if index >= count:
        raise ValueError(f"--sample must be between 0 and {count - 1} ({Path(args.trajectory_file).name} holds "
                         f"{count} sample{'s' if count != 1 else ''}), got {index}")
    for note in opened.notes:
        print(f"note: {note}", file=sys.stderr)
    trajectory = opened.samples[index]
    shown = evenly_spaced_steps(trajectory, frames)
    draw = render_gif if kind == ".gif" else render_strip
    data = draw(trajectory, shown, size=size)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(data)
    print(f"wrote {out} (sample {index} of {opened.format}; {len(shown)} frames: t = {', '.join(map(str, shown))}; "
          f"{len(data) / 1024:.0f} KiB)")
    return 0


def run_inspect(args, command: str) -> int:
    """One line per sample of a trajectory file: frames, reduced formula and spglib space group (at SYMPREC)
    of its last frame; ``--json`` prints the same as JSON."""
    from .metrics import space_group_number
    from .trajectory_files import read_trajectory_file

    opened = read_trajectory_file(args.path)
    rows = []
    for index, trajectory in enumerate(opened.samples):
        structure = trajectory.structure(frame=trajectory.num_frames - 1)
        group = space_group_number(structure)          # spglib at SYMPREC; 0 when the analysis fails
        rows.append({"index": index, "frames": trajectory.num_frames,
                     "formula": structure.composition.reduced_formula, "space_group": group or None})
    if args.json:
        print(json.dumps({"format": opened.format, "samples": rows, "notes": list(opened.notes)}, indent=2))
        return 0
    print(f"{Path(args.path).name}: {opened.format}, {len(rows)} sample{'s' if len(rows) != 1 else ''}",
          file=sys.stderr)
    for note in opened.notes:
        print(f"note: {note}", file=sys.stderr)
    for row in rows:
        group = row["space_group"] if row["space_group"] is not None else "?"
        print(f"sample {row['index']}: {row['frames']} frame{'s' if row['frames'] != 1 else ''}, "
              f"{row['formula']}, space group {group}")
    return 0


def run_download(args, command: str) -> int:
    from .data import download

    for path in download(args.name, args.dest):
        print(path)
    return 0
