"""Training loop: resumable, with a progress bar, validation loss and periodic checkpoints.

Two files per run:
- ``<out>.pt`` (+ ``<out>.json`` card): EMA weights for sampling; small enough to ship.
- ``<run_dir>/state.pt``: raw + EMA weights, optimizer and step for exact resumption.
If the state file is missing but ``<out>.pt`` exists (a new machine with a shipped
checkpoint), training resumes from the shipped weights with a fresh optimizer.

Runs under ``torchrun`` with DistributedDataParallel (gloo on CPU, NCCL on CUDA): each
rank takes its share of every batch, rank 0 writes the files.
"""
from __future__ import annotations

import copy
import math
import os
import platform
import signal
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from pymatgen.core.periodic_table import Element

from .augment import augment
from .checkpoints import atomic_torch_save, load_card, read_checkpoint, save_checkpoint
from .corruption import LatticeStats
from .crystal import CrystalBatch
from .data import concatenate, load_dataset, repository_relative, split_indices
from .device import resolve_device
from .model import DenoiserConfig, count_parameters
from .crystal_diffusion import CrystalDiffusion, Normalization, ProcessConfig

STATE_FORMAT = "crystal-diffusion-train/1"
CARRIED_CARD_FIELDS = ("about_data", "recommended", "corrector_step_lr_choice", "langevin_choice")
DESCRIPTIONS = {"csp": "crystal structure prediction: atom types given, lattice + coordinates generated",
                "gen": "ab initio generation: atom types, lattice and coordinates generated",
                "cdvae": "CDVAE: a crystal autoencoder; a latent z decodes to atom count, lattice and composition, "
                         "then annealed Langevin dynamics place and type the atoms"}


@dataclass(frozen=True)
class TrainConfig:
    data: tuple[str, ...]
    out: str
    task: str = "csp"
    family: str = "diffusion"           # "diffusion" (DiffCSP-style) or "cdvae" (diffusion/cdvae/)
    latent_dim: int = 128               # cdvae: size of the latent z
    encoder_layers: int = 3             # cdvae: message layers of the encoder
    num_levels: int = 50                # cdvae: noise levels of the score decoder
    kl_weight: float = 0.01             # cdvae: weight of the KL term
    property_name: str | None = None
    use_space_group: bool = False
    val_fraction: float = 0.1
    split_seed: int = 0
    max_atoms: int = 20
    hidden: int = 256
    layers: int = 4
    frequencies: int = 32
    num_steps: int = 1000
    schedule: str = "cosine"
    batch_size: int = 256
    lr: float = 1e-3
    ema_decay: float = 0.999
    weight_decay: float = 0.0           # > 0: AdamW with this decoupled decay
    augment: float = 0.0                # probability of an equivalent cell per training crystal (augment.py)
    warmup_steps: int = 500             # lr ramp after resuming trained weights with a fresh optimizer
    drop_probability: float = 0.1
    space_group_drop: float | None = None   # None = drop_probability
    max_steps: int = 10_000
    max_minutes: float = 0.0            # 0 = no time limit
    checkpoint_every: int = 200
    val_every: int = 200
    val_size: int = 512
    seed: int = 0
    device: str = "auto"
    run_dir: str = ""

    @property
    def state_path(self) -> Path:
        run_dir = Path(self.run_dir) if self.run_dir else Path("runs") / Path(self.out).stem
        return run_dir / "state.pt"


@dataclass
class TrainResult:
    step: int
    epoch: float
    train_loss: float
    val_loss: float
    wall_seconds: float
    history: list[dict] = field(default_factory=list)
    weights_checksum: float = 0.0   # sum of all trained weights (float64): equal on every DDP rank


def hardware_description(world: int) -> str:
    gpu = f", {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ""
    return f"{platform.machine()}, {os.cpu_count()} CPU cores, torch {torch.__version__}{gpu}, {world} process(es)"


def legacy_segments(card: dict) -> list[dict]:
    """Segments for a card written before they were recorded: one run on the card's hardware and batch size."""
    steps = int(card.get("steps", 0))
    if not steps:
        return []
    return [{"from_step": 0, "to_step": steps, "batch_size": int(card.get("batch_size", 0)), "lr": card.get("lr"),
             "hardware": card.get("hardware", "?"), "wall_seconds": float(card.get("wall_seconds", 0.0)),
             "command": card.get("command", "")}]


def extend_segments(segments: list[dict], current: dict) -> list[dict]:
    """The training record with the current run appended.

    A run that continues the last segment on the same hardware with the same batch size and learning rate
    is merged into it (keeping the latest command), so a model resumed session after session on one
    machine keeps one row.
    """
    if segments:
        last = segments[-1]
        key = ("hardware", "batch_size", "lr")
        if [last.get(k) for k in key] == [current.get(k) for k in key] and last["to_step"] == current["from_step"]:
            merged = dict(last, to_step=current["to_step"], command=current.get("command", ""),
                          wall_seconds=round(last["wall_seconds"] + current["wall_seconds"], 1))
            return [*segments[:-1], merged]
    return [*segments, current]


def epochs_trained(segments: list[dict], num_train: int) -> float:
    """Passes over the training split, counted per segment because the batch size may differ between them."""
    seen = sum((s["to_step"] - s["from_step"]) * s["batch_size"] for s in segments)
    return seen / max(num_train, 1)


def build_model(config: TrainConfig, train_crystals):
    """A fresh model (``CrystalDiffusion``, or ``CDVAE`` for family "cdvae") with normalization statistics
    fitted on the training split."""
    lattices = torch.stack([c.lattice for c in train_crystals])
    counts = torch.tensor([c.num_atoms for c in train_crystals])
    prop_mean, prop_std = 0.0, 1.0
    if config.property_name:
        values = np.array([c.properties[config.property_name] for c in train_crystals], dtype=np.float64)
        prop_mean, prop_std = float(values.mean()), float(max(values.std(), 1e-6))
    histogram = np.bincount(counts.numpy(), minlength=config.max_atoms + 1)[: config.max_atoms + 1]
    normalization = Normalization(
        lattice=LatticeStats.fit(lattices, counts), property_mean=prop_mean, property_std=prop_std,
        elements=tuple(sorted({int(z) for c in train_crystals for z in c.atomic_numbers.tolist()})),
        max_atoms=int(counts.max()), num_atoms_counts=tuple(int(v) for v in histogram))
    if config.family == "cdvae":
        from .cdvae import CDVAE, CDVAEConfig, CDVAEProcess

        return CDVAE(CDVAEConfig(hidden=config.hidden, layers=config.layers, encoder_layers=config.encoder_layers,
                                 frequencies=config.frequencies, latent_dim=config.latent_dim,
                                 use_property=config.property_name is not None),
                     CDVAEProcess(num_levels=config.num_levels, kl_weight=config.kl_weight,
                                  property_name=config.property_name), normalization)
    if config.family != "diffusion":
        raise ValueError(f"unknown model family '{config.family}' (diffusion or cdvae)")
    model_config = DenoiserConfig(hidden=config.hidden, layers=config.layers, frequencies=config.frequencies,
                                  predict_types=config.task == "gen", use_property=config.property_name is not None,
                                  use_space_group=config.use_space_group)
    process = ProcessConfig(task=config.task, num_steps=config.num_steps, schedule=config.schedule,
                            property_name=config.property_name, use_space_group=config.use_space_group)
    return CrystalDiffusion(model_config, process, normalization)


def prepare_data(config: TrainConfig):
    dataset = concatenate([load_dataset(p) for p in config.data])
    if config.property_name:
        dataset.require_property(config.property_name)
    keep = [c for c in dataset.crystals if c.num_atoms <= config.max_atoms
            and (not config.property_name or config.property_name in c.properties)]
    if not keep:
        raise ValueError(f"no crystal with at most {config.max_atoms} atoms in {dataset.source}")
    train_idx, val_idx = split_indices(len(keep), config.val_fraction, config.split_seed)
    return dataset, [keep[i] for i in train_idx], [keep[i] for i in val_idx]


def _distributed() -> tuple[int, int]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not torch.distributed.is_initialized():
        backend = "nccl" if torch.cuda.is_available() and os.environ.get("CRYSTAL_DDP_BACKEND") != "gloo" else "gloo"
        torch.distributed.init_process_group(backend)
    return (torch.distributed.get_rank(), world) if world > 1 else (0, 1)


@torch.no_grad()
def validation_loss(model: CrystalDiffusion, crystals, config: TrainConfig, device, drop: float = 0.0) -> float:
    """Mean loss on (up to val_size) validation crystals with fixed noise draws, so values compare across steps.

    drop=0 scores the model with every condition given; drop=1 with none (the composition alone for CSP).
    """
    if not crystals:
        return math.nan
    model.eval()
    # noise drawn on the CPU whatever the device, so a GPU run's validation losses compare with a CPU run's
    generator = torch.Generator().manual_seed(1234)
    subset = crystals[: config.val_size]
    total, weight = 0.0, 0
    for start in range(0, len(subset), config.batch_size):
        chunk = subset[start:start + config.batch_size]
        batch = CrystalBatch.from_crystals(chunk, config.property_name).to(device)
        total += float(model.loss(batch, generator, drop_probability=drop).total) * len(chunk)
        weight += len(chunk)
    model.train()
    return total / weight


def train(config: TrainConfig, command: str = "", progress: bool = True) -> TrainResult:
    rank, world = _distributed()
    device = resolve_device(config.device if world == 1 or not torch.cuda.is_available() else f"cuda:{rank}")
    dataset, train_crystals, val_crystals = prepare_data(config)
    torch.manual_seed(config.seed)
    model = build_model(config, train_crystals).to(device)
    ema = copy.deepcopy(model).eval()
    optimizer = (torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
                 if config.weight_decay > 0 else torch.optim.Adam(model.parameters(), lr=config.lr))
    step, wall_before, history, segments = 0, 0.0, [], []
    warmup = None
    out = Path(config.out)
    state = None
    continued_process: dict = {}  # the process config of the checkpoint a run continues (kept: corrector step)
    if config.state_path.is_file():
        state = torch.load(config.state_path, map_location="cpu", weights_only=True)
        if state.get("format") != STATE_FORMAT:
            raise ValueError(f"{config.state_path} is not a training state file")
        card_at_out = load_card(out) if out.is_file() else {}
        shipped_steps = int(card_at_out.get("steps", 0))
        if shipped_steps > int(state["step"]):
            # the weights at --out were trained further elsewhere (another machine, a GPU): they win
            if rank == 0:
                print(f"the training state {config.state_path} (step {int(state['step'])}) is older than "
                      f"{out} (step {shipped_steps}): ignoring the state", file=sys.stderr)
            state = None
    if state is not None:
        model.load_state_dict(state["model"]); ema.load_state_dict(state["ema"])
        optimizer.load_state_dict(state["optimizer"])
        for group in optimizer.param_groups:  # the lr asked for now, not the one the state was saved with
            group["lr"] = config.lr
        step, wall_before, history = int(state["step"]), float(state["wall_seconds"]), list(state["history"])
        segments = list(state.get("segments") or legacy_segments({**card_at_out, "steps": step,
                                                                   "wall_seconds": wall_before}))
        if rank == 0:
            print(f"resuming from {config.state_path} at step {step}", file=sys.stderr)
        if out.is_file():
            continued_process = read_checkpoint(out)["process"]
    elif out.is_file():
        shipped = read_checkpoint(out)
        continued_process = shipped["process"]
        model.load_state_dict(shipped["state_dict"]); ema.load_state_dict(shipped["state_dict"])
        card = shipped.get("card", {})
        step, wall_before = int(card.get("steps", 0)), float(card.get("wall_seconds", 0.0))
        history = list(card.get("history", []))
        segments = list(card.get("segments") or legacy_segments(card))
        if rank == 0:
            print(f"resuming from shipped weights {out} at step {step} (fresh optimizer, learning rate ramped "
                  f"up over {config.warmup_steps} steps)", file=sys.stderr)
        # A fresh Adam's first updates are about lr in every weight (its second-moment estimate starts at
        # zero): ramping lr up keeps them small for weights that are already trained.
        ramp = max(1, config.warmup_steps)
        warmup = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda k: min(1.0, (k + 1) / ramp))
    if continued_process.get("corrector_step_lr") is not None and config.family == "diffusion":
        # a continued run keeps the sampler step size chosen for the weights it continues
        model.process = ema.process = replace(model.process,
                                              corrector_step_lr=float(continued_process["corrector_step_lr"]))
    if config.family == "cdvae" and "langevin_step" in continued_process:
        # ... and a CDVAE its Langevin step size and steps per level (benchmarks/langevin_step.py)
        model.process = ema.process = replace(model.process, langevin_step=float(continued_process["langevin_step"]),
                                              steps_per_level=int(continued_process["steps_per_level"]))
    wrapped = model
    if world > 1:
        wrapped = torch.nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None,
                                                            find_unused_parameters=True)

    generator = torch.Generator(device=device).manual_seed(config.seed * 1000 + step + rank)
    order_rng = np.random.default_rng(config.seed + step)
    stop = {"flag": False}

    def request_stop(signum, frame):
        stop["flag"] = True

    old_handler = signal.signal(signal.SIGTERM, request_stop) if rank == 0 and _main_thread() else None
    start_time, start_step = time.time(), step
    bar = None
    if progress and rank == 0:
        from tqdm import tqdm
        bar = tqdm(total=config.max_steps, initial=step, desc=f"train {out.stem}", unit="step", file=sys.stderr,
                   mininterval=5)

    hardware = hardware_description(world)

    def training_record() -> list[dict]:
        return extend_segments(segments, {"from_step": start_step, "to_step": step, "batch_size": config.batch_size,
                                          "lr": config.lr, "hardware": hardware,
                                          "wall_seconds": round(time.time() - start_time, 1), "command": command})

    def save() -> None:
        if rank != 0:
            return
        wall = wall_before + time.time() - start_time
        record = training_record()
        atomic_torch_save({"format": STATE_FORMAT, "model": model.state_dict(), "ema": ema.state_dict(),
                           "optimizer": optimizer.state_dict(), "step": step, "wall_seconds": wall,
                           "history": history, "segments": record}, config.state_path)
        card = make_card(config, model, dataset, train_crystals, val_crystals, step, wall, history, command, record)
        previous = load_card(out) if out.is_file() else {}
        card["metrics"] = previous.get("metrics", {})
        for key in CARRIED_CARD_FIELDS:  # what people and benchmarks wrote into the card stays with it
            if key in previous:
                card[key] = previous[key]
        save_checkpoint(ema, out, card)

    train_loss = math.nan
    permutation = order_rng.permutation(len(train_crystals))
    cursor = 0
    model.train()
    try:
        while step < config.max_steps and not stop["flag"]:
            if config.max_minutes and time.time() - start_time > config.max_minutes * 60:
                break
            if cursor + config.batch_size > len(permutation):
                permutation, cursor = order_rng.permutation(len(train_crystals)), 0
            indices = permutation[cursor:cursor + config.batch_size][rank::world]
            cursor += config.batch_size
            chosen = [train_crystals[i] for i in indices]
            if config.augment > 0:
                chosen = [augment(c, order_rng, config.max_atoms, config.augment) for c in chosen]
            batch = CrystalBatch.from_crystals(chosen, config.property_name).to(device)
            # through the DDP wrapper's forward (= loss) so that gradients are all-reduced
            terms = wrapped(batch, generator, config.drop_probability, config.space_group_drop)
            optimizer.zero_grad(set_to_none=True)
            terms.total.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
            optimizer.step()
            if warmup is not None:
                warmup.step()
            with torch.no_grad():
                for p_ema, p in zip(ema.parameters(), model.parameters()):
                    p_ema.lerp_(p, 1 - config.ema_decay)
            step += 1
            train_loss = float(terms.total.detach())
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{train_loss:.3f}", L=f"{float(terms.lattice):.3f}", F=f"{float(terms.coords):.3f}", refresh=False)
            if step % config.val_every == 0 and rank == 0:
                val = validation_loss(ema, val_crystals, config, device)
                entry = {"step": step, "train_loss": round(train_loss, 5), "val_loss": round(val, 5)}
                if (config.property_name or config.use_space_group) and config.family == "diffusion":
                    entry["val_loss_unconditioned"] = round(validation_loss(ema, val_crystals, config, device, 1.0), 5)
                history.append({**entry, "wall_seconds": round(wall_before + time.time() - start_time, 1)})
                if bar is not None:
                    extra = (f"  val without conditions {entry['val_loss_unconditioned']:.4f}"
                             if "val_loss_unconditioned" in entry else "")
                    bar.write(f"step {step}: train {train_loss:.4f}  val {val:.4f}{extra}")
            if step % config.checkpoint_every == 0:
                save()
    except KeyboardInterrupt:
        if rank == 0:
            print("interrupted: saving a checkpoint", file=sys.stderr)
    finally:
        if bar is not None:
            bar.close()
        if old_handler is not None:
            signal.signal(signal.SIGTERM, old_handler)
    save()
    val = validation_loss(ema, val_crystals, config, device) if rank == 0 else math.nan
    checksum = float(sum(p.detach().double().sum() for p in model.parameters()))
    if world > 1:
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()
    return TrainResult(step, epochs_trained(training_record(), len(train_crystals)), train_loss, val,
                       wall_before + time.time() - start_time, history, checksum)


def _main_thread() -> bool:
    import threading
    return threading.current_thread() is threading.main_thread()


def make_card(config: TrainConfig, model: CrystalDiffusion, dataset, train_crystals, val_crystals, step: int,
              wall: float, history: list, command: str, segments: list[dict]) -> dict:
    """The model card; segments: the training record (the last one is the run writing the card)."""
    return {
        "name": Path(config.out).stem,
        "family": config.family,
        "task": model.process.task,
        "description": DESCRIPTIONS[config.family if config.family == "cdvae" else config.task],
        "command": command,
        "data": [{"file": repository_relative(p), "sha256": s} for p, s in zip(config.data, dataset.sha256.split(","))],
        "split": {"val_fraction": config.val_fraction, "seed": config.split_seed, "train": len(train_crystals),
                  "validation": len(val_crystals), "max_atoms": config.max_atoms},
        "conditions": {"property": config.property_name, "space_group": config.use_space_group},
        "elements": [Element.from_Z(z).symbol for z in model.normalization.elements],
        "architecture": model.model_config.to_dict(),
        "process": model.process.to_dict(),
        "parameters": count_parameters(model.denoiser if config.family == "diffusion" else model),
        "steps": step,
        "epochs": round(epochs_trained(segments, len(train_crystals)), 2),
        "batch_size": config.batch_size,
        "lr": config.lr,
        "wall_seconds": round(wall, 1),
        "hardware": segments[-1]["hardware"],
        "segments": segments,
        "history": history,
        "train_config": asdict(config),
    }
